"""Grid search over the space's dimensions, each discretised to a few levels."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from autometa.space.dims import Categorical, Dimension, Float, Integer
from autometa.strategies.base import BaseStrategy, Value

__all__ = ["GridCounter", "GridStrategy", "finite_size", "grid_levels"]


def grid_levels(dim: Dimension, points: int) -> list[Any]:
    """The grid values of one dimension.

    Categorical and boolean dimensions keep every value; integer ranges keep every value
    when they have at most ``points`` of them and ``points`` evenly spaced ones otherwise
    (log-spaced when ``log``); float ranges get ``points`` evenly (or log-) spaced values
    from ``low`` to ``high``.
    """
    if isinstance(dim, Float):
        if dim.low == dim.high or points == 1:
            return [dim.default]
        grid = (
            np.geomspace(dim.low, dim.high, points)
            if dim.log
            else np.linspace(dim.low, dim.high, points)
        )
        return [min(max(float(v), dim.low), dim.high) for v in grid]
    if isinstance(dim, Integer) and dim.cardinality > points:
        if dim.log:
            grid = np.geomspace(dim.low, dim.high, points)
        else:
            grid = np.linspace(dim.low, dim.high, points)
        return sorted({min(max(int(round(v)), dim.low), dim.high) for v in grid})
    if isinstance(dim, Categorical):
        return list(dim.choices)
    return dim.values()


class GridCounter:
    """Counts and enumerates the points of a grid over conditional dimensions.

    A dimension is only varied where it is active. The count is exact and memoised over the
    values that later conditions depend on, so it stays cheap for astronomically large grids.

    Args:
        dims: the space's dimensions, in order (parents before children).
        levels: the grid values of each dimension.
    """

    def __init__(self, dims: Sequence[Dimension], levels: Sequence[Sequence[Any]]) -> None:
        self.dims = list(dims)
        self.levels = [list(v) for v in levels]
        position = {d.name: i for i, d in enumerate(self.dims)}
        self.needed: list[tuple[str, ...]] = []
        for i in range(len(self.dims)):
            names = {c[0] for d in self.dims[i:] for c in (d.condition or ())}
            self.needed.append(tuple(sorted(n for n in names if position.get(n, i) < i)))
        self._memo: dict[tuple, int] = {}
        self.size = self.count(0, {})

    def count(self, i: int, values: dict[str, Any]) -> int:
        """Grid points of dims ``i..`` given the values chosen for the dims before ``i``."""
        if i == len(self.dims):
            return 1
        memo_key = (i, tuple(repr(values.get(n)) for n in self.needed[i]))
        if memo_key in self._memo:
            return self._memo[memo_key]
        dim = self.dims[i]
        if not dim.active(values):
            total = self.count(i + 1, values)
        else:
            total = sum(self.count(i + 1, {**values, dim.name: v}) for v in self.levels[i])
        self._memo[memo_key] = total
        return total

    def unrank(self, k: int) -> dict[str, Any]:
        """The ``k``-th grid point in lexicographic order (mixed radix over active dims)."""
        values: dict[str, Any] = {}
        for i, dim in enumerate(self.dims):
            if not dim.active(values):
                continue
            for level in self.levels[i]:
                count = self.count(i + 1, {**values, dim.name: level})
                if k < count:
                    values[dim.name] = level
                    break
                k -= count
        return values


def finite_size(dims: Sequence[Dimension]) -> int | None:
    """How many distinct decision vectors the dims allow (None when a float range is free)."""
    if any(math.isinf(d.cardinality) for d in dims):
        return None
    return GridCounter(dims, [d.values() if d.cardinality > 1 else [d.default] for d in dims]).size


class GridStrategy(BaseStrategy):
    """Every point of a discretised grid, once, in a seeded random order (for small spaces).

    Conditional dimensions are only varied where they are active, so a 1-layer chain is not
    repeated once per value of the second layer's width. The grid's size is counted exactly
    (memoised over the values that later conditions depend on); above ``max_size`` points the
    strategy refuses with a ``ValueError`` that gives the size, since a grid that large is
    better served by ``random``. Points that break the space's constraints are skipped.
    When the grid is exhausted :meth:`ask` returns fewer candidates (then none).

    Options:
        points_per_dim: levels per float range, and per integer range with more values.
        max_size: the largest grid accepted.
        shuffle: visit points in a seeded random order (True) or in lexicographic order.
    """

    name = "grid"
    defaults: ClassVar[dict[str, Any]] = {
        "points_per_dim": 4,
        "max_size": 2_000_000,
        "shuffle": True,
    }
    max_rounds = 1_000_000

    def _check_options(self) -> None:
        for key in ("points_per_dim", "max_size"):
            value = self.options[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"strategy 'grid': option {key} must be a positive int, got {value!r}"
                )
        if not isinstance(self.options["shuffle"], bool):
            raise ValueError(
                f"strategy 'grid': option shuffle must be a bool, got {self.options['shuffle']!r}"
            )

    def _setup(self) -> None:
        levels = [grid_levels(d, self.options["points_per_dim"]) for d in self.space.dimensions]
        self._grid = GridCounter(self.space.dimensions, levels)
        self.size = self._grid.size
        if self.size > self.options["max_size"]:
            raise ValueError(
                f"strategy 'grid': the grid over space {self.space.name!r} has "
                f"{_short(self.size)} points with points_per_dim="
                f"{self.options['points_per_dim']}, above max_size={self.options['max_size']}; "
                "use a smaller space or points_per_dim, raise max_size, or use 'random'"
            )
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(self.size) if self.options["shuffle"] else np.arange(self.size)
        self._order = order
        self._cursor = 0

    def _propose(self, n: int) -> list[tuple[Mapping[str, Any], Any]]:
        stop = min(self._cursor + n, self.size)
        out = [(self._grid.unrank(int(k)), None) for k in self._order[self._cursor : stop]]
        self._cursor = stop
        return out

    def _observe(self, token: Any, values: Mapping[str, Any], value: Value) -> None:
        pass


def _short(size: int) -> str:
    return str(size) if size < 10**7 else f"about 10^{int(math.log10(size))}"
