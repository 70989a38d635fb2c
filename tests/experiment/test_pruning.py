"""Learning-curve pruning: the pruners, the per-seed decision, and searches that prune.

The searches use :class:`Curves` (straight curves whose level is fixed by the trial's seed,
so which trials a median pruner stops is known in advance) with the inline and the process
executor, and a tiny real MAML search; the studies are read back from SQLite.
"""

from __future__ import annotations

import statistics

import pytest
from _scripted_evaluators import Curves, curve_level

from autometa.cli import main
from autometa.errors import ConfigurationError
from autometa.experiment import (
    Budget,
    Final,
    MedianPruner,
    PercentilePruner,
    SuccessiveHalving,
    TrialState,
    get_storage,
    make_pruner,
    search,
)
from autometa.experiment._pruning import JobReporting, PruneContext
from autometa.meta import MAMLEvaluator
from autometa.space import load_space

SPACE = {
    "name": "widths",
    "graph": {
        "kind": "chain",
        "layers": 1,
        "layer": {"width": {"choice": [8, 16, 32, 64]}, "activation": "tanh"},
    },
    "hyperparameters": {"fast_lr": {"float": [0.05, 0.5]}},
}


# -- the pruners -----------------------------------------------------------------------------


def test_median_pruner_waits_for_startup_trials_and_warmup_steps():
    pruner = MedianPruner(n_startup_trials=3, n_warmup_steps=4)
    history = [1.0, 2.0, 3.0]
    assert not pruner.decide(4, 1.5, history, finished=2)  # too few finished trials
    assert not pruner.decide(3, 1.5, history, finished=3)  # still warming up
    assert pruner.decide(4, 1.5, history, finished=3)  # below the median 2.0
    assert not pruner.decide(4, 2.0, history, finished=3)  # at the median: kept
    assert not pruner.decide(4, 1.5, [], finished=3)  # nobody reported this step
    assert not pruner.decide(4, float("nan"), history, finished=3)
    assert pruner.threshold(history) == 2.0


def test_percentile_pruner_keeps_the_top_percent():
    history = [0.0, 1.0, 2.0, 3.0, 4.0]
    top25 = PercentilePruner(25, n_startup_trials=0)
    assert top25.threshold(history) == 3.0  # the 75th percentile
    assert top25.decide(1, 2.9, history, finished=5)
    assert not top25.decide(1, 3.0, history, finished=5)
    top80 = PercentilePruner(80, n_startup_trials=0)
    assert top80.threshold(history) == pytest.approx(0.8)  # interpolated 20th percentile
    assert not top80.decide(1, 1.0, history, finished=5)
    assert top80.decide(1, 0.5, history, finished=5)


def test_pruners_are_made_by_name_and_refuse_bad_ones():
    assert make_pruner("none") is None and make_pruner(None) is None
    assert make_pruner("median").to_dict() == {
        "name": "median", "n_startup_trials": 5, "n_warmup_steps": 0,
    }  # fmt: skip
    pruner = make_pruner("percentile:25")
    assert isinstance(pruner, PercentilePruner) and pruner.percentile == 25.0
    again = make_pruner(pruner.to_dict())
    assert again.to_dict() == pruner.to_dict()
    with pytest.raises(ConfigurationError) as info:
        make_pruner("medain")
    assert str(info.value) == (
        "unknown pruner 'medain'. Did you mean 'median'? Valid names: none, dominated, median, "
        "percentile"
    )
    with pytest.raises(ConfigurationError) as info:
        make_pruner("percentile:high")
    assert str(info.value) == "pruner 'percentile:high': expected a number after ':', got 'high'"
    with pytest.raises(ConfigurationError) as info:
        make_pruner("percentile:120")
    assert str(info.value) == (
        "pruner 'percentile': percentile must be a number in [0, 100], got 120.0"
    )


