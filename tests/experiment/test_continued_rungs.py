"""Rungs that continue: a promoted candidate pays its top rung, survives a kill between rungs
and ends with the numbers of one evaluation straight through to the top rung."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from autometa.errors import StorageError
from autometa.experiment import Budget, SuccessiveHalving, TrialState, load_result, search
from autometa.experiment._rungs import stored_state
from autometa.experiment.storage.base import encode_training_state
from autometa.experiment.storage.sqlite import SQLiteStorage
from autometa.graph import from_json
from autometa.meta import MAMLEvaluator
from autometa.meta.training_state import TrainingState
from autometa.space import shipped_spaces

ROOT = Path(__file__).resolve().parents[2]
SPACE = "tiny"
TINY = dict(
    num_tasks=2,
    episodes_per_task=2,
    test_tasks=2,
    test_episodes=2,
    family_options={"horizon": 5},
)
PLAN = SuccessiveHalving(1, 4, eta=2)  # rungs of 1, 2 and 4 meta-iterations: 4, 2, 1 trials


def _evaluator() -> MAMLEvaluator:
    return MAMLEvaluator("navigation2d", meta_iterations=4, **TINY)


def _run(storage, trials=4, **kw):
    return search(
        shipped_spaces()[SPACE], evaluator=_evaluator(), budget=Budget(trials=trials),
        storage=storage, workers=0, fidelity=PLAN, progress=False, final=False, **kw,
    )  # fmt: skip


def _check_spent_and_exact(result) -> None:
    """Every trial spent its highest rung; the winner equals a straight 4-iteration run."""
    trials = sorted(result.trials, key=lambda t: t.number)
    assert result.counts["DONE"] == 1 and result.counts["PRUNED"] == 3
    for trial in trials:
        assert trial.metrics["meta_iterations_spent"] == trial.fidelity
    assert sorted(t.fidelity for t in trials) == [1, 1, 2, 4]
    assert result.meta_iterations == 1 + 1 + 2 + 4  # not 4 * 1 + 2 * 2 + 4 = 12
    best = result.best
    assert best.metrics["resumed_from"] == 2
    straight = _evaluator()(from_json(best.graph_json), seed=best.seed, meta_iterations=4)
    assert best.score == straight.score
    for key in ("learning_curve", "learning_curve_pre", "meta_train_env_steps", "env_steps"):
        assert best.metrics[key] == straight.metrics[key], key
    weights = result.storage.load_weights(best.number)
    assert all((weights[n] == straight.state_dict[n]).all() for n in straight.state_dict)


def test_promoted_candidates_spend_their_top_rung_only(tmp_path):
    result = _run(tmp_path / "sh.db")
    _check_spent_and_exact(result)
    storage = SQLiteStorage(tmp_path / "sh.db", read_only=True)
    # finished trials keep no training state: nothing continues them
    assert all(storage.get_training_state_bytes(t.number) is None for t in result.trials)


def test_a_batch_continues_its_members_rungs_in_one_program(tmp_path):
    """With ``batch`` > 1 the promoted candidates continue their states together."""
    result = _run(tmp_path / "batch.db", batch=4)
    _check_spent_and_exact(result)
    second = [t for t in result.trials if t.fidelity == 2]
    assert len(second) == 1 and second[0].metrics["resumed_from"] == 1
    assert second[0].metrics["program"]["members"] == 2  # rung 1's two promotions, together
    assert result.best.metrics["resumed_from"] == 2


@pytest.mark.parametrize("batch", [1, 4])
def test_every_seed_of_a_candidate_continues_its_rungs(tmp_path, batch):
    """With ``seeds`` > 1 every seed's state is kept between rungs (one record a trial) and
    continued, alone or in a batch: each seed ends where its straight run ends."""
    result = _run(tmp_path / f"seeds{batch}.db", seeds=2, batch=batch)
    trials = sorted(result.trials, key=lambda t: t.number)
    assert [t.metrics["meta_iterations_spent"] for t in trials] == [t.fidelity for t in trials]
    assert result.meta_iterations == 1 + 1 + 2 + 4
    best = result.best
    assert best.fidelity == 4 and best.metrics["resumed_from"] == 2
    graph = from_json(best.graph_json)
    straight = [_evaluator()(graph, seed=s, meta_iterations=4) for s in best.metrics["seeds"]]
    assert best.metrics["seed_scores"] == [r.score for r in straight]
    weights = result.storage.load_weights(best.number)
    assert all(torch.equal(weights[n], straight[0].state_dict[n]) for n in weights)


def test_a_record_of_several_seeds_is_checked_seed_by_seed(tmp_path, caplog):
    storage = SQLiteStorage(tmp_path / "record.db")
    result = _run(storage, trials=1)
    trial = result.best
    graph = from_json(trial.graph_json)
    states = [_evaluator()(graph, seed=s, meta_iterations=1, keep_training_state=True)
              .training_state for s in (trial.seed, trial.seed + 1)]  # fmt: skip
    record = {f"seed.{k}/{n}": t for k, st in enumerate(states) for n, t in st.items()}
    for blob, reason in [
        (record, None),
        ({**record, "seed.2/generator": states[0]["generator"]},
         "training state: entry 'seed.2/generator' is not 'seed.<k>/<name>' with k below 2 "
         "(a state of 2 seeds)"),
        ({k: v for k, v in record.items() if k != "seed.1/generator"},
         "training state: entry 'generator' is missing"),
        (states[0], "is not 'seed.<k>/<name>' with k below 2 (a state of 2 seeds)"),  # one seed's
    ]:  # fmt: skip
        with sqlite3.connect(storage.path) as conn:
            conn.execute("INSERT OR REPLACE INTO training_states VALUES (?, 'safetensors', ?)",
                         (trial.number, encode_training_state(blob)))  # fmt: skip
        caplog.clear()
        got = stored_state(storage, trial, 2)
        if reason is None:
            assert set(got) == set(record) and not caplog.records
        else:
            assert got is None and reason in caplog.records[0].getMessage()


_KILLER = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from test_continued_rungs import _run, _evaluator
from autometa.meta import MAMLEvaluator

class KillAtSecondRung(MAMLEvaluator):
    def __call__(self, graph, *, meta_iterations=None, resume_from=None,
                 keep_training_state=False, **kw):
        if meta_iterations == 2:  # rung 0 is decided and its states are stored
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__call__(graph, meta_iterations=meta_iterations,
                                resume_from=resume_from,
                                keep_training_state=keep_training_state, **kw)

import test_continued_rungs as t
t._evaluator = lambda: KillAtSecondRung("navigation2d", meta_iterations=4, **t.TINY)
_run({path!r})
"""


