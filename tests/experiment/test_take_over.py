"""Take-over of a live search: the old holder's late writes are refused (fencing by session
epoch) and it stops with one line, while the taker finishes the study."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from autometa.cli import main
from autometa.errors import StudyInUseError
from autometa.experiment import HEARTBEAT_ENV, SQLiteStorage, TrialState
from autometa.space import shipped_spaces

DAG = str(shipped_spaces()["dag_cell"])
CLI = [sys.executable, "-c", "import sys; from autometa.cli import main; sys.exit(main())"]


def rows(db: Path, sql: str) -> list[tuple]:
    """Rows read with plain sqlite3, read-only (no autometa code, no writes)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def taken_over_line(command: str, db: Path, session: int, pid: int) -> str:
    return (
        f"autometa {command}: study {db} was taken over by session {session} on host "
        f"{socket.gethostname()} (pid {pid}); stopping without writing more"
    )


# Runs in a second interpreter: imports everything first, then takes the study over as soon
# as the first search (whose budget would keep it busy for a minute) has finished a trial,
# and finishes the study with a smaller budget, evaluating in its own process.
TAKER = """
import sqlite3, sys, time
import autometa.experiment, autometa.space
from autometa.cli import main
db = sys.argv[1]
deadline = time.monotonic() + 90
while time.monotonic() < deadline:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            if conn.execute("SELECT COUNT(*) FROM trials WHERE state = 2").fetchone()[0]:
                break
        finally:
            conn.close()
    except sqlite3.Error:
        pass
    time.sleep(0.05)
sys.exit(main(["resume", db, "--take-over", "--trials", "8", "--workers", "0", "--no-progress"]))
"""


def test_a_live_take_over_fences_the_old_holder(tmp_path):
    """The old holder's heartbeat is slow, so it keeps evaluating after the take-over and
    learns from its first refused write; it stops with one line, and the taker finishes the
    study with exit code 0, every trial and final run done once. (A holder whose heartbeat
    comes first stops the same way: test_study_sessions.py.)"""
    db = tmp_path / "taken.db"
    args = ["search", DAG, "--objective", "synthetic", "--eval-option", "delay=0.4",
            "--trials", "100", "--workers", "1", "--final-top", "2", "--final-seeds", "2",
            "--storage", str(db), "--no-progress"]  # fmt: skip
    taker = subprocess.Popen([sys.executable, "-c", TAKER, str(db)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             env={**os.environ, HEARTBEAT_ENV: "0.1"})  # fmt: skip
    holder = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, HEARTBEAT_ENV: "60"},
                              start_new_session=True)  # fmt: skip
    try:
        _, taker_err = taker.communicate(timeout=120)
        out, err = holder.communicate(timeout=60)
    finally:
        for proc in (taker, holder):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL) if proc is holder else proc.kill()
    assert taker.returncode == 0, taker_err
    sessions = rows(db, "SELECT id, pid FROM sessions ORDER BY id")
    assert [s[1] for s in sessions][0] == holder.pid and len(sessions) == 2
    assert holder.returncode == 1
    assert err.splitlines() == [taken_over_line("search", db, sessions[1][0], sessions[1][1])]
    store = SQLiteStorage(db)
    trials = store.get_all_trials()
    store.close()
    assert len(trials) >= 8 and all(t.state == TrialState.DONE for t in trials)
    store = SQLiteStorage(db)
    runs = store.get_final_runs()
    store.close()
    assert len(runs) == 4 and all(r.state == TrialState.DONE for r in runs)
    assert len({(r.entry, r.seed_index) for r in runs}) == 4  # each evaluated into one record


def test_a_taken_over_session_cannot_write(tmp_path):
    db = tmp_path / "fenced.db"
    assert main(["search", DAG, "--objective", "synthetic", "--trials", "2", "--workers", "0",
                 "--final-top", "0", "--storage", str(db), "--no-progress"]) == 0  # fmt: skip
    old, new = SQLiteStorage(db), SQLiteStorage(db)
    mine = old.start_session(heartbeat=60.0)
    theirs = new.start_session(take_over=True)
    trial = old.get_trial(0)
    with pytest.raises(StudyInUseError) as info:
        old.update_study_settings({"workers": 9})
    assert str(info.value) == (
        f"study {db} was taken over by session {theirs} on host {socket.gethostname()} "
        f"(pid {os.getpid()}); stopping without writing more"
    )
    assert type(info.value).__name__ == "StudyTakenOverError" and info.value.session == theirs
    assert new.get_study().settings["workers"] == 0 and new.get_trial(0) == trial
    assert old.touch_session(mine) is False
    new.update_study_settings({"workers": 3})  # the holder writes as usual
    assert old.get_study().settings == {"workers": 3}
    old.close()
    new.close()
