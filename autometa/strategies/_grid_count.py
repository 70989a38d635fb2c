"""Grid arithmetic over a space's dimensions: the levels of each, and counting the grid.

Below both the strategy base (which bounds a space's distinct points) and the grid strategies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from autometa.space.dims import Categorical, Dimension, Float, Integer

__all__ = ["GridCounter", "finite_size", "grid_levels"]


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
