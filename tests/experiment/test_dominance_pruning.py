"""Multi-objective pruning: the dominance rule, its plumbing and NSGA-II searches that use it.

The searches use :class:`SizedCurves` (straight curves whose level is fixed by the trial's
seed, with the candidate's parameter count as its cost), so which trials the ``dominated``
rule stops is computed here from the stored trials and compared with what the search did.
"""

from __future__ import annotations

import json
import os

import pytest
from _scripted_evaluators import Curves, SizedCurves, curve_level

from autometa.cli import main
from autometa.errors import ConfigurationError
from autometa.experiment import (
    Budget,
    DominancePruner,
    TrialState,
    get_storage,
    make_pruner,
    search,
)
from autometa.experiment._pruning import (
    JobReporting,
    PruneContext,
    cost_names,
    job_contexts,
    prune_context,
)
from autometa.experiment.pruners import dominates
from autometa.experiment.trial import TrialRecord
from autometa.graph import to_json
from autometa.meta import MAMLEvaluator, SyntheticObjective
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


# -- the rule --------------------------------------------------------------------------------


def test_a_point_dominates_when_no_worse_anywhere_and_better_somewhere():
    # (value to maximise, cost to minimise, ...)
    assert dominates((2.0, 10.0), (1.0, 10.0))  # better value, same cost
    assert dominates((1.0, 5.0), (1.0, 10.0))  # same value, cheaper
    assert not dominates((1.0, 10.0), (1.0, 10.0))  # equal: neither dominates
    assert not dominates((2.0, 20.0), (1.0, 10.0))  # better value but dearer
    assert not dominates((0.5, 5.0), (1.0, 10.0))  # cheaper but worse value
    assert dominates((1.0, 5.0, 7.0), (1.0, 5.0, 8.0))  # two costs
    assert not dominates((3.0, 5.0, 9.0), (1.0, 5.0, 8.0))
    assert not dominates((1.0,), (1.0, 2.0))  # points of different objectives


def test_the_dominance_pruner_counts_dominating_points_after_the_warm_ups():
    pruner = DominancePruner(min_dominating=2, n_startup_trials=3, n_warmup_steps=4)
    points = [(0.9, 100.0), (0.8, 50.0), (0.95, 400.0), (0.1, 10.0)]
    assert pruner.decide_point(4, (0.7, 100.0), points, finished=3) == 2  # the first two
    assert pruner.decide_point(4, (0.7, 100.0), points, finished=2) is None  # startup
    assert pruner.decide_point(3, (0.7, 100.0), points, finished=3) is None  # warm-up step
    assert pruner.decide_point(4, (0.7, 40.0), points, finished=3) is None  # smaller: kept
    assert pruner.decide_point(4, (0.05, 10.0), points, finished=3) is None  # one beats it
    assert pruner.decide_point(4, (0.7, 100.0), [], finished=3) is None  # nobody at the step
    assert pruner.decide_point(4, (float("nan"), 100.0), points, finished=3) is None
    assert pruner.count_dominating((0.05, 500.0), points) == 4
    # values alone (no costs): dominated means beaten on the value
    assert pruner.decide(4, 0.85, [0.1, 0.8, 0.9, 0.95], finished=3)
    assert not pruner.decide(4, 0.92, [0.1, 0.8, 0.9, 0.95], finished=3)
    assert pruner.threshold([0.1, 0.9]) is None


