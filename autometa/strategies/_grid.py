"""Grid search over the space's dimensions, each discretised to a few levels."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from autometa.strategies._grid_count import GridCounter, grid_levels
from autometa.strategies.base import BaseStrategy, Value

__all__ = ["GridStrategy"]


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
