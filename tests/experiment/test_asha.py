"""Asynchronous successive halving: the promotion rule, no waiting for rungs, resume, CLI."""

from __future__ import annotations

import pytest
from _scripted_evaluators import CallLog, PopulationLog

from autometa.cli import main
from autometa.experiment import (
    ASHA,
    Budget,
    InMemoryStorage,
    TrialRecord,
    TrialState,
    load_result,
    search,
)
from autometa.experiment.fidelity import Scheduler, fidelity_from_dict
from autometa.meta import MAMLEvaluator
from autometa.meta.synthetic import SyntheticObjective
from autometa.space import shipped_spaces

DAG = shipped_spaces()["dag_cell"]
PLAN = ASHA(10, 90, eta=3)  # rungs of 10, 30 and 90 meta-iterations
FIDELITIES = (10, 30, 90)


def _trial(number, scores, state=TrialState.QUEUED, promoted=False):
    """A trial that finished rungs ``0 .. len(scores) - 1`` with ``scores``.

    Waiting at its last rung, or (``promoted``) queued at the next one.
    """
    rungs = [
        {"rung": r, "meta_iterations": FIDELITIES[r], "score": s} for r, s in enumerate(scores)
    ]
    rung = len(scores) if promoted else len(scores) - 1
    return TrialRecord(
        number=number, state=state, key=f"k{number}", graph_json={}, score=scores[-1],
        metrics={"rungs": rungs}, fidelity=FIDELITIES[len(scores) - 1], rung=rung, bracket=0,
    )  # fmt: skip


def _decide(trials, free=1, accepting=True):
    promoted, pruned = Scheduler(PLAN).decide(trials, accepting=accepting, free=free)
    return [t.number for t in promoted], [t.number for t in pruned]


def test_promotion_rule_on_fixed_scores():
    # two results at rung 0: the top third of 2 is nobody
    assert _decide([_trial(0, [5.0]), _trial(1, [7.0])]) == ([], [])
    # three: the best is due at once, the rung does not wait for nine
    three = [_trial(0, [5.0]), _trial(1, [7.0]), _trial(2, [6.0])]
    assert _decide(three) == ([1], [])
    assert _decide(three, free=0) == ([], [])  # no free worker, no promotion
    # trial 1 is promoted; a weak fourth result leaves the top one of four unchanged
    four = [_trial(0, [5.0]), _trial(1, [7.0], promoted=True), _trial(2, [6.0]), _trial(3, [1.0])]
    assert _decide(four, free=None) == ([], [])
    # six results make the top two: trial 2 (6) joins trial 1 (7) *now*, with the rung so far
    six = [*four, _trial(4, [2.0]), _trial(5, [3.0])]
    assert _decide(six, free=None) == ([2], [])
    # a better result arriving later is due at once: 9 is the top of five, though 1 went first
    better = [*four, _trial(4, [9.0])]
    assert _decide(better, free=None) == ([4], [])
    # a promoted trial keeps its place among the rung's results, also while it runs
    better[1] = better[1].replace(state=TrialState.RUNNING)
    assert _decide(better[:4], free=None) == ([], [])


def test_higher_rungs_first_and_one_promotion_per_free_worker():
    rung1 = [_trial(n, [8.0, s]) for n, s in ((0, 3.0), (1, 4.0), (2, 2.0))]
    rung0 = [_trial(n, [s]) for n, s in ((3, 9.0), (4, 1.0), (5, 0.5))]
    trials = [*rung1, *rung0]
    # rung 0 has six results (the three past it count): top two are trials 0..2 at 8 and 3 at 9
    assert _decide(trials, free=1) == ([1], [])
    assert _decide(trials, free=2) == ([1, 3], [])
    assert _decide(trials, free=None) == ([1, 3], [])


def test_the_rest_is_dropped_once_nothing_can_run():
    trials = [_trial(0, [5.0]), _trial(1, [7.0], promoted=True), _trial(2, [6.0])]
    trials[1] = trials[1].replace(state=TrialState.DONE, rung=2)
    # while new candidates may start, waiting trials wait
    assert _decide(trials, accepting=True) == ([], [])
    assert _decide(trials, accepting=False) == ([], [0, 2])
    running = [*trials, _trial(3, [1.0]).replace(state=TrialState.RUNNING, fidelity=None)]
    assert _decide(running, accepting=False) == ([], [])  # a result may still make one due


def test_spec_round_trip_and_checks():
    assert fidelity_from_dict(PLAN.to_dict()) == PLAN
    assert PLAN.to_dict()["method"] == "asha"
    with pytest.raises(ValueError, match=r"^`eta` must be at least 2, got eta=1$"):
        ASHA(1, 9, eta=1)


def _run(storage, trials, evaluator=None, workers=0, **kw):
    return search(
        DAG, evaluator=evaluator or SyntheticObjective(full_fidelity=90),
        budget=Budget(trials=trials), storage=storage, workers=workers, fidelity=PLAN,
        progress=False, final=False, **kw,
    )  # fmt: skip


def _calls(path):
    return [int(line.split()[1]) for line in path.read_text().splitlines()]