def test_the_dominance_pruner_is_made_by_name_and_refuses_bad_arguments():
    pruner = make_pruner("dominated:2")
    assert isinstance(pruner, DominancePruner) and pruner.min_dominating == 2
    assert pruner.to_dict() == {
        "name": "dominated", "n_startup_trials": 5, "n_warmup_steps": 0, "min_dominating": 2,
    }  # fmt: skip
    assert make_pruner(pruner.to_dict()).to_dict() == pruner.to_dict()
    assert make_pruner("dominated").min_dominating == 3
    assert repr(DominancePruner(4, 1, 2)) == (
        "DominancePruner(n_startup_trials=1, n_warmup_steps=2, min_dominating=4)"
    )
    for spec, message in [
        ("dominated:0", "pruner 'dominated': min_dominating must be an int >= 1, got 0.0"),
        ("dominated:1.5", "pruner 'dominated': min_dominating must be an int >= 1, got 1.5"),
        ("dominated:two", "pruner 'dominated:two': expected a number after ':', got 'two'"),
        ({"name": "dominated", "min_dominating": True},
         "pruner 'dominated': min_dominating must be an int >= 1, got True"),
        ({"name": "dominated", "n_warmup_steps": -1},
         "pruner 'dominated': n_warmup_steps must be an int >= 0, got -1"),
        ({"name": "dominated", "k": 3},
         "pruner 'dominated': DominancePruner.__init__() got an unexpected keyword argument "
         "'k'"),
    ]:  # fmt: skip
        with pytest.raises(ConfigurationError) as info:
            make_pruner(spec)
        assert str(info.value) == message


def test_the_hook_records_how_many_finished_trials_dominated_it():
    pruner = DominancePruner(min_dominating=2, n_startup_trials=2)
    points = {3: ((0.9, 100.0), (0.8, 50.0), (0.2, 10.0))}
    context = PruneContext(pruner, {3: (0.2, 0.8, 0.9)}, 3, points, ("params",), (120.0,))
    reporting = JobReporting(context, seeds=2)
    first, second = reporting.reporters()
    first.report(3, 0.6)
    second.report(3, 0.8)  # the mean 0.7 at 120 params: dominated by the first two points
    assert second.should_stop() and first.should_stop()
    result = reporting.finish([], None)
    assert result.status == "pruned" and result.fidelity == 3
    assert result.score == pytest.approx(0.7)
    assert result.metrics["pruned_step"] == 3
    assert result.metrics["pruned_value"] == pytest.approx(0.7)
    assert result.metrics["pruned_threshold"] is None
    assert result.metrics["pruned_dominated_by"] == 2
    assert result.metrics["pruned_costs"] == {"params": 120.0}
    # the same curve at 40 params: nothing finished is as small, it goes on
    small = JobReporting(PruneContext(pruner, {}, 3, points, ("params",), (40.0,)), seeds=1)
    small.reporters()[0].report(3, 0.7)
    assert not small.hook.should_stop()
    # costs unknown (the candidate's could not be computed): never stopped by this rule
    unknown = JobReporting(PruneContext(pruner, {}, 3, points, ("params",), None), seeds=1)
    unknown.reporters()[0].report(3, 0.0)
    assert not unknown.hook.should_stop()


def _done(number, curve, objectives, state=TrialState.DONE):
    return TrialRecord(
        number=number, state=state, key=f"k{number}", graph_json={}, values={},
        objectives=objectives, metrics={"intermediate_values": curve},
    )  # fmt: skip


def test_the_context_holds_the_finished_points_and_each_job_its_costs():
    assert cost_names({"params": 1, "macs": 2}, 2) == ("params",)
    assert cost_names({"params": 1, "macs": 2}, 3) == ("params", "macs")
    assert cost_names({"params": 1}, 3) == () and cost_names({"params": 1}, 1) == ()
    trials = [
        _done(0, [[1, 0.5], [2, 0.7]], {"params": 100.0, "macs": 90.0}),
        _done(1, [[1, 0.2]], {"params": "many"}),  # a damaged record: no point, still a value
        _done(2, [[1, 0.9]], {"params": 10.0}, state=TrialState.PRUNED),  # not a reference
    ]
    context = prune_context(DominancePruner(), trials, ("params",))
    assert context.points == {1: ((0.5, 100.0),), 2: ((0.7, 100.0),)}
    assert context.history == {1: (0.2, 0.5), 2: (0.7,)} and context.finished == 2
    assert prune_context(make_pruner("median"), trials, ("params",)).points == {}
    graphs = [load_space(SPACE).sample(seed=s) for s in (0, 1)]
    jobs = job_contexts(DominancePruner(), trials, [to_json(g) for g in graphs], SizedCurves(), 2)
    assert [c.costs for c in jobs] == [
        (SizedCurves().cost_objectives(g)["params"],) for g in graphs
    ]
    assert jobs[0].cost_names == ("params",) and jobs[0].points == context.points
    bad = job_contexts(DominancePruner(), trials, [{"nodes": "x"}], SizedCurves(), 2)
    assert bad[0].costs is None  # a graph whose costs cannot be counted is never pruned


