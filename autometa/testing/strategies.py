"""Conformance checks every registered strategy must pass, shipped for third-party strategies.

Use the functions directly, or subclass :class:`StrategyTestCase` in a pytest module and
provide ``strategy_name`` and ``space`` fixtures::

    class TestMine(StrategyTestCase):
        @pytest.fixture(params=["my-strategy"])
        def strategy_name(self, request):
            return request.param

        @pytest.fixture
        def space(self):
            return load_space("tiny")
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from autometa.graph import canonical_hash, graph_equal
from autometa.meta.synthetic import SyntheticObjective
from autometa.space import SearchSpace
from autometa.strategies import STRATEGIES, BaseStrategy, Candidate, make_strategy

__all__ = [
    "StrategyTestCase",
    "check_candidates_valid",
    "check_resume",
    "check_strategy",
    "check_unknown_option",
    "result_value",
    "run_trials",
]


def result_value(strategy: BaseStrategy, objective: SyntheticObjective, candidate: Candidate):
    """Evaluate ``candidate`` and shape the result for ``strategy.tell``.

    Single-objective strategies get the score; two-objective ones ``(score,
    -log10(params))``; failed evaluations give ``None``.
    """
    result = objective(candidate.graph, seed=0)
    if not result.ok:
        return None
    if strategy.n_objectives == 1:
        return result.score
    return (result.score, -math.log10(max(result.objectives["params"], 1.0)))


def run_trials(
    strategy: BaseStrategy,
    objective: SyntheticObjective,
    n_trials: int,
    *,
    batch: int = 1,
    snapshot_at: int | None = None,
) -> tuple[list[Candidate], dict[str, Any] | None]:
    """Run an ask/tell loop until ``n_trials`` results are told or the strategy runs dry.

    Asks ``batch`` candidates at a time (as ``batch`` workers would) and tells them in
    order. Pending candidates left by a restored state are told first.

    Returns:
        The told candidates in tell order, and the JSON round-tripped ``state_dict()``
        taken right after the ``snapshot_at``-th tell (None when not reached).
    """
    told: list[Candidate] = []
    snapshot = None
    queue = list(strategy.pending())
    while len(told) < n_trials:
        if not queue:
            queue = strategy.ask(min(batch, n_trials - len(told)))
            if not queue:
                break
        candidate = queue.pop(0)
        strategy.tell(candidate, result_value(strategy, objective, candidate))
        told.append(candidate)
        if snapshot_at is not None and len(told) == snapshot_at:
            snapshot = json.loads(json.dumps(strategy.state_dict(), allow_nan=False))
    return told, snapshot


def check_candidates_valid(space: SearchSpace, candidates: list[Candidate]) -> None:
    """Each candidate is valid, decodes from its values, carries its hash, and is new."""
    keys = [c.key for c in candidates]
    assert len(set(keys)) == len(keys), f"duplicate architectures handed out: {keys}"
    ids = [c.id for c in candidates]
    assert len(set(ids)) == len(ids), f"duplicate candidate ids: {ids}"
    for c in candidates:
        space.validate(c.graph)
        assert c.key == canonical_hash(c.graph), f"candidate {c.id}: key is not the graph's hash"
        assert graph_equal(space.decode(c.values), c.graph), (
            f"candidate {c.id}: space.decode(values) differs from the graph"
        )
        json.dumps(c.values)


def check_resume(
    make: Callable[[], BaseStrategy],
    objective: SyntheticObjective,
    n_trials: int,
    *,
    batch: int = 2,
) -> list[Candidate]:
    """Same seed gives the same sequence, and a mid-run restore continues identically.

    Runs ``n_trials`` uninterrupted with a snapshot after half of them (taken while one
    candidate of the batch is still pending when ``batch`` > 1), restores the snapshot into a
    fresh strategy (whose replay checks every key of the first half) and runs the rest.

    Returns:
        The candidates of the uninterrupted run.
    """
    half = n_trials // 2 + (1 if batch > 1 else 0)
    first, snapshot = run_trials(make(), objective, n_trials, batch=batch, snapshot_at=half)
    if snapshot is None:  # the space ran dry before the half: compare full reruns instead
        again, _ = run_trials(make(), objective, n_trials, batch=batch)
        assert [c.key for c in again] == [c.key for c in first], "same seed, other sequence"
        return first
    resumed = make()
    resumed.load_state_dict(snapshot)
    rest, _ = run_trials(resumed, objective, n_trials - half, batch=batch)
    want = [c.key for c in first[half:]]
    got = [c.key for c in rest]
    assert got == want, f"restored run continued with {got}, the uninterrupted run with {want}"
    assert [c.id for c in rest] == [c.id for c in first[half:]], "restored ids differ"
    return first


def check_unknown_option(name: str, space: SearchSpace) -> None:
    """An unknown option raises ``TypeError`` naming the strategy and the valid options."""
    cls = STRATEGIES.get(name)
    valid = ", ".join(sorted(cls.defaults)) if cls.defaults else "(none)"
    pattern = (
        f"^strategy {re.escape(repr(name))} got an unknown option 'no_such_option'\\. "
        f"(Did you mean '[a-z_]+'\\? )?Valid options: {re.escape(valid)}$"
    )
    try:
        make_strategy(name, space, seed=0, no_such_option=1)
    except TypeError as exc:
        assert re.match(pattern, str(exc)), f"unexpected message: {exc}"
    else:
        raise AssertionError(f"strategy {name!r} accepted an unknown option")


def check_strategy(
    name: str,
    space: SearchSpace,
    *,
    n_trials: int = 30,
    seed: int = 0,
    fail_fraction: float = 0.2,
    expected: int | None = None,
    **options: Any,
) -> list[Candidate]:
    """The whole conformance check of one strategy on one space.

    ``n_trials`` trials against :class:`SyntheticObjective` (a ``fail_fraction`` of them
    failing, told as ``None``) give only valid, distinct candidates; the same seed gives the
    same sequence; a restore in the middle continues identically.

    Args:
        name: registered strategy name.
        space: the space to search.
        n_trials: trials per run.
        seed: the strategy's seed.
        fail_fraction: share of architectures the objective fails.
        expected: how many trials the run must reach (default ``n_trials``; pass the number
            of distinct architectures for a space smaller than ``n_trials``).
        **options: strategy options.

    Returns:
        The candidates of the uninterrupted run.
    """
    objective = SyntheticObjective(fail_fraction=fail_fraction)

    def make() -> BaseStrategy:
        return make_strategy(name, space, seed=seed, **options)

    candidates = check_resume(make, objective, n_trials)
    check_candidates_valid(space, candidates)
    want = n_trials if expected is None else expected
    assert len(candidates) >= want, (
        f"strategy {name!r} on space {space.name!r} gave {len(candidates)} trials, expected {want}"
    )
    return candidates


class StrategyTestCase:
    """Pytest mixin: subclass it and provide ``strategy_name`` and ``space`` fixtures."""

    n_trials = 30

    def test_conformance(self, strategy_name: str, space: SearchSpace) -> None:
        check_strategy(strategy_name, space, n_trials=self.n_trials)

    def test_unknown_option(self, strategy_name: str, space: SearchSpace) -> None:
        check_unknown_option(strategy_name, space)
