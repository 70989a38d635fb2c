"""The layout of a SQLite study file and the writing side of its rows.

Here: the tables (:data:`SCHEMA_VERSION` and their ``CREATE`` statements), opening a file with
its checks (folders in the way, a missing file, a newer schema, a file that is no study), the
migration of an older file to the current tables, and how records become rows (JSON text with
NaN as null). :mod:`.sqlite` keeps the transactions and the queries; :mod:`._validate` is the
reading side, turning rows back into checked records. Kept apart so that the file format is
described in one place.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from autometa._study_file import check_schema, connect, schema_columns
from autometa.errors import StorageError
from autometa.experiment.storage._fields import clean_score
from autometa.experiment.trial import FinalRun, TrialRecord

__all__ = [
    "SCHEMA_VERSION",
    "dumps",
    "final_data",
    "migrate",
    "open_database",
    "trial_columns",
]

#: Bumped when the tables change; a file from a newer autometa is refused.
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS study (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    space_name TEXT NOT NULL,
    space_hash TEXT NOT NULL,
    strategy TEXT NOT NULL,
    seed INTEGER NOT NULL,
    created REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    number INTEGER PRIMARY KEY,
    state INTEGER NOT NULL,
    key TEXT NOT NULL,
    graph TEXT NOT NULL,
    decision_values TEXT NOT NULL,
    seed INTEGER NOT NULL,
    candidate_id TEXT,
    score REAL,
    objectives TEXT NOT NULL,
    metrics TEXT NOT NULL,
    error TEXT,
    device TEXT,
    fidelity INTEGER,
    rung INTEGER,
    bracket INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    duplicate_of INTEGER,
    created REAL,
    started REAL,
    finished REAL,
    wall_time REAL
);
CREATE INDEX IF NOT EXISTS trials_key ON trials (key);
CREATE INDEX IF NOT EXISTS trials_state ON trials (state);
CREATE TABLE IF NOT EXISTS strategy_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    state TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS weights (
    number INTEGER PRIMARY KEY REFERENCES trials (number),
    format TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS final_runs (
    id INTEGER PRIMARY KEY,
    state INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pid INTEGER,
    started REAL NOT NULL,
    updated REAL NOT NULL,
    ended REAL,
    host TEXT,
    heartbeat REAL
);
"""

# Tables added after the first release: made by a search or resume, absent from older files
# (read as having no rows). ``training_states`` holds where a trial's meta-training stopped
# between multi-fidelity rungs (safetensors, like ``weights``).
_ADDED_TABLES = """
CREATE TABLE IF NOT EXISTS training_states (
    number INTEGER PRIMARY KEY REFERENCES trials (number),
    format TEXT NOT NULL,
    data BLOB NOT NULL
);
"""

# Columns added to a table after its first release: (table, column, type).
_ADDED_COLUMNS = [("sessions", "host", "TEXT"), ("sessions", "heartbeat", "REAL")]

_COLUMNS = schema_columns(_SCHEMA)
_OPTIONAL = [(table, column) for table, column, _ in _ADDED_COLUMNS]

# Trial fields stored as JSON text, with the column that holds each.
_JSON_COLUMNS = {
    "graph_json": "graph",
    "values": "decision_values",
    "candidate_id": "candidate_id",
    "objectives": "objectives",
    "metrics": "metrics",
}
_PLAIN_COLUMNS = [
    "state", "key", "seed", "score", "error", "device", "fidelity", "rung", "bracket",
    "attempts", "duplicate_of", "created", "started", "finished", "wall_time",
]  # fmt: skip


def open_database(path: Path, *, timeout: float, read_only: bool) -> sqlite3.Connection:
    """A connection to the study file at ``path``, its schema checked (rows as
    :class:`sqlite3.Row`); a writable one is in WAL mode, not yet migrated (:func:`migrate`).

    Raises:
        StorageError: ``path`` is a folder or below a file; ``read_only`` and the file is
            missing or holds no study; the file cannot be opened, is not a study database or
            has a newer schema than this autometa's.
    """
    if path.is_dir():
        raise StorageError(f"{path}: is a folder; expected the path of a SQLite file")
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise StorageError(f"{path}: {blocking} is a file, not a folder")
    if read_only and not path.is_file():
        raise StorageError(f"{path}: no such study database")
    try:
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = connect(path, read_only=read_only, timeout=timeout)
    except (OSError, sqlite3.Error) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise StorageError(f"{path}: cannot open or create a study database ({reason})") from exc
    conn.row_factory = sqlite3.Row
    try:
        if read_only:
            conn.execute("PRAGMA query_only=ON")
        else:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        existing = check_schema(conn, path, _COLUMNS, set(_OPTIONAL), creating=not read_only)
    except StorageError:
        conn.close()
        raise
    except sqlite3.OperationalError as exc:
        conn.close()
        raise StorageError(f"{path}: cannot open or create a study database ({exc})") from exc
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StorageError(f"{path}: not an autometa study database ({exc})") from exc
    if version > SCHEMA_VERSION:
        conn.close()
        raise StorageError(
            f"{path}: schema version {version} is newer than this autometa's "
            f"({SCHEMA_VERSION}); upgrade autometa to open it"
        )
    # an older file is read as it is (search and resume migrate it), if it holds a study
    if read_only and not existing:
        conn.close()
        raise StorageError(f"{path}: the database holds no study")
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    """Create the missing tables and columns and stamp :data:`SCHEMA_VERSION`, inside the
    caller's write transaction (a new file gets every table; an older one what it lacks; a
    current one is left byte for byte as it was)."""
    for statement in (_SCHEMA + _ADDED_TABLES).split(";"):
        if statement.strip():
            conn.execute(statement)
    for table, column, kind in _ADDED_COLUMNS:
        have = {row["name"] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")  # a write even when unchanged


def trial_columns(trial: TrialRecord, only: Iterable[str] | None = None) -> dict[str, Any]:
    """The ``trials`` columns of ``trial`` (those of the fields in ``only`` when given), as
    they are written: the state as its number, the score finite or None, JSON fields as text."""
    names = set(_PLAIN_COLUMNS) | set(_JSON_COLUMNS) if only is None else set(only)
    out: dict[str, Any] = {}
    for name in _PLAIN_COLUMNS:
        if name in names:
            value = getattr(trial, name)
            out[name] = int(value) if name == "state" else value
    if "score" in out:
        out["score"] = clean_score(out["score"])
    for name, column in _JSON_COLUMNS.items():
        if name in names:
            out[column] = dumps(getattr(trial, name))
    return out


def final_data(run: FinalRun) -> str:
    """The ``data`` column of a final run: every field but ``id`` and ``state`` (columns)."""
    data = run.to_dict()
    del data["id"], data["state"]
    return dumps(data)


def dumps(value: Any) -> str:
    """JSON text; NaN / Inf (which JSON lacks) become null."""
    return json.dumps(_finite(value), sort_keys=True, allow_nan=False, default=str)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _finite(value.item())
    return value
