"""One study, several processes: a live search holds its study; a dead one goes stale."""

from __future__ import annotations

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

from autometa.cli import main
from autometa.errors import StudyInUseError
from autometa.experiment import HEARTBEAT_ENV, Budget, SQLiteStorage, TrialState, search
from autometa.meta import SyntheticObjective
from autometa.space import shipped_spaces

ROOT = Path(__file__).resolve().parents[2]
DAG = str(shipped_spaces()["dag_cell"])
CLI = [sys.executable, "-c", "import sys; from autometa.cli import main; sys.exit(main())"]
RUNNING = int(TrialState.RUNNING)


def in_use(command: str, db: Path, pid: int) -> str:
    """The refusal line, as a regular expression."""
    return (
        f"autometa {command}: error: {re.escape(str(db))} is in use by pid {pid} on "
        rf"{re.escape(socket.gethostname())} since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d "
        r"\(last heartbeat \d+\.\d s ago\); wait for it to end, or if that process is gone, "
        r"run again in \d+ s or with --take-over \(take_over=True in Python\)"
    )


def states(db: Path) -> dict[int, int]:
    """Trials per state, read with plain sqlite3 (no autometa code, no writes)."""
    if not db.exists():
        return {}
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT state, COUNT(*) FROM trials GROUP BY state").fetchall())
    except sqlite3.Error:
        return {}
    finally:
        conn.close()


def wait_until(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# Runs in a second interpreter: imports everything a search needs, waits until the first
# search evaluates, then tries `search` and `resume` on its study at once, and `show`s it.
SECOND = """
import sqlite3, sys, time
from pathlib import Path
import autometa.experiment, autometa.space, autometa.strategies._random
from autometa.cli import main
db, args = Path(sys.argv[1]), sys.argv[2:]
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    if db.exists():
        conn = sqlite3.connect(db)
        try:
            if conn.execute("SELECT COUNT(*) FROM trials WHERE state = 1").fetchone()[0]:
                break
        except sqlite3.Error:
            pass
        finally:
            conn.close()
    time.sleep(0.05)
codes = [main(args), main(["resume", str(db), "--no-progress"]), main(["show", str(db)])]
print(*codes)
"""


def test_a_second_search_on_a_study_in_use_is_refused(tmp_path):
    db = tmp_path / "live.db"
    args = ["search", DAG, "--objective", "synthetic", "--eval-option", "delay=1.0",
            "--trials", "6", "--workers", "1", "--storage", str(db), "--no-progress"]  # fmt: skip
    first = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)  # fmt: skip
    try:
        second = subprocess.run([sys.executable, "-c", SECOND, str(db), *args],
                                capture_output=True, text=True, timeout=180)  # fmt: skip
        out, err = first.communicate(timeout=180)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert second.stdout.splitlines()[-1] == "2 2 0", second.stderr
    assert f"\n  running: pid {first.pid} on {socket.gethostname()} since " in second.stdout
    lines = second.stderr.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(in_use("search", db, first.pid), lines[0])
    assert re.fullmatch(in_use("resume", db, first.pid), lines[1])

    assert first.returncode == 0, err
    assert "  trials: 6 done\n" in out
    store = SQLiteStorage(db)
    trials = store.get_all_trials()
    sessions = store.get_sessions()
    store.close()
    assert [t.state for t in trials] == [TrialState.DONE] * 6
    assert all(t.attempts == 0 and "lost" not in t.metrics for t in trials)
    assert [s.pid for s in sessions] == [first.pid]  # the refused processes never claimed it


def test_a_killed_search_goes_stale_and_resume_runs_its_trials(tmp_path):
    db = tmp_path / "killed.db"
    env = {**os.environ, HEARTBEAT_ENV: "1.0"}  # stale 3 s after the last heartbeat
    args = ["search", DAG, "--objective", "synthetic", "--eval-option", "delay=1.5",
            "--trials", "4", "--workers", "2", "--storage", str(db), "--no-progress"]  # fmt: skip
    first = subprocess.Popen([*CLI, *args], stderr=subprocess.PIPE, env=env,
                             start_new_session=True)  # fmt: skip
    try:
        wait_until(lambda: states(db).get(RUNNING, 0) == 2)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the search and its workers, as a power cut would
        first.communicate(timeout=60)
    store = SQLiteStorage(db)
    running = [t.number for t in store.get_all_trials([TrialState.RUNNING])]
    assert len(running) == 2
    holder = store.live_session()  # within the grace period it still holds the study
    assert holder is not None and holder.pid == first.pid
    wait_until(lambda: store.live_session() is None, timeout=10)

    resumed = subprocess.run([*CLI, "resume", str(db), "--no-progress"], capture_output=True,
                             text=True, env=env, timeout=180)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "  trials: 4 done\n" in resumed.stdout
    trials = {t.number: t for t in store.get_all_trials()}
    sessions = store.get_sessions()
    store.close()
    assert all(trials[n].state == TrialState.DONE and trials[n].attempts == 0 for n in running)
    assert [s.ended is not None for s in sessions] == [True, True]
    assert sessions[0].pid == first.pid and sessions[0].ended < sessions[1].started + 1


def test_take_over_claims_a_study_whose_holder_looks_alive(tmp_path, capsys):
    db = tmp_path / "held.db"
    quick = ["--objective", "synthetic", "--workers", "0", "--no-progress"]
    assert main(["search", DAG, *quick, "--trials", "2", "--storage", str(db)]) == 0
    holder = SQLiteStorage(db)
    session = holder.start_session(heartbeat=3600.0)  # a search that hangs, or runs elsewhere
    capsys.readouterr()
    assert main(["resume", str(db), "--trials", "3"]) == 2
    assert re.fullmatch(in_use("resume", db, os.getpid()) + "\n", capsys.readouterr().err)
    assert main(["resume", str(db), "--trials", "3", "--take-over"]) == 0
    assert "  trials: 3 done\n" in capsys.readouterr().out
    assert holder.touch_session(session) is False  # it learns at its next heartbeat
    holder.close()


def test_a_search_that_was_taken_over_stops(tmp_path, monkeypatch):
    monkeypatch.setenv(HEARTBEAT_ENV, "0.05")
    db = tmp_path / "taken.db"
    errors: list[str] = []

    def run() -> None:
        try:
            search(DAG, evaluator=SyntheticObjective(delay=0.2), budget=Budget(trials=100),
                   storage=db, workers=0, progress=False)  # fmt: skip
        except StudyInUseError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=run)
    thread.start()
    wait_until(lambda: states(db).get(int(TrialState.DONE), 0) >= 2)
    taker = SQLiteStorage(db)
    session = taker.start_session(take_over=True)
    thread.join(30)
    assert not thread.is_alive()
    done = states(db).get(int(TrialState.DONE), 0)
    taker.close()
    assert errors == [
        f"study {db} was taken over by session {session} on host {socket.gethostname()} "
        f"(pid {os.getpid()}); stopping without writing more"
    ]
    assert done < 100