def test_seeds_decide_on_their_mean_at_the_step():
    context = PruneContext(MedianPruner(n_startup_trials=1), {5: (1.0, 2.5, 4.0)}, finished=3)
    reporting = JobReporting(context, seeds=2)
    first, second = reporting.reporters()
    first.report(5, 1.0)
    second.report(5, 3.0)  # alone above the median 2.5, but the mean 2.0 is below it
    assert second.should_stop() and first.should_stop()
    result = reporting.finish([], None)
    assert result.status == "pruned" and result.score == 2.0 and result.fidelity == 5
    assert result.metrics["pruned_step"] == 5
    assert result.metrics["pruned_value"] == 2.0
    assert result.metrics["pruned_threshold"] == 2.5
    assert result.metrics["intermediate_values"] == [[5, 2.0]]


def test_a_pruner_and_a_fidelity_plan_are_refused_together(tmp_path):
    with pytest.raises(ConfigurationError) as info:
        search(SPACE, "random", Curves(), Budget(trials=2), storage=str(tmp_path / "s.db"),
               workers=0, progress=False, final=False, pruner="median",
               fidelity=SuccessiveHalving(1, 9, 3))  # fmt: skip
    assert str(info.value) == (
        "`pruner` and `fidelity` cannot be combined: choose learning-curve pruning or "
        "multi-fidelity rungs"
    )


# -- searches that prune ---------------------------------------------------------------------


def _curve_search(path, workers: int):
    pruner = MedianPruner(n_startup_trials=2, n_warmup_steps=3)
    search(
        SPACE, "random", Curves(total=10), Budget(trials=10), storage=str(path),
        workers=workers, seed=1, progress=False, final=False, pruner=pruner,
    )  # fmt: skip
    return sorted(get_storage(str(path)).get_all_trials(), key=lambda t: t.number)


def _check_pruned(trial) -> None:
    """A pruned trial's record: its step, the deciding value, the curve so far."""
    m = trial.metrics
    assert m["pruned_step"] == 3 and trial.fidelity == 3  # the first step after the warm-up
    assert m["pruned_value"] == pytest.approx(curve_level(trial.seed) * 0.3)
    assert m["pruned_value"] < m["pruned_threshold"]
    assert trial.score == pytest.approx(m["pruned_value"])  # its last reported value
    assert len(m["learning_curve"]) == 3
    assert [s for s, _ in m["intermediate_values"]] == [1, 2, 3]
    assert m["meta_iterations_spent"] == 3


def test_an_inline_search_prunes_the_trials_below_the_median(tmp_path):
    trials = _curve_search(tmp_path / "inline.db", workers=0)
    done_levels, expected = [], []
    for trial in trials:  # one at a time: each decision sees every earlier trial
        level = curve_level(trial.seed)
        pruned = len(done_levels) >= 2 and level < statistics.median(done_levels)
        expected.append(TrialState.PRUNED if pruned else TrialState.DONE)
        if not pruned:
            done_levels.append(level)
    assert [t.state for t in trials] == expected
    assert expected.count(TrialState.PRUNED) >= 2
    for trial in trials:
        if trial.state == TrialState.PRUNED:
            _check_pruned(trial)
        else:
            assert len(trial.metrics["intermediate_values"]) == 10
            assert "pruned_step" not in trial.metrics
    best = get_storage(str(tmp_path / "inline.db")).get_best_trial()
    assert best.state == TrialState.DONE


def test_worker_processes_decide_with_the_values_sent_with_the_job(tmp_path):
    trials = _curve_search(tmp_path / "processes.db", workers=2)
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned and all(t.state in (TrialState.DONE, TrialState.PRUNED) for t in trials)
    for trial in pruned:
        _check_pruned(trial)
        # decided on finished trials only: at least two DONE trials rank above it
        above = [t for t in trials if t.state == TrialState.DONE and t.number < trial.number]
        assert len(above) >= 2


