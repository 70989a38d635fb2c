"""Reads never write: show, plot, export and load_result open the study read-only.

The tests run as root, whom file modes do not stop, so "cannot write" is checked the way root
also obeys it: the study's bytes and mtime stay the same, no side file (-wal, -shm, -journal)
appears next to it, and the connection itself refuses writes (SQLite's ``mode=ro``).
"""

from __future__ import annotations

import os
import sqlite3

import pytest

from autometa.cli import main
from autometa.errors import StorageError
from autometa.experiment import SQLiteStorage, load_result
from autometa.space import shipped_spaces

TINY = str(shipped_spaces()["tiny"])
SEARCH = ["--objective", "synthetic", "--workers", "0", "--no-progress", "--trials", "3",
          "--final-top", "0"]  # fmt: skip


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    db = tmp_path_factory.mktemp("made") / "s.db"
    assert main(["search", TINY, *SEARCH, "--storage", str(db)]) == 0
    return db


@pytest.fixture
def study(made, tmp_path):
    """A copy of the study alone in a folder made read-only (0o555)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    target = folder / "s.db"
    with sqlite3.connect(made) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    folder.chmod(0o555)
    yield target
    folder.chmod(0o755)


def _reads(db, out):
    return [["show", str(db)], ["show", str(db), "--json"], ["show", str(db), "--errors"],
            ["show", str(db), "--csv", str(out / "t.csv")],
            ["plot", str(db), "--out", str(out / "plots")]]  # fmt: skip


def _snapshot(db):
    stat = db.stat()
    return db.read_bytes(), stat.st_mtime_ns, sorted(p.name for p in db.parent.iterdir())


def test_every_read_leaves_the_study_as_it_was(study, tmp_path, capsys):
    before = _snapshot(study)
    assert before[2] == ["s.db"]
    for argv in _reads(study, tmp_path):
        assert main(argv) == 0, argv
        assert _snapshot(study) == before, argv
    assert main(["export", str(study), str(tmp_path / "e")]) == 2  # synthetic: no weights
    assert _snapshot(study) == before
    result = load_result(study)
    assert len(result.trials) == 3
    result.storage.close()
    assert _snapshot(study) == before
    capsys.readouterr()


def test_a_read_only_connection_refuses_writes(study):
    store = SQLiteStorage(study, read_only=True)
    with pytest.raises(StorageError) as caught:
        store.update_study_settings({"workers": 1})
    assert str(caught.value) == (
        f"{study}: cannot write the study (attempt to write a readonly database); search and "
        "resume need write access to the file and its folder"
    )
    store.close()


def test_reading_a_missing_file_creates_nothing(tmp_path, capsys):
    missing = tmp_path / "none" / "s.db"
    with pytest.raises(StorageError, match="no such study database"):
        load_result(missing)
    assert not missing.parent.exists()


def test_a_study_held_by_a_search_is_read_through_its_wal(made, tmp_path, capsys):
    db = tmp_path / "s.db"
    with sqlite3.connect(made) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    writer = SQLiteStorage(db)  # a search's connection: -wal and -shm exist while it is open
    writer.update_study_settings({**writer.get_study().settings, "note": "in the wal"})
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["s.db", "s.db-shm", "s.db-wal"]
    main_file = db.read_bytes()
    assert main(["show", str(db), "--json"]) == 0
    assert '"note": "in the wal"' in capsys.readouterr().out  # the latest write is seen
    assert db.read_bytes() == main_file
    assert sorted(p.name for p in tmp_path.iterdir()) == files
    writer.close()


def test_show_keeps_the_journal_mode(study):
    os.chmod(study.parent, 0o755)
    conn = sqlite3.connect(study)
    assert conn.execute("PRAGMA journal_mode=DELETE").fetchone() == ("delete",)
    conn.close()
    before = _snapshot(study)
    assert main(["show", str(study)]) == 0
    assert _snapshot(study) == before
    assert study.read_bytes()[18:20] == b"\x01\x01"  # rollback journal, not WAL


def test_an_older_study_is_shown_as_it_is_and_migrated_by_resume(study, capsys):
    os.chmod(study.parent, 0o755)
    conn = sqlite3.connect(study)
    conn.execute("ALTER TABLE sessions DROP COLUMN heartbeat")
    conn.execute("ALTER TABLE sessions DROP COLUMN host")
    conn.execute("PRAGMA user_version = 0")
    conn.commit()
    conn.close()
    before = _snapshot(study)
    assert main(["show", str(study)]) == 0  # columns added later read as null
    assert "trials: 3 done" in capsys.readouterr().out
    assert _snapshot(study) == before
    assert main(["resume", str(study), "--workers", "0", "--no-progress", "--trials", "3"]) == 0
    conn = sqlite3.connect(study)
    columns = [r[1] for r in conn.execute("PRAGMA table_info(sessions)")]
    assert conn.execute("PRAGMA user_version").fetchone() == (1,)
    conn.close()
    assert columns[-2:] == ["host", "heartbeat"]