def test_a_kill_between_rungs_loses_no_meta_iteration(tmp_path):
    path = str(tmp_path / "killed.db")
    script = _KILLER.format(tests=str(Path(__file__).parent), path=path)
    paths = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    partial = load_result(path)
    promoted = [t for t in partial.trials if t.rung == 1]
    assert len(promoted) == 2 and partial.counts["PRUNED"] == 2
    storage = SQLiteStorage(path, read_only=True)
    assert all(storage.get_training_state_bytes(t.number) is not None for t in promoted)
    resumed = _run(path, allow_changes=True, take_over=True)  # the killed session is gone
    _check_spent_and_exact(resumed)
    for trial in resumed.trials:
        if trial.fidelity == 2:
            assert trial.metrics["resumed_from"] == 1
        if trial.state == TrialState.PRUNED and trial.fidelity == 1:
            assert "resumed_from" not in trial.metrics


def test_a_damaged_stored_state_is_refused_and_the_rung_starts_over(tmp_path, caplog):
    path = tmp_path / "damaged.db"
    storage = SQLiteStorage(path)
    result = _run(storage, trials=1)
    number = result.best.number
    state = _evaluator()(from_json(result.best.graph_json), seed=result.best.seed,
                         meta_iterations=1, keep_training_state=True).training_state  # fmt: skip
    good = encode_training_state(state)
    wrong = encode_training_state({**state, "junk": torch.zeros(1)})
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO training_states VALUES (?, 'safetensors', ?)", (number, good))
        conn.execute("UPDATE trials SET state = ? WHERE number = ?",
                     (int(TrialState.QUEUED), number))  # fmt: skip
    trial = storage.get_trial(number)
    assert TrainingState.from_tensors(stored_state(storage, trial)).iteration == 1
    for blob in (b"\x05" + bytes(20), wrong):
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE training_states SET data = ? WHERE number = ?", (blob, number))
        caplog.clear()
        assert stored_state(storage, trial) is None
        assert len(caplog.records) == 1
    reason = (
        f"{path}: table training_states, row {number}, field 'data': not safetensors (its "
        "header length does not fit the blob)"
    )
    assert (
        caplog.records[0]
        .getMessage()
        .endswith(
            "its stored training state cannot be used (training state: unexpected entry 'junk'); "
            "its rung starts from scratch"
        )
    )
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE training_states SET data = ? WHERE number = ?", (b"\x05", number))
    with pytest.raises(StorageError) as info:
        storage.get_training_state_bytes(number)
    assert str(info.value) == reason
