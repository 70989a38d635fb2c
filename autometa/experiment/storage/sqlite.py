"""SQLite storage: one file per study, WAL mode, one transaction per write.

This module holds the transactions and queries; the file's tables, opening checks, migrations
and row encoding are in :mod:`._sqlite_schema`, and the checks of rows read back (a study
file is untrusted data) in :mod:`._validate`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from autometa.errors import StorageError
from autometa.experiment.storage import _validate
from autometa.experiment.storage._sqlite_schema import (
    SCHEMA_VERSION,
    dumps,
    final_data,
    migrate,
    open_database,
    trial_columns,
)
from autometa.experiment.storage.base import (
    HEARTBEAT_SECONDS,
    BaseStorage,
    check_final_update,
    check_update,
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
        self._conn = open_database(self.path, timeout=timeout, read_only=read_only)
        self._lock = threading.RLock()
        self._epoch: int | None = None  # the session this object writes as (fencing)
        if not read_only:
            with self._write() as conn:
                migrate(conn)

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
        rows = self._read("SELECT seed, data FROM study WHERE id = 1")
        if not rows:
            return None
        data = _validate.json_field(rows[0]["data"], self.path, "study", 1, "data", object)
        info = StudyInfo.from_dict(data, str(self.path))
        _validate.study_seed(rows[0]["seed"], info.seed, self.path)
        return info

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
                 dumps(data)),
            )  # fmt: skip

    def update_study_settings(self, settings: dict[str, Any]) -> None:
        with self._write() as conn:
            row = conn.execute("SELECT data FROM study WHERE id = 1").fetchone()
            if row is None:
                raise StorageError(f"{self} holds no study yet")
            data = json.loads(row["data"])
            data["settings"] = settings
            conn.execute("UPDATE study SET data = ? WHERE id = 1", (dumps(data),))

    # -- trials --------------------------------------------------------------------------

    def create_trials(
        self, trials: Sequence[TrialRecord], strategy_state: dict[str, Any] | None = None
    ) -> list[TrialRecord]:
        numbers = []
        with self._write() as conn:
            row = conn.execute("SELECT seed FROM study WHERE id = 1").fetchone()
            if row is None:
                raise StorageError(f"{self} holds no study yet; create it before its trials")
            seed = _validate.study_seed(row["seed"], None, self.path)  # get_study compared it
            (count,) = conn.execute("SELECT COUNT(*) FROM trials").fetchone()
            now = time.time()
            for offset, trial in enumerate(trials):
                number = count + offset
                values = trial_columns(trial)
                values.update(
                    number=number,
                    seed=trial_seed(seed, number),
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
                columns = trial_columns(record.replace(**fields), only=fields)
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

    def count_states(self) -> dict[TrialState, int]:
        """How many trials are in each state, from the ``state`` column alone (a progress line
        and a resume read it; decoding every trial's graph and metrics is not needed)."""
        counts = dict.fromkeys(TrialState, 0)
        for row in self._read("SELECT number, state FROM trials"):
            counts[_validate.trial_state(row, self.path)] += 1
        return counts

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

    def _row_to_record(self, row: sqlite3.Row) -> TrialRecord:
        return TrialRecord(storage=str(self.path), **_validate.trial_fields(row, self.path))

    # -- final stage ---------------------------------------------------------------------

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
                    (stored.id, int(stored.state), final_data(stored)),
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
                (int(run.state), final_data(run), run_id),
            )
        return run

    def get_final_runs(self) -> list[FinalRun]:
        return [self._row_to_final(r) for r in self._read("SELECT * FROM final_runs ORDER BY id")]

    # -- strategy state, weights, sessions -----------------------------------------------

    @staticmethod
    def _put_strategy_state(conn: sqlite3.Connection, state: dict[str, Any]) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO strategy_state (id, state, updated) VALUES (1, ?, ?)",
            (dumps(state), time.time()),
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
