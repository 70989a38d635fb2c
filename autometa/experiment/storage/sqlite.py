"""SQLite storage: one file per study, WAL mode, one transaction per write."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from autometa._study_file import (
    check_schema,
    connect,
    schema_columns,
)
from autometa.errors import StorageError
from autometa.experiment.storage import _validate
from autometa.experiment.storage.base import (
    HEARTBEAT_SECONDS,
    BaseStorage,
    check_final_update,
    check_update,
    clean_score,
    sessions_to_end,
    taken_over_error,
    this_host,
)
from autometa.experiment.trial import (
    FinalRun,
    SessionInfo,
    StudyInfo,
    TrialRecord,
    TrialState,
    trial_seed,
)

__all__ = ["SQLiteStorage", "SCHEMA_VERSION"]

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


def _dumps(value: Any) -> str:
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


class SQLiteStorage(BaseStorage):
    """A study in one SQLite file (created with its parent folders when missing).

    Opened with ``read_only=True`` (as ``show``, ``plot``, ``export`` and ``load_result`` do),
    the file must exist and is never written: no table is created or migrated and the journal
    mode stays as it is. Every row read is checked before it becomes a record (types, ranges,
    JSON size and depth, graph size and acyclicity), so a damaged or crafted file raises one
    :class:`~autometa.errors.StorageError` line naming the table, row and field.

    The file uses WAL journaling, so readers (``autometa show``) never block the search and a
    killed process loses at most the write it was making; each write is one ``BEGIN
    IMMEDIATE`` transaction, and a busy timeout lets several processes open the same file.
    Connections are per storage object and guarded by a lock, so an object may be shared by
    threads; open another object in another process.

    Args:
        path: the database file.
        timeout: seconds to wait for another process's write lock.
        read_only: open an existing file for reading only (``mode=ro``).
    """

    def __init__(
        self, path: str | os.PathLike[str], *, timeout: float = 30.0, read_only: bool = False
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        if self.path.is_dir():
            raise StorageError(f"{self.path}: is a folder; expected the path of a SQLite file")
        blocking = next((p for p in self.path.parents if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            raise StorageError(f"{self.path}: {blocking} is a file, not a folder")
        if read_only and not self.path.is_file():
            raise StorageError(f"{self.path}: no such study database")
        try:
            if not read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = connect(self.path, read_only=read_only, timeout=timeout)
        except (OSError, sqlite3.Error) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise StorageError(
                f"{self.path}: cannot open or create a study database ({reason})"
            ) from exc
        self._lock = threading.RLock()
        self._epoch: int | None = None  # the session this object writes as (fencing)
        self._conn.row_factory = sqlite3.Row
        try:
            if read_only:
                self._conn.execute("PRAGMA query_only=ON")
            else:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
                self._conn.execute("PRAGMA foreign_keys=ON")
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            existing = check_schema(
                self._conn, self.path, _COLUMNS, set(_OPTIONAL), creating=not read_only
            )
        except StorageError:
            self._conn.close()
            raise
        except sqlite3.OperationalError as exc:
            self._conn.close()
            raise StorageError(
                f"{self.path}: cannot open or create a study database ({exc})"
            ) from exc
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StorageError(f"{self.path}: not an autometa study database ({exc})") from exc
        if version > SCHEMA_VERSION:
            self._conn.close()
            raise StorageError(
                f"{self.path}: schema version {version} is newer than this autometa's "
                f"({SCHEMA_VERSION}); upgrade autometa to open it"
            )
        if read_only:  # an older file is read as it is; search and resume migrate it
            if not existing:
                self._conn.close()
                raise StorageError(f"{self.path}: the database holds no study")
            return
        with self._write() as conn:
            for statement in (_SCHEMA + _ADDED_TABLES).split(";"):
                if statement.strip():
                    conn.execute(statement)
            for table, column, kind in _ADDED_COLUMNS:
                have = {row["name"] for row in conn.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def __str__(self) -> str:
        return f"SQLiteStorage({str(self.path)!r})"

    @contextmanager
    def _write(self, fenced: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed when the block ends, rolled back on error.

        ``fenced``: refused (``StudyTakenOverError``) when a session newer than the one this
        object started has claimed the study; checked inside the transaction, so no write
        of an older session lands after the claim.
        """
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                if fenced and self._epoch is not None:
                    newer = self._conn.execute(
                        "SELECT * FROM sessions WHERE id > ? ORDER BY id DESC LIMIT 1",
                        (self._epoch,),
                    ).fetchone()
                    if newer is not None:
                        raise taken_over_error(str(self.path), _session(newer, self.path))
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:  # SQLite ends it itself on a full disk
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        """Close the connection (the file stays)."""
        with self._lock:
            self._conn.close()

    # -- study ---------------------------------------------------------------------------

    def get_study(self) -> StudyInfo | None:
        rows = self._read("SELECT data FROM study WHERE id = 1")
        if not rows:
            return None
        data = _validate.json_field(rows[0]["data"], self.path, "study", 1, "data", object)
        return StudyInfo.from_dict(data, str(self.path))

    def create_study(self, info: StudyInfo) -> None:
        data = info.to_dict()
        if data["created"] is None:
            data["created"] = time.time()
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM study").fetchone():
                raise StorageError(f"{self} already holds a study")
            conn.execute(
                "INSERT INTO study (id, space_name, space_hash, strategy, seed, created, data) "
                "VALUES (1, ?, ?, ?, ?, ?, ?)",
                (info.space_name, info.space_hash, info.strategy, info.seed, data["created"],
                 _dumps(data)),
            )  # fmt: skip

    def update_study_settings(self, settings: dict[str, Any]) -> None:
        with self._write() as conn:
            row = conn.execute("SELECT data FROM study WHERE id = 1").fetchone()
            if row is None:
                raise StorageError(f"{self} holds no study yet")
            data = json.loads(row["data"])
            data["settings"] = settings
            conn.execute("UPDATE study SET data = ? WHERE id = 1", (_dumps(data),))

    # -- trials --------------------------------------------------------------------------

    def create_trials(
        self, trials: Sequence[TrialRecord], strategy_state: dict[str, Any] | None = None
    ) -> list[TrialRecord]:
        numbers = []
        with self._write() as conn:
            row = conn.execute("SELECT seed FROM study WHERE id = 1").fetchone()
            if row is None:
                raise StorageError(f"{self} holds no study yet; create it before its trials")
            (count,) = conn.execute("SELECT COUNT(*) FROM trials").fetchone()
            now = time.time()
            for offset, trial in enumerate(trials):
                number = count + offset
                values = self._columns(trial)
                values.update(
                    number=number,
                    seed=trial_seed(row["seed"], number),
                    created=trial.created if trial.created is not None else now,
                )
                names = ", ".join(values)
                marks = ", ".join("?" * len(values))
                sql = f"INSERT INTO trials ({names}) VALUES ({marks})"
                conn.execute(sql, list(values.values()))
                numbers.append(number)
            if strategy_state is not None:
                self._put_strategy_state(conn, strategy_state)
        return [self.get_trial(n) for n in numbers]

    def update_trial(
        self,
        number: int,
        *,
        strategy_state: dict[str, Any] | None = None,
        weights: bytes | None = None,
        training_state: bytes | None = None,
        **fields: Any,
    ) -> TrialRecord:
        with self._write() as conn:
            record = self._row_to_record(self._fetch(conn, number))
            fields = check_update(record, fields)
            if fields:
                columns = self._columns(record.replace(**fields), only=fields)
                assignments = ", ".join(f"{name} = ?" for name in columns)
                conn.execute(
                    f"UPDATE trials SET {assignments} WHERE number = ?",
                    [*columns.values(), number],
                )
            if strategy_state is not None:
                self._put_strategy_state(conn, strategy_state)
            if weights is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO weights (number, format, data) VALUES (?, ?, ?)",
                    (number, "safetensors", sqlite3.Binary(weights)),
                )
            if training_state is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO training_states (number, format, data) "
                    "VALUES (?, ?, ?)",
                    (number, "safetensors", sqlite3.Binary(training_state)),
                )
            if TrialState(fields.get("state", record.state)).is_finished():
                conn.execute("DELETE FROM training_states WHERE number = ?", (number,))
        return self.get_trial(number)

    def get_trial(self, number: int) -> TrialRecord:
        with self._lock:
            return self._row_to_record(self._fetch(self._conn, number))

    def get_all_trials(self, states: Iterable[TrialState] | None = None) -> list[TrialRecord]:
        if states is None:
            rows = self._read("SELECT * FROM trials ORDER BY number")
        else:
            wanted = sorted({int(s) for s in states})
            marks = ", ".join("?" * len(wanted)) or "NULL"
            rows = self._read(
                f"SELECT * FROM trials WHERE state IN ({marks}) ORDER BY number", wanted
            )
        records = [self._row_to_record(row) for row in rows]
        if states is None:
            _validate.check_numbering([r.number for r in records], self.path)
        return records

    def _fetch(self, conn: sqlite3.Connection, number: int) -> sqlite3.Row:
        row = None
        if isinstance(number, int):
            row = conn.execute("SELECT * FROM trials WHERE number = ?", (number,)).fetchone()
        if row is None:
            raise KeyError(f"no trial number {number!r} in {self}")
        return row

    @staticmethod
    def _columns(trial: TrialRecord, only: Iterable[str] | None = None) -> dict[str, Any]:
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
                out[column] = _dumps(getattr(trial, name))
        return out

    def _row_to_record(self, row: sqlite3.Row) -> TrialRecord:
        return TrialRecord(storage=str(self.path), **_validate.trial_fields(row, self.path))

    # -- final stage ---------------------------------------------------------------------

    @staticmethod
    def _final_data(run: FinalRun) -> str:
        data = run.to_dict()
        del data["id"], data["state"]
        return _dumps(data)

    def _row_to_final(self, row: sqlite3.Row) -> FinalRun:
        return _validate.final_run(row, self.path)

    def create_final_runs(self, runs: Sequence[FinalRun]) -> list[FinalRun]:
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM study WHERE id = 1").fetchone() is None:
                raise StorageError(f"{self} holds no study yet")
            start = conn.execute("SELECT COALESCE(MAX(id) + 1, 0) FROM final_runs").fetchone()[0]
            out = []
            for offset, run in enumerate(runs):
                stored = run.replace(
                    id=start + offset, state=TrialState.QUEUED, created=run.created or time.time()
                )
                conn.execute(
                    "INSERT INTO final_runs (id, state, data) VALUES (?, ?, ?)",
                    (stored.id, int(stored.state), self._final_data(stored)),
                )
                out.append(stored)
        return out

    def update_final_run(self, run_id: int, **fields: Any) -> FinalRun:
        with self._write() as conn:
            row = conn.execute("SELECT * FROM final_runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise KeyError(f"no final run {run_id!r} in {self}")
            run = self._row_to_final(row)
            run = run.replace(**check_final_update(run, fields))
            conn.execute(
                "UPDATE final_runs SET state = ?, data = ? WHERE id = ?",
                (int(run.state), self._final_data(run), run_id),
            )
        return run

    def get_final_runs(self) -> list[FinalRun]:
        return [self._row_to_final(r) for r in self._read("SELECT * FROM final_runs ORDER BY id")]

    # -- strategy state, weights, sessions -----------------------------------------------

    @staticmethod
    def _put_strategy_state(conn: sqlite3.Connection, state: dict[str, Any]) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO strategy_state (id, state, updated) VALUES (1, ?, ?)",
            (_dumps(state), time.time()),
        )

    def get_strategy_state(self) -> dict[str, Any] | None:
        rows = self._read("SELECT state FROM strategy_state WHERE id = 1")
        if not rows:
            return None
        return _validate.json_field(rows[0]["state"], self.path, "strategy_state", 1, "state")

    def get_weights_bytes(self, number: int) -> bytes | None:
        with self._lock:
            self._fetch(self._conn, number)
            row = self._conn.execute(
                "SELECT format, data FROM weights WHERE number = ?", (number,)
            ).fetchone()
        return None if row is None else _validate.weights(row, number, self.path)

    def get_training_state_bytes(self, number: int) -> bytes | None:
        with self._lock:
            self._fetch(self._conn, number)
            have = self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='training_states'"
            ).fetchone()
            row = None
            if have is not None:  # an older file, read as it is, has no such table
                row = self._conn.execute(
                    "SELECT format, data FROM training_states WHERE number = ?", (number,)
                ).fetchone()
        return (
            None if row is None else _validate.weights(row, number, self.path, "training_states")
        )

    def start_session(
        self, *, heartbeat: float = HEARTBEAT_SECONDS, take_over: bool = False
    ) -> int:
        now = time.time()
        with self._write(fenced=False) as conn:  # BEGIN IMMEDIATE: one claimant at a time
            rows = conn.execute("SELECT * FROM sessions ORDER BY id").fetchall()
            sessions = [_session(r, self.path) for r in rows]
            ended = sessions_to_end(sessions, now, take_over, str(self.path))
            conn.executemany(
                "UPDATE sessions SET ended = ? WHERE id = ?", [(now, i) for i in ended]
            )
            conn.execute(
                "UPDATE trials SET state = ?, started = NULL WHERE state = ?",
                (int(TrialState.QUEUED), int(TrialState.RUNNING)),
            )
            cursor = conn.execute(
                "INSERT INTO sessions (pid, host, heartbeat, started, updated) "
                "VALUES (?, ?, ?, ?, ?)",
                (os.getpid(), this_host(), float(heartbeat), now, now),
            )
            self._epoch = int(cursor.lastrowid)  # type: ignore[arg-type]
        return self._epoch

    def touch_session(self, session: int, *, ended: bool = False) -> bool:
        now = time.time()
        with self._write(fenced=False) as conn:
            row = conn.execute("SELECT ended FROM sessions WHERE id = ?", (session,)).fetchone()
            if row is None:
                raise KeyError(f"no session {session!r} in {self}")
            if row["ended"] is not None:
                return False
            conn.execute(
                "UPDATE sessions SET updated = ?, ended = CASE WHEN ? THEN ? ELSE NULL END "
                "WHERE id = ?",
                (now, ended, now, session),
            )
            return True

    def get_sessions(self) -> list[SessionInfo]:
        rows = self._read("SELECT * FROM sessions ORDER BY id")
        return [_session(row, self.path) for row in rows]

    def elapsed_seconds(self) -> float:
        rows = self._read("SELECT COALESCE(SUM(updated - started), 0) AS s FROM sessions")
        return float(rows[0]["s"])


def _session(row: sqlite3.Row, path: Path) -> SessionInfo:
    return _validate.session(row, path)
