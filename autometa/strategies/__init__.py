"""Search strategies: ask/tell optimisers over a search space, registered by name.

>>> from autometa.space import load_space
>>> from autometa.strategies import make_strategy
>>> space = load_space("tiny")
>>> strategy = make_strategy("random", space, seed=0)
>>> [candidate] = strategy.ask(1)
>>> strategy.tell(candidate, 1.5)

Backends (DEAP, scikit-optimize, NNI) are imported only when a strategy that needs them is
made. See ``docs/strategies.md`` for every name, its options and its backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autometa.registry import Registry
from autometa.strategies.base import BaseStrategy, Candidate, Value, active_values

if TYPE_CHECKING:
    from autometa.space import SearchSpace

__all__ = [
    "STRATEGIES",
    "BaseStrategy",
    "Candidate",
    "Value",
    "active_values",
    "make_strategy",
]

STRATEGIES: Registry[Any] = Registry("strategy")
"""Registered strategies: name -> class (lazy ``"module:attr"`` entry points)."""

for _name, _entry in [
    ("random", "autometa.strategies._random:RandomStrategy"),
    ("grid", "autometa.strategies._grid:GridStrategy"),
    ("ga", "autometa.strategies._deap:GeneticStrategy"),
    ("regularized-evolution", "autometa.strategies._deap:RegularizedEvolutionStrategy"),
    ("nsga2", "autometa.strategies._deap:NSGA2Strategy"),
    ("bo-gp", "autometa.strategies._skopt:GPStrategy"),
    ("bo-rf", "autometa.strategies._skopt:RFStrategy"),
    ("bo-et", "autometa.strategies._skopt:ETStrategy"),
    ("bo-gbrt", "autometa.strategies._skopt:GBRTStrategy"),
    ("nni-tpe", "autometa.strategies._nni:TPEStrategy"),
    ("nni-evolution", "autometa.strategies._nni:EvolutionStrategy"),
    ("nni-anneal", "autometa.strategies._nni:AnnealStrategy"),
    ("nni-gp", "autometa.strategies._nni:GPTunerStrategy"),
    ("nni-random", "autometa.strategies._nni:NNIRandomStrategy"),
    ("nni-grid", "autometa.strategies._nni:NNIGridStrategy"),
    ("nni-regularized-evolution", "autometa.strategies._nni:NNIRegularizedEvolutionStrategy"),
    ("nni-policy-rl", "autometa.strategies._nni:PolicyRLStrategy"),
]:
    STRATEGIES.register(_name, _entry)


def make_strategy(name: str, space: SearchSpace, *, seed: int = 0, **options: Any) -> BaseStrategy:
    """Build the strategy registered as ``name`` over ``space``.

    Args:
        name: a registered name (``STRATEGIES.names()``).
        space: the search space to propose candidates from.
        seed: seeds every random choice the strategy makes.
        **options: the strategy's options (see ``docs/strategies.md``).

    Raises:
        UnknownNameError: ``name`` is not registered (the message lists the valid names).
        TypeError: an option the strategy does not take (the message lists the valid ones).
        ValueError: an option value out of range, or a space the strategy cannot handle.
    """
    return STRATEGIES.make(name, space, seed=seed, **options)
