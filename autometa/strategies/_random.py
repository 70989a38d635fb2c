"""Random search: independent draws from the space's own sampler."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from autometa.strategies.base import BaseStrategy, Value

__all__ = ["RandomStrategy"]


class RandomStrategy(BaseStrategy):
    """Uniform random search: each dimension drawn independently (``space.sample_values``).

    Candidates that break the space's constraints are redrawn, and recorded or pending
    architectures are skipped, so on a small space random search enumerates it without
    repeats and then returns fewer candidates. Results are ignored.
    """

    name = "random"
    defaults: ClassVar[dict[str, Any]] = {}
    max_rounds = 200

    def _setup(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def _propose(self, n: int) -> list[tuple[Mapping[str, Any], Any]]:
        return [(self.space.sample_values(self._rng), None) for _ in range(n)]

    def _observe(self, token: Any, values: Mapping[str, Any], value: Value) -> None:
        pass
