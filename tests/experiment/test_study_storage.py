"""Storage conformance over SQLite and in-memory, plus SQLite-only behaviour."""

from __future__ import annotations

import multiprocessing
import re
import sqlite3

import pytest
import torch

from autometa.errors import StorageError
from autometa.experiment import InMemoryStorage, SQLiteStorage, get_storage
from autometa.experiment.storage import encode_weights
from autometa.experiment.trial import TrialState
from autometa.testing.storage import StorageTestCase, make_study, make_trial


class TestInMemoryStorage(StorageTestCase):
    @pytest.fixture
    def storage(self):
        return InMemoryStorage()


class TestSQLiteStorage(StorageTestCase):
    @pytest.fixture
    def storage(self, tmp_path):
        store = SQLiteStorage(tmp_path / "runs" / "study.db")
        yield store
        store.close()

    @pytest.fixture
    def reopen(self, storage):
        opened = []

        def _reopen():
            opened.append(SQLiteStorage(storage.path))
            return opened[-1]

        yield _reopen
        for store in opened:
            store.close()


def test_sqlite_uses_wal(tmp_path):
    store = SQLiteStorage(tmp_path / "s.db")
    conn = sqlite3.connect(tmp_path / "s.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"study", "trials", "strategy_state", "weights", "sessions"} <= tables
    conn.close()
    store.close()


def test_sqlite_refuses_a_non_database(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("just some text, clearly not SQLite " * 20)
    with pytest.raises(StorageError, match=re.escape(f"{path}: not an autometa study database")):
        SQLiteStorage(path)


def test_sqlite_refuses_a_newer_schema(tmp_path):
    path = tmp_path / "new.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    message = f"{path}: schema version 99 is newer than this autometa's (1); upgrade autometa"
    with pytest.raises(StorageError, match=f"^{re.escape(message)} to open it$"):
        SQLiteStorage(path)


def _writer(path: str, start: int) -> None:
    store = SQLiteStorage(path)
    for i in range(20):
        store.create_trials([make_trial(f"{start}-{i}")])
    store.close()


def test_sqlite_several_processes_write(tmp_path):
    path = tmp_path / "shared.db"
    store = SQLiteStorage(path)
    store.create_study(make_study())
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), p)) for p in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    trials = store.get_all_trials()
    assert [t.number for t in trials] == list(range(40))
    assert len({t.key for t in trials}) == 40
    store.close()


def test_get_storage():
    assert isinstance(get_storage(None), InMemoryStorage)
    assert isinstance(get_storage(":memory:"), InMemoryStorage)
    store = InMemoryStorage()
    assert get_storage(store) is store
    with pytest.raises(
        TypeError, match="`storage` must be a BaseStorage, a path or None, got int"
    ):
        get_storage(3)


def test_state_is_finished():
    assert [s.is_finished() for s in TrialState] == [False, False, True, True, True]


def test_sqlite_adds_the_session_columns_to_an_older_file(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE sessions (id INTEGER PRIMARY KEY AUTOINCREMENT, pid INTEGER, "
        "started REAL NOT NULL, updated REAL NOT NULL, ended REAL)"
    )
    conn.execute("INSERT INTO sessions (pid, started, updated) VALUES (12, 1.0, 2.0)")
    conn.commit()
    conn.close()
    store = SQLiteStorage(path)
    [old] = store.get_sessions()
    assert (old.pid, old.host, old.heartbeat, old.ended) == (12, None, None, None)
    assert store.live_session() is None  # judged with the default heartbeat: long stale
    new = store.start_session()
    assert [s.ended is None for s in store.get_sessions()] == [False, True]
    assert store.live_session().id == new
    store.close()


def test_weight_names_may_not_take_the_step_size_prefix():
    message = (
        "weight names must not start with 'step_size.' (kept for Meta-SGD step sizes), got "
        "['step_size.x']"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        encode_weights({"step_size.x": torch.zeros(1)})