def test_inline_order_follows_the_rule(tmp_path):
    log = tmp_path / "calls.txt"
    result = _run(InMemoryStorage(), 9, evaluator=CallLog(log))
    calls = _calls(log)
    # one worker: three first-rung results, then the best of them continues at once
    assert calls[:4] == [10, 10, 10, 30]
    assert calls.count(10) == 9 and calls.count(30) >= 3 and calls.count(90) >= 1
    assert all(t.state.is_finished() for t in result.trials)
    assert result.counts["DONE"] == calls.count(90)
    assert result.counts["PRUNED"] == 9 - calls.count(90)
    assert result.best.fidelity == 90 and result.best.rung == 2
    # the loop's budget: every evaluation's meta-iterations (this evaluator keeps no state)
    assert result.meta_iterations == sum(calls)


def test_two_worker_processes_never_wait_for_a_rung(tmp_path):
    log = tmp_path / "calls.txt"
    result = _run(tmp_path / "a.db", 9, evaluator=CallLog(log), workers=2)
    calls = _calls(log)
    assert calls.count(10) == 9
    # successive halving would start the first 30 after all nine 10s; ASHA promotes as soon
    # as three results are in, while new candidates are still being started
    ninth = [i for i, c in enumerate(calls) if c == 10][-1]
    assert calls.index(30) < ninth
    assert all(t.state.is_finished() for t in result.trials)
    assert result.counts["DONE"] >= 1 and result.meta_iterations == sum(calls)


def test_batched_promotions_form_populations_of_one_fidelity(tmp_path):
    log = tmp_path / "calls.txt"
    result = _run(InMemoryStorage(), 12, evaluator=PopulationLog(log), batch=2)
    populations = [
        tuple(map(int, line.split()))
        for line in (tmp_path / "calls.txt.populations").read_text().splitlines()
    ]
    # promotions leave in twos like new candidates, each population at one rung's length
    assert any(size == 2 and length > 10 for size, length in populations)
    assert all(length in FIDELITIES for _, length in populations)
    singles = _calls(log) if log.exists() else []
    assert result.meta_iterations == sum(n * f for n, f in populations) + sum(singles)
    for trial in result.trials:  # every rung ran at its own length, as recorded
        assert [r["meta_iterations"] for r in trial.metrics["rungs"]] == list(
            FIDELITIES[: trial.rung + 1]
        )
    assert all(t.state.is_finished() for t in result.trials)


def test_resume_matches_uninterrupted(tmp_path):
    path = tmp_path / "asha.db"

    class InterruptAt(SyntheticObjective):  # Ctrl-C during the 7th evaluation
        def __init__(self):
            super().__init__(full_fidelity=90)
            self.calls = 0

        def __call__(self, graph, **kw):
            self.calls += 1
            if self.calls == 7:
                raise KeyboardInterrupt
            return super().__call__(graph, **kw)

    with pytest.raises(KeyboardInterrupt):
        _run(path, 9, evaluator=InterruptAt())
    partial = load_result(path)
    assert partial.counts["QUEUED"] == len(partial.trials) < 9
    assert {t.rung for t in partial.trials} == {0, 1}  # one promotion happened
    resumed = _run(path, 9, allow_changes=True)
    straight = _run(InMemoryStorage(), 9)

    def summary(result):
        trials = sorted(result.trials, key=lambda t: t.number)
        return [(t.key, t.state, t.rung, t.fidelity, t.metrics["rungs"]) for t in trials]

    assert summary(resumed) == summary(straight)
    assert resumed.meta_iterations == straight.meta_iterations


def test_promotions_continue_the_stored_training_state():
    tiny = dict(num_tasks=2, episodes_per_task=2, test_tasks=2, test_episodes=2,
                family_options={"horizon": 5})  # fmt: skip
    evaluator = MAMLEvaluator("navigation2d", meta_iterations=4, **tiny)
    result = search(
        shipped_spaces()["tiny"], evaluator=evaluator,
        budget=Budget(trials=4), storage=InMemoryStorage(), workers=0,
        fidelity=ASHA(1, 4, eta=2), progress=False, final=False,
    )  # fmt: skip
    promoted = [t for t in result.trials if t.rung]
    assert promoted and all(t.state.is_finished() for t in result.trials)
    for trial in result.trials:  # each trial paid its highest rung only
        assert trial.metrics["meta_iterations_spent"] == trial.fidelity
        if trial.rung:
            assert trial.metrics["resumed_from"] == trial.metrics["rungs"][-2]["meta_iterations"]
    assert result.meta_iterations == sum(t.fidelity for t in result.trials)


def test_cli_asha_search_and_bad_spec(tmp_path, capsys):
    db = tmp_path / "s.db"
    quick = ["--objective", "synthetic", "--workers", "0", "--no-progress", "--storage"]
    argv = ["search", str(DAG), *quick, str(db), "--trials", "9", "--final-seeds", "0"]
    code = main([*argv, "--fidelity", "asha", "--meta-iterations", "90", "--min-iterations", "10"])
    assert code == 0
    study = load_result(db)
    assert {t.bracket for t in study.trials} == {0} and study.best.fidelity == 90
    assert main(["resume", str(db), "--trials", "12", "--no-progress"]) == 0  # ASHA again
    more = load_result(db)
    assert len(more.trials) == 12 and {t.bracket for t in more.trials} == {0}
    assert all(t.state.is_finished() for t in more.trials)
    assert more.meta_iterations > study.meta_iterations
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["search", str(DAG), *quick, str(tmp_path / "t.db"), "--fidelity", "ashaa"])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err == (
        "autometa search: error: argument --fidelity: invalid choice: 'ashaa' (choose from "
        "'successive-halving', 'hyperband', 'asha')\n"
    )
    assert not (tmp_path / "t.db").exists()
