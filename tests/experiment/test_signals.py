"""SIGTERM and SIGHUP stop ``autometa search`` the way Ctrl-C does: nothing finished is lost."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autometa.experiment import SQLiteStorage, TrialState
from autometa.space import shipped_spaces

ROOT = Path(__file__).resolve().parents[2]
DAG = str(shipped_spaces()["dag_cell"])
CLI = [sys.executable, "-c", "import sys; from autometa.cli import main; sys.exit(main())"]


def _states(db: Path) -> list[TrialState]:
    if not db.exists():
        return []
    store = SQLiteStorage(db)
    try:
        return [t.state for t in store.get_all_trials()]
    finally:
        store.close()


@pytest.mark.parametrize(
    ("signum", "to_group", "code", "resume"),
    [(signal.SIGTERM, False, 143, True), (signal.SIGHUP, True, 129, False)],
    ids=["SIGTERM-to-the-process", "SIGHUP-to-the-process-group"],
)
def test_signal_requeues_running_trials_and_resume_finishes(
    tmp_path, signum, to_group, code, resume
):
    db = tmp_path / "sig.db"
    cmd = [*CLI, "search", DAG, "--objective", "synthetic", "--eval-option", "delay=0.3",
           "--trials", "6", "--workers", "2", "--storage", str(db), "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.2)
        states = _states(db)
        if states.count(TrialState.DONE) >= 2 and TrialState.RUNNING in states:
            break
    # SIGTERM as `kill PID` sends it; SIGHUP as a closed terminal sends it (to the whole group)
    (os.killpg if to_group else os.kill)(proc.pid, signum)
    _, err = proc.communicate(timeout=60)
    name = signal.Signals(signum).name
    assert proc.returncode == code, err
    assert err == (
        f"terminated ({name}): finished trials are stored; continue with `autometa resume {db}`\n"
    )
    store = SQLiteStorage(db)
    trials = store.get_all_trials()
    store.close()
    with sqlite3.connect(db) as conn:
        sessions = conn.execute("SELECT ended FROM sessions").fetchall()
    states = [t.state for t in trials]
    assert TrialState.RUNNING not in states and TrialState.QUEUED in states
    assert 2 <= states.count(TrialState.DONE) < 6
    assert all(ended is not None for (ended,) in sessions)  # the session was closed
    done = {t.number: t.score for t in trials if t.state == TrialState.DONE}
    if not resume:  # the Ctrl-C test and the SIGTERM case cover resuming
        return
    resumed = subprocess.run(
        [*CLI, "resume", str(db), "--workers", "0", "--no-progress"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "trials: 6 done" in resumed.stdout
    store = SQLiteStorage(db)
    again = {t.number: t.score for t in store.get_all_trials() if t.number in done}
    store.close()
    assert again == done  # finished trials were kept, not run again