def test_the_evaluators_know_a_candidates_costs_before_it_runs():
    graph = load_space(SPACE).sample(seed=4)
    maml = MAMLEvaluator(
        "navigation2d", 2, num_tasks=2, episodes_per_task=2, test_tasks=2, test_episodes=2,
        traced=False, family_options={"horizon": 5},
    )  # fmt: skip
    known = maml.cost_objectives(graph)
    assert set(known) == {"params", "macs"} and known["params"] > 0
    assert known == maml(graph, seed=0, device="cpu").objectives
    synthetic = SyntheticObjective()
    assert synthetic.cost_objectives(graph) == synthetic(graph, seed=0).objectives


# -- searches --------------------------------------------------------------------------------


def _nsga2_search(path, workers: int):
    pruner = DominancePruner(min_dominating=2, n_startup_trials=3, n_warmup_steps=3)
    search(
        SPACE, "nsga2", SizedCurves(total=10), Budget(trials=14), storage=str(path),
        workers=workers, seed=3, progress=False, final=False, pruner=pruner,
    )  # fmt: skip
    return sorted(get_storage(str(path)).get_all_trials(), key=lambda t: t.number)


def _expected(trials):
    """Each trial's state and dominating count, replaying the rule over the earlier trials
    (one at a time, each decision sees every trial finished before it): ``(state, count)``."""
    done: list[tuple[float, float]] = []  # (level, params) of the evaluated DONE trials
    out = []
    for trial in trials:
        if trial.duplicate_of is not None:
            out.append((TrialState.DONE, None))
            continue
        level, params = curve_level(trial.seed), trial.objectives["params"]
        pruned = None
        if len(done) >= 3:
            for step in range(3, 10):  # report steps after the warm-up, before the last
                value = level * step / 10
                count = sum(dominates((lv * step / 10, p), (value, params)) for lv, p in done)
                if count >= 2:
                    pruned = (step, count)
                    break
        out.append((TrialState.PRUNED, pruned) if pruned else (TrialState.DONE, None))
        if not pruned:
            done.append((level, params))
    return out


