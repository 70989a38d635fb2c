"""In-memory storage: the contract without a file, for tests and throw-away searches."""

from __future__ import annotations

import copy
import dataclasses
import os
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from autometa.errors import StorageError
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

__all__ = ["InMemoryStorage"]


class InMemoryStorage(BaseStorage):
    """Keeps the study in Python objects; lost when the process ends, so nothing resumes.

    Safe to share between threads (one lock); records are deep-copied in and out.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._study: StudyInfo | None = None
        self._trials: list[TrialRecord] = []
        self._strategy_state: dict[str, Any] | None = None
        self._weights: dict[int, bytes] = {}
        self._training_states: dict[int, bytes] = {}
        self._sessions: dict[int, SessionInfo] = {}
        self._final: list[FinalRun] = []
        self._epoch: int | None = None  # the session this object writes as (fencing)

    def _fence(self) -> None:
        """Refuse a write once a session newer than this object's claimed the study (call
        with the lock held)."""
        if self._epoch is not None and max(self._sessions, default=0) > self._epoch:
            newest = self._sessions[max(self._sessions)]
            raise taken_over_error(str(self), newest)

    # -- study ---------------------------------------------------------------------------

    def get_study(self) -> StudyInfo | None:
        with self._lock:
            return copy.deepcopy(self._study)

    def create_study(self, info: StudyInfo) -> None:
        with self._lock:
            self._fence()
            if self._study is not None:
                raise StorageError(f"{self} already holds a study ({self._study.space_name!r})")
            if info.created is None:
                info = dataclasses.replace(info, created=time.time())
            self._study = copy.deepcopy(info)

    def update_study_settings(self, settings: dict[str, Any]) -> None:
        with self._lock:
            self._fence()
            if self._study is None:
                raise StorageError(f"{self} holds no study yet")
            self._study = dataclasses.replace(self._study, settings=copy.deepcopy(settings))

    # -- trials --------------------------------------------------------------------------

    def create_trials(
        self, trials: Sequence[TrialRecord], strategy_state: dict[str, Any] | None = None
    ) -> list[TrialRecord]:
        with self._lock:
            self._fence()
            if self._study is None:
                raise StorageError(f"{self} holds no study yet; create it before its trials")
            created = []
            now = time.time()
            for trial in trials:
                number = len(self._trials)
                record = dataclasses.replace(
                    copy.deepcopy(trial),
                    number=number,
                    seed=trial_seed(self._study.seed, number),
                    state=TrialState(trial.state),
                    score=clean_score(trial.score),
                    created=trial.created if trial.created is not None else now,
                )
                self._trials.append(record)
                created.append(copy.deepcopy(record))
            if strategy_state is not None:
                self._strategy_state = copy.deepcopy(strategy_state)
            return created

    def update_trial(
        self,
        number: int,
        *,
        strategy_state: dict[str, Any] | None = None,
        weights: bytes | None = None,
        training_state: bytes | None = None,
        **fields: Any,
    ) -> TrialRecord:
        with self._lock:
            self._fence()
            record = self._get(number)
            fields = check_update(record, fields)
            record = dataclasses.replace(record, **copy.deepcopy(fields))
            self._trials[number] = record
            if strategy_state is not None:
                self._strategy_state = copy.deepcopy(strategy_state)
            if weights is not None:
                self._weights[number] = bytes(weights)
            if training_state is not None:
                self._training_states[number] = bytes(training_state)
            if record.state.is_finished():
                self._training_states.pop(number, None)
            return copy.deepcopy(record)

    def get_trial(self, number: int) -> TrialRecord:
        with self._lock:
            return copy.deepcopy(self._get(number))

    def get_all_trials(self, states: Iterable[TrialState] | None = None) -> list[TrialRecord]:
        wanted = None if states is None else set(states)
        with self._lock:
            return [copy.deepcopy(t) for t in self._trials if wanted is None or t.state in wanted]

    def _get(self, number: int) -> TrialRecord:
        if not isinstance(number, int) or not 0 <= number < len(self._trials):
            raise KeyError(f"no trial number {number!r} in {self}")
        return self._trials[number]

    # -- strategy state, weights, sessions -----------------------------------------------

    # -- final stage ---------------------------------------------------------------------

    def create_final_runs(self, runs: Sequence[FinalRun]) -> list[FinalRun]:
        with self._lock:
            self._fence()
            if self._study is None:
                raise StorageError(f"{self} holds no study yet")
            out = []
            for run in runs:
                stored = copy.deepcopy(run).replace(
                    id=len(self._final), state=TrialState.QUEUED,
                    created=run.created or time.time(),
                )  # fmt: skip
                self._final.append(stored)
                out.append(copy.deepcopy(stored))
            return out

    def update_final_run(self, run_id: int, **fields: Any) -> FinalRun:
        with self._lock:
            self._fence()
            if not 0 <= run_id < len(self._final):
                raise KeyError(f"no final run {run_id!r} in {self}")
            run = self._final[run_id]
            run = run.replace(**copy.deepcopy(check_final_update(run, fields)))
            self._final[run_id] = run
            return copy.deepcopy(run)

    def get_final_runs(self) -> list[FinalRun]:
        with self._lock:
            return copy.deepcopy(self._final)

    def get_strategy_state(self) -> dict[str, Any] | None:
        with self._lock:
            return copy.deepcopy(self._strategy_state)

    def get_weights_bytes(self, number: int) -> bytes | None:
        with self._lock:
            self._get(number)
            return self._weights.get(number)

    def get_training_state_bytes(self, number: int) -> bytes | None:
        with self._lock:
            self._get(number)
            return self._training_states.get(number)

    def start_session(
        self, *, heartbeat: float = HEARTBEAT_SECONDS, take_over: bool = False
    ) -> int:
        with self._lock:
            now = time.time()
            for number in sessions_to_end(
                list(self._sessions.values()), now, take_over, str(self)
            ):
                self._sessions[number] = dataclasses.replace(self._sessions[number], ended=now)
            for number, trial in enumerate(self._trials):
                if trial.state == TrialState.RUNNING:
                    self._trials[number] = trial.replace(state=TrialState.QUEUED, started=None)
            session = len(self._sessions) + 1
            self._sessions[session] = SessionInfo(
                session, this_host(), os.getpid(), now, now, float(heartbeat)
            )
            self._epoch = session
            return session

    def touch_session(self, session: int, *, ended: bool = False) -> bool:
        with self._lock:
            if session not in self._sessions:
                raise KeyError(f"no session {session!r} in {self}")
            if self._sessions[session].ended is not None:
                return False
            now = time.time()
            self._sessions[session] = dataclasses.replace(
                self._sessions[session], updated=now, ended=now if ended else None
            )
            return True

    def get_sessions(self) -> list[SessionInfo]:
        with self._lock:
            return [self._sessions[k] for k in sorted(self._sessions)]

    def elapsed_seconds(self) -> float:
        with self._lock:
            return float(sum(s.updated - s.started for s in self._sessions.values()))
