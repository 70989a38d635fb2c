"""A damaged study file or a full disk is one line naming the file and what to do; the study
itself is left as it was."""

from __future__ import annotations

import sqlite3

import pytest

from autometa.cli import main
from autometa.errors import StorageError
from autometa.experiment import SQLiteStorage, load_result
from autometa.experiment.trial import TrialRecord, TrialState
from autometa.space import shipped_spaces

TINY = str(shipped_spaces()["tiny"])
SEARCH = ["--objective", "synthetic", "--workers", "0", "--no-progress", "--trials", "3",
          "--final-top", "0"]  # fmt: skip
DAMAGED = "the study file is damaged (database disk image is malformed); it was left as it is: "
NOT_A_DATABASE = (
    "not an autometa study database (file is not a database); check the path: a study is the "
    "SQLite file `autometa search` wrote"
)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    db = tmp_path_factory.mktemp("made") / "s.db"
    assert main(["search", TINY, *SEARCH, "--storage", str(db)]) == 0
    return db


@pytest.fixture
def db(made, tmp_path):
    """A consistent copy of the study (SQLite's backup), one page per table's root."""
    target = tmp_path / "s.db"
    with sqlite3.connect(made) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    return target


def _root_page(db, table):
    conn = sqlite3.connect(db)
    sql = "SELECT rootpage FROM sqlite_master WHERE name = ?"
    (page,) = conn.execute(sql, (table,)).fetchone()
    (size,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    return page, size


def _commands(db, tmp_path):
    return [["show", str(db)], ["show", str(db), "--json"],
            ["plot", str(db), "--out", str(tmp_path / "p")],
            ["export", str(db), str(tmp_path / "e")],
            ["resume", str(db), "--workers", "0", "--no-progress", "--trials", "3"]]  # fmt: skip


def test_a_garbage_page_is_one_line_and_the_file_stays(db, tmp_path, capsys):
    page, size = _root_page(db, "trials")
    data = bytearray(db.read_bytes())
    data[(page - 1) * size : page * size] = bytes(range(256)) * (size // 256)
    db.write_bytes(bytes(data))
    for argv in _commands(db, tmp_path):  # resume, the one that may write, comes last
        assert main(argv) == 2, argv
        assert capsys.readouterr().err == (
            f"autometa {argv[0]}: error: {db}: {DAMAGED}restore it from a copy, or save what "
            f"is readable with `sqlite3 {db} .recover`\n"
        )
        assert db.read_bytes() == bytes(data)
        if argv[0] != "resume":  # a read leaves no file behind (no -wal, -shm, output)
            assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]
    with pytest.raises(StorageError, match="database disk image is malformed"):
        load_result(db)


def test_a_file_that_is_not_a_database_is_one_line(db, tmp_path, capsys):
    data = b"SQLite format 4\x00" + db.read_bytes()[16:]
    db.write_bytes(data)
    for argv in _commands(db, tmp_path):
        assert main(argv) == 2, argv
        assert capsys.readouterr().err == f"autometa {argv[0]}: error: {db}: {NOT_A_DATABASE}\n"
    assert db.read_bytes() == data


def test_a_full_disk_is_one_line_and_keeps_every_earlier_write(db):
    store = SQLiteStorage(db)
    trial = store.get_trial(0)
    (pages,) = store._conn.execute("PRAGMA page_count").fetchone()
    store._conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "disk is full"
    big = TrialRecord(number=0, state=TrialState.QUEUED, key="k" * 64,
                      graph_json=trial.graph_json, metrics={"pad": "x" * 200_000})  # fmt: skip
    with pytest.raises(StorageError) as caught:
        store.create_trials([big])
    assert str(caught.value) == (
        f"{db}: the disk is full (database or disk is full); the study keeps every write made "
        f"before this one: free some space, then continue with `autometa resume {db}`"
    )
    store.close()
    reread = SQLiteStorage(db, read_only=True)
    assert [t.number for t in reread.get_all_trials()] == [0, 1, 2]
    assert reread._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    reread.close()


def test_a_full_disk_under_an_output_file_is_one_line(db, capsys):
    assert main(["show", str(db), "--csv", "/dev/full"]) == 2
    assert capsys.readouterr().err == (
        "autometa show: error: /dev/full: no space left on the disk (No space left on device); "
        "free some space and run the command again (the study keeps everything written before)\n"
    )
