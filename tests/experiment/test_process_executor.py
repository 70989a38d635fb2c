"""Worker processes: faults inside workers, time-outs, killed workers, SIGKILL of the search."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from _scripted_evaluators import Scripted

from autometa.experiment import (
    HEARTBEAT_ENV,
    Budget,
    InMemoryStorage,
    ProcessExecutor,
    SQLiteStorage,
    TrialState,
    default_devices,
    search,
    trial_seed,
)
from autometa.experiment._worker import Job
from autometa.graph import to_json
from autometa.meta.synthetic import SyntheticObjective
from autometa.space import load_space, shipped_spaces

DAG = shipped_spaces()["dag_cell"]


def test_faults_in_workers_are_recorded_and_budget_finishes(tmp_path):
    faults = {
        trial_seed(0, 0): "raise",
        trial_seed(0, 1): "nan",
        trial_seed(0, 2): "sleep",
        trial_seed(0, 3): "kill",
        trial_seed(0, 4): "kill_once",
        trial_seed(0, 5): "oom",
    }
    result = search(
        DAG,
        evaluator=Scripted(faults, marker_dir=str(tmp_path)),
        budget=Budget(trials=9),
        storage=tmp_path / "faults.db",
        workers=2,
        trial_timeout=3.0,
        progress=False,
    )
    trials = {t.number: t for t in result.trials}
    assert len(trials) == 9 and result.counts["DONE"] == 4 and result.counts["FAILED"] == 5
    assert trials[0].error.startswith("ValueError: op 'broken' cannot run on this input (at ")
    assert trials[1].error == "score is nan (not finite)"
    assert trials[2].error == "timed out after 3 s (worker terminated)"
    assert trials[3].error == "worker died (signal 9); gave up after 2 attempts"
    assert trials[3].attempts == 1 and trials[3].metrics["lost"] == ["worker died (signal 9)"] * 2
    assert trials[4].state == TrialState.DONE and trials[4].attempts == 1
    assert trials[4].metrics["lost"] == ["worker died (signal 9)"]
    assert trials[5].error.startswith("out of memory: MemoryError: CUDA out of memory.")
    assert all(trials[n].state == TrialState.DONE for n in (6, 7, 8))
    assert {t.device for t in trials.values()} == {"cpu"}


@pytest.mark.parametrize("start_method", ["forkserver", "spawn"])
def test_executor_runs_in_parallel(start_method):
    graph = to_json(load_space(DAG).sample(0))
    executor = ProcessExecutor(2, start_method=start_method)
    executor.start(Scripted(delay=1.0))
    try:
        executor.wait(0)  # nothing in flight: returns at once
        executor.submit(Job(0, graph, seed=1))
        executor.submit(Job(1, graph, seed=2))
        outcomes = []
        while len(outcomes) < 2:
            outcomes += executor.wait(30)
        first, second = sorted(outcomes, key=lambda o: o.started)
        assert second.started < first.started + first.wall_time  # they overlapped in time
        assert sorted(o.number for o in outcomes) == [0, 1]
        assert all(o.result.ok and 1.0 <= o.wall_time < 2.0 for o in outcomes)
    finally:
        executor.shutdown()


def test_unpicklable_evaluator_is_refused():
    executor = ProcessExecutor(1)
    with pytest.raises(TypeError, match="^the evaluator must be picklable to run in worker"):
        executor.start(lambda graph, **kw: None)


def test_default_devices_on_cpu():
    # one GPU per worker (CUDA_VISIBLE_DEVICES) needs several GPUs; this machine has none
    assert default_devices(2) == [("cpu", None), ("cpu", None)]


def test_fork_is_refused():
    message = (
        "`start_method` must be 'spawn' or 'forkserver' (fork is not safe with torch), got "
        "start_method='fork'"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        ProcessExecutor(1, start_method="fork")


SCRIPT = """
import sys
from autometa.experiment import Budget, search
from autometa.meta.synthetic import SyntheticObjective
from autometa.space import load_space, shipped_spaces
from autometa.space import shipped_spaces

if __name__ == "__main__":
    search({space!r}, evaluator=SyntheticObjective(delay=0.2), budget=Budget(trials=12),
           storage=sys.argv[1], workers=1, seed=5, progress=False)
"""


def test_sigkill_mid_search_then_resume(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(SCRIPT.format(space=str(DAG))))
    db = tmp_path / "killed.db"
    env = {**os.environ, HEARTBEAT_ENV: "0.2"}  # the killed search is stale 0.6 s after it dies
    proc = subprocess.Popen([sys.executable, str(script), str(db)], start_new_session=True,
                            env=env)  # fmt: skip
    done_before: dict[int, tuple] = {}
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if db.exists():
                store = SQLiteStorage(db)
                done = store.get_all_trials([TrialState.DONE])
                store.close()
                if len(done) >= 4:
                    break
        os.killpg(proc.pid, signal.SIGKILL)  # the search and its worker, no clean-up at all
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    store = SQLiteStorage(db)
    before = store.get_all_trials()
    done_before = {t.number: t for t in before if t.state == TrialState.DONE}
    assert 4 <= len(done_before) < 12
    store.close()

    time.sleep(0.7)
    rerun = subprocess.run([sys.executable, str(script), str(db)], timeout=120, env=env)
    assert rerun.returncode == 0
    store = SQLiteStorage(db)
    after = {t.number: t for t in store.get_all_trials()}
    assert all(after[n] == t for n, t in done_before.items())  # nothing finished was lost
    assert sum(t.state == TrialState.DONE for t in after.values()) == 12 == len(after)
    uninterrupted = search(
        DAG, evaluator=SyntheticObjective(), budget=Budget(trials=12),
        storage=InMemoryStorage(), workers=0, seed=5, progress=False,
    )  # fmt: skip
    assert [after[n].key for n in range(12)] == [
        t.key for t in sorted(uninterrupted.trials, key=lambda t: t.number)
    ]
    assert len(store.get_all_trials()) == 12
    store.close()