def test_an_nsga2_search_prunes_the_dominated_trials_only(tmp_path, capsys):
    db = tmp_path / "mo.db"
    trials = _nsga2_search(db, workers=0)
    assert len(trials) == 14
    assert all("params" in t.objectives for t in trials)
    expected = _expected(trials)
    assert [t.state for t in trials] == [state for state, _ in expected]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert len(pruned) >= 2
    for trial, (_, decided) in zip(trials, expected):
        if trial.state != TrialState.PRUNED:
            assert "pruned_step" not in trial.metrics
            continue
        step, count = decided
        m = trial.metrics
        assert m["pruned_step"] == step and trial.fidelity == step
        assert m["pruned_dominated_by"] == count >= 2
        assert m["pruned_threshold"] is None
        assert m["pruned_costs"] == {"params": trial.objectives["params"]}
        assert m["pruned_value"] == pytest.approx(curve_level(trial.seed) * step / 10)
    # a trial below the finished trials' median value is kept when it is small enough:
    # a value-only rule would have stopped it, dominance does not
    kept = []
    for i, trial in enumerate(trials):
        earlier = [t for t in trials[:i] if t.state == TrialState.DONE and t.duplicate_of is None]
        if trial.state != TrialState.DONE or trial.duplicate_of is not None or len(earlier) < 3:
            continue
        below = sum(curve_level(t.seed) > curve_level(trial.seed) for t in earlier)
        if below > len(earlier) / 2:
            kept.append(trial.number)
    assert kept, "no slow but small trial survived: pick another seed"
    # the record as `autometa show --json` prints it
    capsys.readouterr()
    assert main(["show", str(db), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    rows = {row["number"]: row for row in shown["trials"]}
    for trial in pruned:
        row = rows[trial.number]
        assert row["state"] == "PRUNED"
        assert row["metrics"]["pruned_dominated_by"] == trial.metrics["pruned_dominated_by"]
        assert row["metrics"]["pruned_step"] == trial.metrics["pruned_step"]


def test_worker_processes_prune_with_the_points_and_costs_sent_with_the_job(tmp_path):
    trials = _nsga2_search(tmp_path / "processes.db", workers=2)
    assert all(t.state in (TrialState.DONE, TrialState.PRUNED) for t in trials)
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned
    for trial in pruned:  # decided on trials that finished earlier, which dominate it
        m = trial.metrics
        step, point = m["pruned_step"], (m["pruned_value"], trial.objectives["params"])
        done = [t for t in trials if t.state == TrialState.DONE and t.number < trial.number]
        dominating = [
            t for t in done
            if t.duplicate_of is None
            and dominates((curve_level(t.seed) * step / 10, t.objectives["params"]), point)
        ]  # fmt: skip
        assert len(dominating) >= m["pruned_dominated_by"] >= 2


# -- refusals --------------------------------------------------------------------------------


def test_a_single_objective_search_or_an_evaluator_without_costs_is_refused(tmp_path):
    db = tmp_path / "s.db"
    with pytest.raises(ConfigurationError) as info:
        search(SPACE, "random", SizedCurves(), Budget(trials=2), storage=str(db),
               workers=0, progress=False, final=False, pruner="dominated:2")  # fmt: skip
    assert str(info.value) == (
        "`pruner` 'dominated' needs a multi-objective strategy (such as 'nsga2'); strategy "
        "'random' optimises the score alone: use 'median' or 'percentile:P'"
    )
    with pytest.raises(ConfigurationError) as info:
        search(SPACE, "nsga2", Curves(), Budget(trials=2), storage=str(db),
               workers=0, progress=False, final=False, pruner="dominated")  # fmt: skip
    assert str(info.value) == (
        "`pruner` 'dominated' needs each candidate's costs before it runs: Curves has no "
        "cost_objectives(graph) method"
    )
    assert not os.path.exists(db)  # refused before anything was written


def test_the_command_line_refuses_dominated_for_one_objective_in_one_line(tmp_path, capsys):
    db = tmp_path / "s.db"
    argv = ["search", "chain_mlp", "--objective", "synthetic", "--workers", "0",
            "--no-progress", "--trials", "1", "--storage", str(db),
            "--pruner", "dominated:2"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == (
        "autometa search: error: `pruner` 'dominated' needs a multi-objective strategy (such "
        "as 'nsga2'); strategy 'random' optimises the score alone: use 'median' or "
        "'percentile:P'\n"
    )
    assert not db.exists()


def test_a_strategy_of_three_objectives_is_told_the_costs_negated():
    """NSGA-II maximises every value it is told: costs go in negated, as the pruner reads them
    (smaller networks rank higher), never as raw counts that would reward bigger ones."""
    from types import SimpleNamespace

    from autometa.experiment._loop import SearchLoop

    def told(n: int, objectives: dict[str, float]) -> object:
        fake = SimpleNamespace(strategy=SimpleNamespace(n_objectives=n))
        return SearchLoop._value(fake, -3.0, objectives)  # type: ignore[arg-type]

    costs = {"params": 1000.0, "macs": 100.0, "latency": 0.25}
    assert told(1, costs) == -3.0
    assert told(2, costs) == (-3.0, -3.0)
    assert told(3, costs) == (-3.0, -3.0, -2.0)
    assert told(4, costs) == (-3.0, -3.0, -2.0, -0.25)
    assert told(4, {"params": 10.0}) is None
    small, big = told(3, {"params": 10.0, "macs": 10.0}), told(3, costs)
    assert small[1] > big[1] and small[2] > big[2]
