"""Opening a study file: read-only for readers, and SQLite's failures as one line each.

Readers (``show``, ``plot``, ``export``, ``load_result``) open the file with ``mode=ro`` and
never create tables, migrate or switch the journal mode; when no search holds the file (no
``-wal`` or ``-journal`` file beside it) they open it ``immutable``, so not even SQLite's
``-shm`` / ``-wal`` side files appear and a folder the user cannot write works. A damaged page,
a file that is not a database or a full disk become a :class:`StorageError` naming the file
and what to do, raised by every statement and fetch of the connection.
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from pathlib import Path
from typing import Any

from autometa.errors import StorageError

__all__ = ["StudyConnection", "check_schema", "connect", "schema_columns", "study_file_error"]

# SQLite's primary result codes (the low byte of an extended code).
_READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 8, 10, 11, 13, 14, 26


def study_file_error(exc: BaseException, path: Any) -> StorageError | None:
    """One line for a failure of the study file itself (damage, full disk), or None.

    Busy / locked and programming errors are not the file's fault and give None.
    """
    if not isinstance(exc, sqlite3.Error):
        return None
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    reason = str(exc)
    if code == _NOTADB:
        return StorageError(
            f"{path}: not an autometa study database ({reason}); check the path: a study is "
            "the SQLite file `autometa search` wrote"
        )
    if code == _CORRUPT:
        return StorageError(
            f"{path}: the study file is damaged ({reason}); it was left as it is: restore it "
            f"from a copy, or save what is readable with `sqlite3 {path} .recover`"
        )
    if code == _FULL:
        return StorageError(
            f"{path}: the disk is full ({reason}); the study keeps every write made before "
            f"this one: free some space, then continue with `autometa resume {path}`"
        )
    if code == _IOERR:
        return StorageError(
            f"{path}: reading or writing the study file failed ({reason}); check the disk "
            "and that the file is not being replaced, then run the command again"
        )
    if code == _READONLY:
        return StorageError(
            f"{path}: cannot write the study ({reason}); search and resume need write "
            "access to the file and its folder"
        )
    if code == _CANTOPEN:
        return StorageError(f"{path}: cannot open the study file ({reason})")
    return None


def _translate(exc: sqlite3.Error, path: Any) -> BaseException:
    return study_file_error(exc, path) or exc


class StudyCursor(sqlite3.Cursor):
    """A cursor whose statements and fetches raise :func:`study_file_error`'s lines."""

    def execute(self, sql: str, parameters: Any = ()) -> StudyCursor:  # type: ignore[override]
        try:
            return super().execute(sql, parameters)  # type: ignore[return-value]
        except sqlite3.Error as exc:
            raise _translate(exc, self.connection.path) from None  # type: ignore[attr-defined]

    def executemany(self, sql: str, seq: Any) -> StudyCursor:  # type: ignore[override]
        try:
            return super().executemany(sql, seq)  # type: ignore[return-value]
        except sqlite3.Error as exc:
            raise _translate(exc, self.connection.path) from None  # type: ignore[attr-defined]

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.Error as exc:
            raise _translate(exc, self.connection.path) from None  # type: ignore[attr-defined]

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.Error as exc:
            raise _translate(exc, self.connection.path) from None  # type: ignore[attr-defined]

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except sqlite3.Error as exc:
            raise _translate(exc, self.connection.path) from None  # type: ignore[attr-defined]


class StudyConnection(sqlite3.Connection):
    """A connection that knows its study's path and makes :class:`StudyCursor` cursors."""

    path: Any = None

    def cursor(self, factory: Any = None) -> Any:  # type: ignore[override]
        """A :class:`StudyCursor` (or ``factory``'s cursor)."""
        return super().cursor(factory or StudyCursor)

    def execute(self, sql: str, parameters: Any = ()) -> Any:  # type: ignore[override]
        """Run one statement on a new :class:`StudyCursor`."""
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, seq: Any) -> Any:  # type: ignore[override]
        """Run one statement per parameter set on a new :class:`StudyCursor`."""
        return self.cursor().executemany(sql, seq)


def connect(path: Path, *, read_only: bool, timeout: float) -> StudyConnection:
    """Open the study file: read-write (created when missing) or strictly read-only.

    Raises:
        sqlite3.Error: the file cannot be opened.
    """
    if read_only:
        target = urllib.parse.quote(str(path.resolve()))
        held = any(path.with_name(path.name + s).exists() for s in ("-wal", "-journal"))
        # Without a writer's side files the file cannot change under us: read it immutable,
        # which creates no -shm / -wal file; with them, read through the writer's WAL.
        uri = f"file:{target}?mode=ro" + ("" if held else "&immutable=1")
        conn = sqlite3.connect(
            uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False,
            factory=StudyConnection,
        )  # fmt: skip
    else:
        conn = sqlite3.connect(
            str(path), timeout=timeout, isolation_level=None, check_same_thread=False,
            factory=StudyConnection,
        )  # fmt: skip
    conn.path = path  # type: ignore[attr-defined]
    return conn  # type: ignore[return-value]


def schema_columns(schema: str) -> dict[str, list[str]]:
    """Every table of the ``CREATE TABLE`` script ``schema`` with its column names."""
    probe = sqlite3.connect(":memory:")
    try:
        probe.executescript(schema)
        tables = [r[0] for r in probe.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {
            t: [r[1] for r in probe.execute(f"PRAGMA table_info({t})")]
            for t in tables
            if not t.startswith("sqlite_")
        }
    finally:
        probe.close()


def check_schema(
    conn: sqlite3.Connection,
    path: Any,
    expected: dict[str, list[str]],
    optional: set[tuple],
    creating: bool = False,
) -> bool:
    """Check that an existing file has every table and column a study needs.

    Args:
        conn: the open file.
        path: the file, for messages.
        expected: table -> columns (:func:`schema_columns`).
        optional: ``(table, column)`` pairs added after the first release (an older file may
            lack them; a search or resume adds them).
        creating: tables may be missing as long as the ``study`` table is (a file the
            caller is about to make a study of); a study's own tables never are.

    Returns:
        False for a database without any table (a new, empty file), else True.

    Raises:
        StorageError: a table or a column is missing (one line naming it).
    """
    have = {
        r[0]
        for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        if not str(r[0]).startswith("sqlite_")
    }
    if not have:
        return False
    for table, columns in expected.items():
        if table not in have and creating and "study" not in have:
            continue
        if table not in have:
            raise StorageError(
                f"{path}: table {table} is missing; the file is damaged or not an autometa "
                "study (it was left as it is)"
            )
        present = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        for column in columns:
            if column not in present and (table, column) not in optional:
                raise StorageError(
                    f"{path}: table {table} lacks column {column!r}; the file is damaged or "
                    "not an autometa study (it was left as it is)"
                )
    return True
