"""The storage contract every backend meets: a small abstract core plus helpers built on it.

The contract is :class:`BaseStorage`; what every backend shares beside it lives in private
modules and is re-exported here: the weight and training-state bytes (:mod:`._blobs`), the
session rules (:mod:`._sessions`) and the checks of a write's fields (:mod:`._fields`).
"""

from __future__ import annotations

import abc
import time
from collections.abc import Iterable, Sequence
from typing import Any

from autometa.errors import StorageError
from autometa.experiment._best import best_of
from autometa.experiment.storage._blobs import (
    STEP_SIZE_PREFIX,
    decode_training_state,
    decode_weights,
    encode_training_state,
    encode_weights,
    split_step_sizes,
)
from autometa.experiment.storage._fields import (
    FINAL_UPDATABLE,
    UPDATABLE_FIELDS,
    check_final_update,
    check_update,
    clean_score,
)
from autometa.experiment.storage._sessions import (
    HEARTBEAT_SECONDS,
    STALE_AFTER_HEARTBEATS,
    is_stale,
    sessions_to_end,
    taken_over_error,
    this_host,
)
from autometa.experiment.trial import FinalRun, SessionInfo, StudyInfo, TrialRecord, TrialState

__all__ = [
    "BaseStorage",
    "HEARTBEAT_SECONDS",
    "FINAL_UPDATABLE",
    "STALE_AFTER_HEARTBEATS",
    "STEP_SIZE_PREFIX",
    "UPDATABLE_FIELDS",
    "check_final_update",
    "check_same_space",
    "check_update",
    "clean_score",
    "decode_training_state",
    "decode_weights",
    "encode_training_state",
    "encode_weights",
    "is_stale",
    "sessions_to_end",
    "split_step_sizes",
    "taken_over_error",
    "this_host",
]


