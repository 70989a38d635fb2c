"""The final stage survives lost workers and killed searches; --fresh respects live holders.

Every fault here is a real process fault: a worker or a search SIGKILLed, a session row of
another host with a fresh heartbeat (the take-over of a live search: test_take_over.py).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _scripted_evaluators import Scripted

from autometa.cli import main
from autometa.errors import StudyInUseError
from autometa.experiment import (
    HEARTBEAT_ENV,
    Budget,
    Final,
    SQLiteStorage,
    TrialState,
    final_seeds,
    search,
    trial_seed,
)
from autometa.space import shipped_spaces

DAG = str(shipped_spaces()["dag_cell"])
CLI = [sys.executable, "-c", "import sys; from autometa.cli import main; sys.exit(main())"]
RUNNING = int(TrialState.RUNNING)


def wait_until(condition, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def rows(db: Path, sql: str) -> list[tuple]:
    """Rows read with plain sqlite3, read-only (no autometa code, no writes)."""
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.Error:
        return []
    finally:
        conn.close()


def final_runs(db: Path):
    store = SQLiteStorage(db)
    try:
        return store.get_final_runs()
    finally:
        store.close()


def assert_every_final_run_done_once(runs) -> None:
    """Each (entry, seed) evaluated into exactly one DONE record."""
    assert runs and all(r.state == TrialState.DONE and r.score is not None for r in runs)
    pairs = [(r.entry, r.seed_index) for r in runs]
    assert len(pairs) == len(set(pairs))


# -- a worker lost during the final stage --------------------------------------------------


def test_a_worker_killed_in_the_final_stage_is_retried_and_the_verdict_given(tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    db = tmp_path / "final.db"
    killed: list[int] = []

    def kill_a_final_worker() -> None:
        """SIGKILL the worker evaluating a RUNNING final run, once."""
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            found = rows(db, f"SELECT data FROM final_runs WHERE state = {RUNNING}")
            running = {json.loads(data)["seed"] for (data,) in found}
            for pid_file in busy.iterdir() if running else ():
                try:
                    seed = int(pid_file.read_text())
                except (OSError, ValueError):
                    continue
                if seed in running:
                    os.kill(int(pid_file.name), signal.SIGKILL)
                    killed.append(int(pid_file.name))
                    return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_a_final_worker)
    killer.start()
    result = search(
        DAG, evaluator=Scripted(delay=0.4, busy_dir=str(busy)), budget=Budget(trials=4),
        storage=db, workers=2, executor="process", progress=False,
        final=Final(top=2, seeds=2),
    )  # fmt: skip
    killer.join(5)
    assert len(killed) == 1
    runs = result.storage.get_final_runs()
    assert len(runs) == 4
    assert_every_final_run_done_once(runs)
    retried = [r for r in runs if r.attempts]
    assert len(retried) == 1 and retried[0].metrics["lost"] == ["worker died (signal 9)"]
    assert result.verdict is not None and result.verdict.complete
    assert result.verdict.winner is not None
    assert result.verdict.sentence().startswith(f"{result.verdict.winner.label} scores ")
    assert result.best is not None and result.best.number == result.verdict.winner.trial


def test_a_final_run_lost_on_every_try_is_run_again_by_resume(tmp_path, capsys):
    db = tmp_path / "lost.db"
    used = {trial_seed(0, n) for n in range(2)}
    (seed,) = final_seeds(0, 1, used)
    evaluator = Scripted({seed: "kill_twice"}, marker_dir=str(tmp_path))
    options = dict(budget=Budget(trials=2), storage=db, workers=1, executor="process",
                   progress=False, final=Final(top=1, seeds=1))  # fmt: skip
    first = search(DAG, evaluator=evaluator, **options)
    (run,) = first.storage.get_final_runs()
    assert run.state == TrialState.FAILED and run.attempts == 1
    assert run.error == "worker died (signal 9); gave up after 2 attempts"
    assert first.verdict is not None and not first.verdict.complete
    assert first.verdict.winner is None
    assert first.verdict.sentence() == (
        "The final stage is incomplete: 1 of 1 evaluations are not done, 1 of them lost with "
        f"their worker; no verdict yet. Finish it with `autometa resume {db}`."
    )
    assert main(["show", str(db)]) == 0
    assert first.verdict.sentence() in capsys.readouterr().out

    second = search(DAG, evaluator=evaluator, **options)  # what `autometa resume` runs
    (run,) = second.storage.get_final_runs()
    assert run.state == TrialState.DONE and run.attempts == 2 and run.error is None
    assert run.metrics["lost"] == ["worker died (signal 9)"] * 2
    assert second.verdict is not None and second.verdict.complete
    assert second.verdict.winner is not None and second.best is not None


def test_an_oom_kill_in_the_final_stage_stays_a_recorded_failure(tmp_path):
    used = {trial_seed(0, n) for n in range(2)}
    (seed,) = final_seeds(0, 1, used)
    result = search(
        DAG, evaluator=Scripted({seed: "oom"}), budget=Budget(trials=2),
        storage=tmp_path / "oom.db", workers=0, progress=False, final=Final(top=1, seeds=1),
    )  # fmt: skip
    (run,) = result.storage.get_final_runs()
    assert run.state == TrialState.FAILED and not run.lost_with_worker and run.attempts == 0
    assert run.error.startswith("out of memory: MemoryError: CUDA out of memory.")
    assert result.verdict is not None and result.verdict.complete
    assert result.verdict.sentence() == (
        "The final stage finished, but no finalist was scored on every seed; no verdict."
    )


# -- a search killed during the final stage ------------------------------------------------


def test_a_final_run_left_running_by_a_killed_search_is_run_by_resume(tmp_path):
    db = tmp_path / "killed.db"
    env = {**os.environ, HEARTBEAT_ENV: "0.2"}  # stale 0.6 s after the kill
    args = ["search", DAG, "--objective", "synthetic", "--eval-option", "delay=0.3",
            "--trials", "2", "--workers", "1", "--final-top", "1", "--final-seeds", "3",
            "--storage", str(db), "--no-progress"]  # fmt: skip
    proc = subprocess.Popen([*CLI, *args], stderr=subprocess.PIPE, env=env,
                            start_new_session=True)  # fmt: skip
    try:
        wait_until(lambda: rows(db, f"SELECT id FROM final_runs WHERE state = {RUNNING}"))
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the search and its worker
        proc.communicate(timeout=30)
    (left,) = rows(db, f"SELECT id FROM final_runs WHERE state = {RUNNING}")
    time.sleep(0.8)
    resumed = subprocess.run([*CLI, "resume", str(db), "--no-progress"], capture_output=True,
                             text=True, env=env, timeout=120)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    runs = final_runs(db)
    assert len(runs) == 3 and runs[left[0]].state == TrialState.DONE
    assert_every_final_run_done_once(runs)
    lines = resumed.stdout.splitlines()
    assert any(line.startswith("trial ") and " scores " in line for line in lines)  # verdict


# -- --fresh and a live session on another host --------------------------------------------


def test_fresh_refuses_a_study_held_by_a_live_session_on_another_host(tmp_path, capsys):
    db = tmp_path / "elsewhere.db"
    base = ["search", DAG, "--objective", "synthetic", "--trials", "2", "--workers", "0",
            "--final-top", "0", "--storage", str(db), "--no-progress"]  # fmt: skip
    assert main(base) == 0
    now = time.time()
    conn = sqlite3.connect(db)
    with conn:  # a search on another machine: its pid means nothing here
        conn.execute("INSERT INTO sessions (pid, host, heartbeat, started, updated) "
                     "VALUES (999999, 'gpu-node-7', 60.0, ?, ?)", (now - 5, now))  # fmt: skip
    conn.close()
    capsys.readouterr()
    assert main([*base, "--fresh"]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(
        f"autometa search: error: {re.escape(str(db))} is in use by pid 999999 on gpu-node-7 "
        r"since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(last heartbeat \d+\.\d s ago\); wait for it "
        r"to end, or if that process is gone, run again in \d+ s or with --take-over "
        r"\(take_over=True in Python\)\n",
        err,
    )
    with pytest.raises(StudyInUseError, match="is in use by pid 999999 on gpu-node-7 since"):
        search(DAG, evaluator=Scripted(), budget=Budget(trials=2), storage=db, workers=0,
               progress=False, final=False, fresh=True)  # fmt: skip
    assert len(rows(db, "SELECT id FROM sessions")) == 2  # nothing was deleted or written
    assert main([*base, "--trials", "3", "--fresh", "--take-over"]) == 0
    assert rows(db, "SELECT host FROM sessions") == [(socket.gethostname(),)]
    assert len(rows(db, "SELECT number FROM trials")) == 3
