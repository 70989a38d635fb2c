"""Multi-fidelity: plans, records, cost versus full evaluation, resume mid-bracket."""

from __future__ import annotations

import re

import pytest
from _scripted_evaluators import Scripted

from autometa.experiment import (
    BracketPlan,
    Budget,
    Hyperband,
    InMemoryStorage,
    SuccessiveHalving,
    TrialState,
    load_result,
    search,
    trial_seed,
)
from autometa.experiment.fidelity import fidelity_from_dict
from autometa.meta.synthetic import SyntheticObjective
from autometa.space import shipped_spaces

DAG = shipped_spaces()["dag_cell"]


def run(storage, trials, fidelity, evaluator=None, workers=0, **kw):
    return search(
        DAG,
        evaluator=evaluator or SyntheticObjective(full_fidelity=90),
        budget=Budget(trials=trials),
        storage=storage,
        workers=workers,
        fidelity=fidelity,
        progress=False,
        **kw,
    )


def test_plans():
    assert SuccessiveHalving(10, 90, eta=3).plans() == [BracketPlan((9, 3, 1), (10, 30, 90))]
    assert Hyperband(10, 90, eta=3).plans() == [
        BracketPlan((9, 3, 1), (10, 30, 90)),
        BracketPlan((5, 1), (30, 90)),
        BracketPlan((3,), (90,)),
    ]
    assert SuccessiveHalving(10, 90).plans()[0].cost == 270
    plan = Hyperband(5, 80, eta=2)
    assert fidelity_from_dict(plan.to_dict()) == plan and fidelity_from_dict(None) is None
    message = "`eta` must be at least 2, got eta=1"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        SuccessiveHalving(1, 9, eta=1)


def test_successive_halving_spends_less_than_full_at_equal_trials():
    full = run(InMemoryStorage(), 9, None)
    halving = run(InMemoryStorage(), 9, SuccessiveHalving(10, 90, eta=3))
    assert len(full.trials) == len(halving.trials) == 9
    assert full.meta_iterations == 9 * 90
    assert halving.meta_iterations == 9 * 10 + 3 * 30 + 1 * 90 < full.meta_iterations
    assert halving.counts["DONE"] == 1 and halving.counts["PRUNED"] == 8
    reached = sorted(t.fidelity for t in halving.trials)
    assert reached == [10] * 6 + [30] * 2 + [90]
    best = halving.best
    assert best.fidelity == 90 and best.rung == 2 and best.bracket == 0
    assert [r["meta_iterations"] for r in best.metrics["rungs"]] == [10, 30, 90]
    assert best.metrics["meta_iterations_spent"] == 130
    # the survivor of every rung was the rung's best (the synthetic objective keeps ranks)
    rung0 = sorted(halving.trials, key=lambda t: t.metrics["rungs"][0]["score"], reverse=True)
    assert {t.number for t in rung0[:3]} == {t.number for t in halving.trials if t.fidelity >= 30}
    assert best.key == max(full.trials, key=lambda t: t.score).key  # same candidates, same best
    pruned = [t for t in halving.trials if t.state == TrialState.PRUNED]
    assert all(t.has_score and t.finished is not None for t in pruned)


def test_hyperband_brackets_and_truncated_budget():
    result = run(InMemoryStorage(), 16, Hyperband(10, 90, eta=3))
    trials = sorted(result.trials, key=lambda t: t.number)
    assert [t.bracket for t in trials] == [0] * 9 + [1] * 5 + [2] * 2
    assert result.counts["DONE"] == 1 + 1 + 2
    assert result.meta_iterations == 270 + (5 * 30 + 90) + 2 * 90
    assert all(t.state.is_finished() for t in trials)


def test_failures_inside_rungs():
    evaluator = Scripted({trial_seed(0, 0): "raise", trial_seed(0, 1): "nan"})
    result = run(InMemoryStorage(), 9, SuccessiveHalving(10, 90), evaluator=evaluator)
    assert result.counts == {"QUEUED": 0, "RUNNING": 0, "DONE": 1, "FAILED": 2, "PRUNED": 6}


def test_resume_mid_bracket_matches_uninterrupted(tmp_path):
    path = tmp_path / "sh.db"
    fidelity = SuccessiveHalving(10, 90)

    # Ctrl-C at the 11th evaluation: rung 0 is decided, rung 1 is under way
    class InterruptAt(SyntheticObjective):
        def __init__(self):
            super().__init__(full_fidelity=90)
            self.calls = 0

        def __call__(self, graph, **kw):
            self.calls += 1
            if self.calls == 11:
                raise KeyboardInterrupt
            return super().__call__(graph, **kw)

    with pytest.raises(KeyboardInterrupt):
        run(path, 9, fidelity, evaluator=InterruptAt())
    partial = load_result(path)
    assert partial.counts["PRUNED"] == 6 and partial.counts["QUEUED"] == 3
    resumed = run(path, 9, fidelity, allow_changes=True)  # the interrupting evaluator is replaced
    straight = run(InMemoryStorage(), 9, fidelity)
    assert resumed.counts == straight.counts
    assert resumed.meta_iterations == straight.meta_iterations == 270
    assert resumed.best.key == straight.best.key


def test_process_workers_with_fidelity(tmp_path):
    result = run(tmp_path / "p.db", 9, SuccessiveHalving(10, 90), workers=2)
    assert result.counts["DONE"] == 1 and result.meta_iterations == 270