def test_a_tiny_maml_search_prunes_and_keeps_pruned_trials_out_of_the_final(tmp_path):
    evaluator = MAMLEvaluator(
        "navigation2d", 5, num_tasks=2, episodes_per_task=2, test_tasks=2, test_episodes=2,
        traced=False, family_options={"horizon": 10},
    )  # fmt: skip
    result = search(
        SPACE, "random", evaluator, Budget(trials=6), storage=str(tmp_path / "maml.db"),
        workers=0, seed=0, progress=False, pruner=PercentilePruner(5, n_startup_trials=2),
        final=Final(top=2, seeds=1, ablation=False),
    )  # fmt: skip
    trials = sorted(result.storage.get_all_trials(), key=lambda t: t.number)
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, [t.state for t in trials]
    for trial in pruned:
        step = trial.metrics["pruned_step"]
        assert 1 <= step < 5 and trial.fidelity == step
        assert len(trial.metrics["learning_curve"]) == step
        assert trial.metrics["pruned_value"] < trial.metrics["pruned_threshold"]
        assert "returns_by_step" not in trial.metrics  # no held-out test was run
    finalists = {r.trial for r in result.storage.get_final_runs() if r.kind == "finalist"}
    assert finalists and finalists.isdisjoint(t.number for t in pruned)
    assert result.best is not None and result.best.state == TrialState.DONE


class _StopAt:
    """A reporter that records what it is told and asks to stop from ``step`` on."""

    def __init__(self, step: int | None) -> None:
        self.step, self.reports = step, []

    def report(self, step: int, value: float) -> None:
        self.reports.append((step, value))

    def should_stop(self) -> bool:
        return self.step is not None and self.reports[-1][0] >= self.step


def test_a_pruned_population_member_stops_alone():
    evaluator = MAMLEvaluator(
        "navigation2d", 4, num_tasks=2, episodes_per_task=2, test_tasks=2, test_episodes=2,
        cg_damping=1.0, traced=False, family_options={"horizon": 10},
    )  # fmt: skip
    graph = load_space(SPACE).sample(seed=0)
    pairs = [(graph, seed) for seed in (11, 12, 13)]
    plain = evaluator.evaluate_population(pairs)
    reporters = [_StopAt(None), _StopAt(2), _StopAt(None)]
    pruned = evaluator.evaluate_population(pairs, reporters=reporters)
    assert [r.metrics["population"] for r in pruned] == [3, 3, 3]  # one program
    stopped = pruned[1]
    assert stopped.status == "pruned" and stopped.fidelity == 2
    assert stopped.metrics["learning_curve"] == pytest.approx(
        plain[1].metrics["learning_curve"][:2], rel=1e-5
    )
    assert [s for s, _ in reporters[1].reports] == [1, 2]  # no report after it stopped
    for p in (0, 2):  # the others finish with the numbers they have unpruned
        assert pruned[p].status == "ok"
        assert pruned[p].score == pytest.approx(plain[p].score, rel=1e-5, abs=1e-6)
        assert pruned[p].metrics["learning_curve"] == pytest.approx(
            plain[p].metrics["learning_curve"], rel=1e-5, abs=1e-6
        )
        assert [s for s, _ in reporters[p].reports] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--pruner", "medain"], "argument --pruner: unknown pruner 'medain'. Did you mean "
         "'median'? Valid names: none, dominated, median, percentile"),
        (["--pruner", "percentile:x"],
         "argument --pruner: pruner 'percentile:x': expected a number after ':', got 'x'"),
        (["--pruner", "median", "--fidelity", "hyperband"],
         "--pruner and --fidelity cannot be combined"),
    ],
)  # fmt: skip
def test_the_command_line_refuses_a_bad_pruner_in_one_line(extra, message, tmp_path, capsys):
    db = tmp_path / "s.db"
    argv = ["search", "chain_mlp", "--objective", "synthetic", "--workers", "0",
            "--no-progress", "--trials", "1", "--storage", str(db), *extra]  # fmt: skip
    assert main(argv) == 2
    assert capsys.readouterr().err == f"autometa search: error: {message}\n"
    assert not db.exists()