class BaseStorage(abc.ABC):
    """Where a study lives: its :class:`StudyInfo`, its trials, the strategy state, weights.

    A storage holds exactly one study; the study is identified by the storage (for SQLite, the
    file). Storage is the source of truth of a search: the search loop writes every change
    here as it happens and a resume reads nothing else.

    Contract (checked by ``autometa.testing.storage.StorageTestCase``):

    - Records handed out are frozen copies; later writes never change a record already
      returned, and changing a returned dict never changes storage.
    - Trial numbers are assigned by storage, consecutively from 0, in creation order; the seed
      of trial ``n`` is ``trial_seed(study.seed, n)``.
    - Reading or writing an unknown trial number raises ``KeyError``.
    - Finished trials (``DONE``, ``FAILED``, ``PRUNED``) are immutable: updating one raises
      :class:`~autometa.errors.StorageError`. So does creating trials before the study exists,
      or creating a second study.
    - Every write is atomic: a trial update and the strategy state or weights passed with it
      land together or not at all. Scores are finite floats or None (NaN is stored as None).
    - The strategy state is the latest JSON-safe ``state_dict()`` written; the search writes
      it in the same write as the ``tell`` (or ``ask``) it follows.
    - Fencing: a storage object that started a session (:meth:`start_session`) writes as that
      session, whose number is the study's *epoch*. Once a newer session claims the study (a
      take-over, or a claim after this one went stale), every write of the older object is
      refused with :class:`~autometa.errors.StudyTakenOverError` and changes nothing, so a
      holder that is still running cannot change what the new holder reads. Processes that
      share a study each open their own storage object.
    - A final run that FAILED because its worker was lost (``FinalRun.lost_with_worker``) may
      be put back to ``QUEUED`` (a retry); every other change of a finished run is refused.

    Core methods (abstract) are grouped below by what they touch; the helpers after them are
    built only on the core, so a new backend implements the core and passes the suite.
    """

    # -- study ---------------------------------------------------------------------------

    @abc.abstractmethod
    def get_study(self) -> StudyInfo | None:
        """The stored study, or None when the storage is empty."""

    @abc.abstractmethod
    def create_study(self, info: StudyInfo) -> None:
        """Store the study.

        Raises:
            StorageError: the storage already holds a study.
        """

    @abc.abstractmethod
    def update_study_settings(self, settings: dict[str, Any]) -> None:
        """Replace the study's run settings (budget, workers, ...) on a resume.

        Raises:
            StorageError: there is no study yet.
        """

    # -- trials --------------------------------------------------------------------------

    @abc.abstractmethod
    def create_trials(
        self, trials: Sequence[TrialRecord], strategy_state: dict[str, Any] | None = None
    ) -> list[TrialRecord]:
        """Add trials (their ``number`` and ``seed`` are assigned here) in one write.

        Args:
            trials: the new trials; ``number`` and ``seed`` are ignored and assigned.
            strategy_state: when given, stored as the strategy state in the same write.

        Returns:
            The stored records, in order.

        Raises:
            StorageError: there is no study yet.
        """

    @abc.abstractmethod
    def update_trial(
        self,
        number: int,
        *,
        strategy_state: dict[str, Any] | None = None,
        weights: bytes | None = None,
        training_state: bytes | None = None,
        **fields: Any,
    ) -> TrialRecord:
        """Change fields of an unfinished trial, optionally with strategy state and weights.

        Args:
            number: the trial.
            strategy_state: stored as the strategy state in the same write.
            weights: safetensors bytes (see :func:`encode_weights`) stored for the trial.
            training_state: safetensors bytes (see :func:`encode_training_state`) of where
                the trial's meta-training stopped, replacing any stored before; a trial that
                becomes finished drops its stored training state (nothing continues it).
            **fields: names from :data:`UPDATABLE_FIELDS`.

        Returns:
            The updated record.

        Raises:
            KeyError: no trial has this number.
            StorageError: the trial is finished.
            TypeError: a field is not updatable.
        """

    @abc.abstractmethod
    def get_trial(self, number: int) -> TrialRecord:
        """One trial.

        Raises:
            KeyError: no trial has this number.
        """

    @abc.abstractmethod
    def get_all_trials(self, states: Iterable[TrialState] | None = None) -> list[TrialRecord]:
        """Every trial (or those in ``states``), by number."""

    # -- final stage ---------------------------------------------------------------------

    @abc.abstractmethod
    def create_final_runs(self, runs: Sequence[FinalRun]) -> list[FinalRun]:
        """Add final-stage evaluations (their ``id`` is assigned here) in one write.

        Raises:
            StorageError: there is no study yet.
        """

    @abc.abstractmethod
    def update_final_run(self, run_id: int, **fields: Any) -> FinalRun:
        """Change ``state``, ``score``, ``metrics``, ``error``, ``device``, ``wall_time`` or
        ``finished`` of an unfinished final run.

        Raises:
            KeyError: no final run has this id.
            StorageError: the run is finished (``DONE`` or ``FAILED``).
            TypeError: a field is not updatable.
        """

    @abc.abstractmethod
    def get_final_runs(self) -> list[FinalRun]:
        """Every final-stage evaluation, by id."""

    # -- strategy state, weights, sessions -----------------------------------------------

    @abc.abstractmethod
    def get_strategy_state(self) -> dict[str, Any] | None:
        """The latest stored strategy ``state_dict()``, or None."""

    @abc.abstractmethod
    def get_weights_bytes(self, number: int) -> bytes | None:
        """The stored safetensors bytes of a trial, or None when it has none.

        Raises:
            KeyError: no trial has this number.
        """

    @abc.abstractmethod
    def get_training_state_bytes(self, number: int) -> bytes | None:
        """The stored training state of a trial (safetensors bytes), or None when it has none.

        Raises:
            KeyError: no trial has this number.
        """

    @abc.abstractmethod
    def start_session(
        self, *, heartbeat: float = HEARTBEAT_SECONDS, take_over: bool = False
    ) -> int:
        """Claim the study for this process, in one atomic step; returns the session id.

        Refuses while another session is live (see :func:`sessions_to_end`). Otherwise ends
        every other unended session, puts RUNNING trials back to QUEUED (the process that
        ran them is gone) and records the new session with this host, pid and ``heartbeat``.
        Session numbers only grow; the new number is the study's epoch, and from now on this
        storage object writes as that session (see the fencing clause of the contract).

        Args:
            heartbeat: the seconds between this session's heartbeats (:meth:`touch_session`);
                others judge it stale after ``STALE_AFTER_HEARTBEATS`` of them.
            take_over: end live sessions too (for a holder known to be gone); a holder that
                is still alive finds out at its next heartbeat and stops.

        Raises:
            StudyInUseError: another session is live (the message names its host and pid).
        """

    @abc.abstractmethod
    def touch_session(self, session: int, *, ended: bool = False) -> bool:
        """Record that the session is alive (or has ended) now.

        Returns:
            True; False, writing nothing, when the session has ended or was taken over.

        Raises:
            KeyError: no such session.
        """

    @abc.abstractmethod
    def get_sessions(self) -> list[SessionInfo]:
        """Every session, by id."""

    @abc.abstractmethod
    def elapsed_seconds(self) -> float:
        """Seconds the study has been worked on, summed over sessions (killed ones included,
        up to their last sign of life)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (connections); the default does nothing."""

    # -- helpers built on the core -------------------------------------------------------

    def open_study(self, info: StudyInfo) -> StudyInfo:
        """Create the study, or check that the stored one is for the same space.

        Raises:
            StorageError: the stored study was made for a different space (content hash).
        """
        stored = self.get_study()
        if stored is None:
            self.create_study(info)
            return self.get_study()  # type: ignore[return-value]
        check_same_space(self, stored, info)
        return stored

    def finish_trial(
        self,
        number: int,
        state: TrialState,
        *,
        strategy_state: dict[str, Any] | None = None,
        weights: bytes | None = None,
        **fields: Any,
    ) -> TrialRecord:
        """Move a trial to a finished state (stamping ``finished``) in one write."""
        if not TrialState(state).is_finished():
            raise ValueError(f"`state` must be a finished state, got {TrialState(state).name}")
        fields.setdefault("finished", time.time())
        return self.update_trial(
            number, state=state, strategy_state=strategy_state, weights=weights, **fields
        )

    def live_session(self) -> SessionInfo | None:
        """The session that holds the study now (unended, not stale), or None."""
        now = time.time()
        live = [s for s in self.get_sessions() if s.ended is None and not is_stale(s, now)]
        return live[-1] if live else None

    def taken_over_by(self, session: int) -> SessionInfo | None:
        """The newest session that claimed the study after ``session``, or None."""
        newer = [s for s in self.get_sessions() if s.id > session]
        return newer[-1] if newer else None

    def requeue_unfinished(self) -> list[TrialRecord]:
        """Put RUNNING trials (left by a process that stopped) back to QUEUED; returns them."""
        return [
            self.update_trial(t.number, state=TrialState.QUEUED, started=None)
            for t in self.get_all_trials([TrialState.RUNNING])
        ]

    def count_states(self) -> dict[TrialState, int]:
        """How many trials are in each state (every state present, zeros included)."""
        counts = dict.fromkeys(TrialState, 0)
        for trial in self.get_all_trials():
            counts[trial.state] += 1
        return counts

    def leaderboard(self) -> list[TrialRecord]:
        """Every trial, scored ones first by decreasing score, then the rest by number."""
        trials = self.get_all_trials()
        scored = sorted(
            (t for t in trials if t.state == TrialState.DONE and t.has_score),
            key=lambda t: (-t.score, t.number),  # type: ignore[operator]
        )
        seen = {t.number for t in scored}
        return scored + [t for t in trials if t.number not in seen]

    def get_best_trial(self) -> TrialRecord | None:
        """The study's best DONE trial by the one rule of :mod:`autometa.experiment._best`:
        the final stage's winner (highest final mean) once the stage is complete, else the
        highest search score (lowest number on ties); None when no trial is DONE.
        ``best_of(storage)`` also says which of the two it is."""
        best = best_of(self)
        return None if best is None else best.trial

    def load_weights(self, number: int) -> dict[str, Any] | None:
        """The meta-learned ``state_dict`` of a trial as CPU tensors, or None.

        Raises:
            KeyError: no trial has this number.
        """
        data = self.get_weights_bytes(number)
        return None if data is None else split_step_sizes(decode_weights(data))[0]

    def load_step_sizes(self, number: int) -> dict[str, Any] | None:
        """The Meta-SGD step sizes stored with a trial's weights, or None (no Meta-SGD).

        Raises:
            KeyError: no trial has this number.
        """
        data = self.get_weights_bytes(number)
        return None if data is None else split_step_sizes(decode_weights(data))[1]

    def __str__(self) -> str:
        return type(self).__name__


def check_same_space(store: BaseStorage, stored: StudyInfo, info: StudyInfo) -> None:
    """Refuse a study made for another space (its content hash differs from ``info``'s).

    Raises:
        StorageError: one line naming both spaces and where each came from.
    """
    if stored.space_hash != info.space_hash:
        raise StorageError(
            f"{store}: the study was created for space {stored.space_name!r} "
            f"(hash {stored.space_hash}, from {stored.space_source or 'a dict'}), "
            f"not space {info.space_name!r} (hash {info.space_hash}, from "
            f"{info.space_source or 'a dict'}); use another storage for another space"
        )
