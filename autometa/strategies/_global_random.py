"""Run a backend that draws from Python's global ``random`` on a strategy's own generator."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["global_random_from"]


@contextmanager
def global_random_from(own: random.Random) -> Iterator[None]:
    """Swap ``own``'s state into the global ``random`` for the block, then swap back.

    DEAP and NNI call the module-level ``random`` functions; this keeps each strategy seeded
    and reproducible while other code's random stream stays untouched.
    """
    saved = random.getstate()
    random.setstate(own.getstate())
    try:
        yield
    finally:
        own.setstate(random.getstate())
        random.setstate(saved)
