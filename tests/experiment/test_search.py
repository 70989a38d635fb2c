"""search(): budgets, results, determinism, resume, duplicates, Ctrl-C."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _scripted_evaluators import Scripted

from autometa.errors import SearchFailedError, StorageError
from autometa.experiment import (
    Budget,
    InMemoryStorage,
    SQLiteStorage,
    TrialState,
    default_storage_path,
    load_result,
    search,
    trial_seed,
)
from autometa.meta.synthetic import SyntheticObjective
from autometa.space import shipped_spaces

TINY = shipped_spaces()["tiny"]
DAG = shipped_spaces()["dag_cell"]


def run(storage, trials=6, space=DAG, evaluator=None, **kw):
    """An inline search (workers=0): fast and in this process."""
    return search(
        space,
        evaluator=evaluator or SyntheticObjective(),
        budget=Budget(trials=trials),
        storage=storage,
        workers=0,
        progress=False,
        **kw,
    )


def test_search_fills_budget_and_ranks(tmp_path):
    result = run(tmp_path / "s.db", trials=6)
    assert result.counts["DONE"] == 6 and len(result.trials) == 6
    scores = [t.score for t in result.trials]
    assert scores == sorted(scores, reverse=True)
    assert result.best.number == result.trials[0].number and result.best.score == max(scores)
    assert result.stop_reason == "trials budget reached (6)"
    assert result.meta_iterations == 600  # the synthetic objective's full fidelity is 100
    best = result.best
    assert best.graph.number_of_nodes() >= 3 and best.key and best.values
    assert best.seed == trial_seed(0, best.number)
    assert best.device == "cpu" and best.wall_time >= 0 and best.fidelity == 100
    assert best.metrics["params"] == best.objectives["params"]
    study = result.study
    assert study.space_name == "dag-cell" and study.space_source == str(DAG)
    assert study.space_text == DAG.read_text() and len(study.space_hash) == 64
    assert study.strategy == "random" and study.seed == 0
    assert set(study.versions) >= {"autometa", "torch", "python"}
    assert study.evaluator["target"] == "autometa.meta.synthetic:SyntheticObjective"
    assert study.evaluator["config"]["full_fidelity"] == 100


def test_same_seed_same_search(tmp_path):
    first = run(InMemoryStorage(), trials=8, seed=3)
    second = run(tmp_path / "again.db", trials=8, seed=3)
    other = run(InMemoryStorage(), trials=8, seed=4)

    def keys(result):
        return [t.key for t in sorted(result.trials, key=lambda t: t.number)]

    assert keys(first) == keys(second)
    assert [t.score for t in first.trials] == [t.score for t in second.trials]
    assert keys(first) != keys(other)


def test_resume_extends_and_matches_uninterrupted(tmp_path):
    path = tmp_path / "r.db"
    part = run(path, trials=4)
    kept = {t.number: t for t in part.trials}
    full = run(path, trials=9)
    assert full.counts["DONE"] == 9
    for number, trial in kept.items():
        assert SQLiteStorage(path).get_trial(number) == trial
    straight = run(InMemoryStorage(), trials=9)
    by_number = {t.number: (t.key, t.score) for t in straight.trials}
    assert {t.number: (t.key, t.score) for t in full.trials} == by_number


def test_resume_refuses_another_space(tmp_path):
    path = tmp_path / "s.db"
    first = run(path, trials=1, space=TINY)
    with pytest.raises(StorageError) as info:
        run(path, trials=1, space=DAG)
    message = str(info.value)
    assert message.startswith(f"SQLiteStorage({str(path)!r}): the study was created for space")
    assert first.study.space_hash in message and str(TINY) in message and str(DAG) in message
    assert message.endswith("use another storage for another space")


def test_resume_refuses_another_seed(tmp_path):
    path = tmp_path / "s.db"
    run(path, trials=1, seed=1)
    message = (
        f"SQLiteStorage({str(path)!r}): the study was created with seed 1, not 2; use "
        "another storage, or the same seed to resume"
    )
    with pytest.raises(StorageError, match=f"^{re.escape(message)}$"):
        run(path, trials=1, seed=2)


def test_small_space_exhausts(tmp_path):
    result = run(InMemoryStorage(), trials=50, space=TINY)
    # tiny.yaml has 2 + 4 + 16 = 22 distinct architectures: 1 or 2 layers of (16|32, tanh|relu)
    assert result.counts["DONE"] == len({t.key for t in result.trials}) < 50
    assert result.stop_reason == "the strategy has no new candidates"


def test_failures_inline_recorded(tmp_path):
    faults = {trial_seed(0, 1): "raise", trial_seed(0, 2): "nan", trial_seed(0, 4): "oom"}
    result = run(InMemoryStorage(), trials=6, evaluator=Scripted(faults))
    by_number = {t.number: t for t in result.trials}
    assert result.counts == {"QUEUED": 0, "RUNNING": 0, "DONE": 3, "FAILED": 3, "PRUNED": 0}
    assert by_number[1].error.startswith("ValueError: op 'broken' cannot run on this input (at ")
    assert by_number[2].error == "score is nan (not finite)"
    assert by_number[2].metrics["loss"] == "nan"
    assert by_number[4].error.startswith("out of memory: MemoryError: CUDA out of memory.")
    assert all(t.score is None for t in result.trials if t.state == TrialState.FAILED)


def test_inline_timeout_is_checked_after(tmp_path):
    evaluator = Scripted(delay=0.05)
    with pytest.raises(SearchFailedError) as info:  # no trial succeeded: the run failed
        run(InMemoryStorage(), trials=2, evaluator=evaluator, trial_timeout=0.01)
    result = info.value.result
    assert result.counts["FAILED"] == 2 and result.best is None
    assert str(info.value) == (
        f"InMemoryStorage: no trial succeeded: 2 failed (2 timed out); the first failure, trial "
        f"0: {result.trials[0].error}"
    )
    assert re.fullmatch(
        r"timed out: took [0-9.e-]+ s, over the 0.01 s limit \(the inline executor checks "
        r"after the evaluation\)",
        result.trials[0].error,
    )


def test_ctrl_c_requeues_and_resume_finishes(tmp_path):
    path = tmp_path / "c.db"
    with pytest.raises(KeyboardInterrupt):
        run(path, trials=6, evaluator=Scripted({trial_seed(0, 3): "interrupt"}))
    partial = load_result(path)
    states = {t.number: t.state for t in partial.trials}
    assert states == {0: TrialState.DONE, 1: TrialState.DONE, 2: TrialState.DONE,
                      3: TrialState.QUEUED}  # fmt: skip
    done = run(path, trials=6, allow_changes=True)  # the interrupting evaluator is replaced
    assert done.counts["DONE"] == 6
    straight = run(InMemoryStorage(), trials=6)
    assert sorted(t.key for t in done.trials) == sorted(t.key for t in straight.trials)


def test_seconds_budget(tmp_path):
    result = search(
        DAG, evaluator=Scripted(delay=0.1), budget=Budget(seconds=0.5), storage=InMemoryStorage(),
        workers=0, progress=False,
    )  # fmt: skip
    assert result.stop_reason == "time budget reached (0.5 s)"
    assert 2 <= result.counts["DONE"] <= 6


def test_meta_iterations_budget():
    result = search(
        DAG, evaluator=SyntheticObjective(), budget=Budget(meta_iterations=350),
        storage=InMemoryStorage(), workers=0, progress=False,
    )  # fmt: skip
    assert result.counts["DONE"] == 4 and result.meta_iterations == 400
    assert result.stop_reason == "meta-iterations budget reached (350)"


class RepeatStrategy:
    """A strategy that proposes the same architecture twice (duplicate handling)."""

    n_objectives = 1
    name = ""

    def __init__(self, space):
        self.space, self.asked, self.told = space, 0, {}

    def ask(self, n):
        from autometa.graph import canonical_hash
        from autometa.strategies import Candidate

        out = []
        for _ in range(n):
            graph = self.space.sample(self.asked // 2)  # 0, 0, 1, 1, ...
            out.append(
                Candidate(self.asked, graph, self.space.encode(graph), canonical_hash(graph))
            )
            self.asked += 1
        return out

    def tell(self, candidate, value):
        self.told[candidate] = value

    def state_dict(self):
        return {"asked": self.asked}

    def load_state_dict(self, state):
        self.asked = state["asked"]


def test_duplicates_answered_from_storage():
    from autometa.space import load_space

    space = load_space(DAG)
    strategy = RepeatStrategy(space)
    evaluator = Scripted()
    result = search(space, strategy=strategy, evaluator=evaluator, budget=Budget(trials=4),
                    storage=InMemoryStorage(), workers=0, progress=False, final=False)  # fmt: skip
    trials = sorted(result.trials, key=lambda t: t.number)
    assert [t.duplicate_of for t in trials] == [None, 0, None, 2]
    assert trials[1].score == trials[0].score and trials[1].metrics == {"duplicate_of": 0}
    assert evaluator.calls == 2  # inline: the same object; the repeats were not evaluated
    assert strategy.told == {i: trials[i].score for i in range(4)}
    assert result.study.strategy.endswith(":RepeatStrategy")


def test_default_storage_path():
    assert default_storage_path("dag cell", "ga", 3) == Path("runs/dag_cell-ga-seed3.db")
