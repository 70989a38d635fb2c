"""A search's claim on its study: one live session at a time, kept by a heartbeat thread.

A search claims the study before it writes anything (``BaseStorage.start_session``): while
another process's session is live the claim is refused with ``StudyInUseError``, naming that
process. A live session records a heartbeat every ``HEARTBEAT_SECONDS`` from a background
thread, so a long evaluation in the search process (``workers=0``) does not make it look
gone. A session that misses ``STALE_AFTER_HEARTBEATS`` heartbeats is stale: the next claim
ends it and re-queues the trials it left RUNNING.

Each session's number is the study's epoch while it holds the study: storage refuses the
writes of an older session (``StudyTakenOverError``), so a holder that was taken over while
still running cannot change what the new holder reads; it stops with one line.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from typing import Any

from autometa.errors import StudyTakenOverError
from autometa.experiment.storage.base import HEARTBEAT_SECONDS, BaseStorage, taken_over_error
from autometa.experiment.trial import TrialState

__all__ = ["HEARTBEAT_ENV", "Lease", "heartbeat_seconds"]

logger = logging.getLogger("autometa.experiment")

HEARTBEAT_ENV = "AUTOMETA_HEARTBEAT_SECONDS"
"""Environment variable that replaces ``HEARTBEAT_SECONDS`` for the searches of a process
(tests set a fraction of a second so a killed search goes stale quickly)."""


def heartbeat_seconds() -> float:
    """``HEARTBEAT_SECONDS``, or the positive number of seconds in ``$AUTOMETA_HEARTBEAT_SECONDS``.

    A value that is not a positive number is ignored with a warning.
    """
    text = os.environ.get(HEARTBEAT_ENV, "").strip()
    if not text:
        return HEARTBEAT_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if math.isfinite(value) and value > 0:
        return value
    logger.warning(
        "ignoring %s=%r: not a positive number of seconds; using %g",
        HEARTBEAT_ENV,
        text,
        HEARTBEAT_SECONDS,
    )
    return HEARTBEAT_SECONDS


class Lease:
    """This process's session on a study, claimed on creation, released by :meth:`release`
    (or at the end of a ``with`` block).

    Args:
        storage: the study's storage.
        take_over: claim the study even from a live session (see ``start_session``).
        heartbeat: seconds between heartbeats; default :func:`heartbeat_seconds`.

    Attributes:
        session: the session id.
        requeued: numbers of the trials a stopped session had left RUNNING, now QUEUED.
        lost: set when another process took the study over; the search must then stop
            without writing.

    Raises:
        StudyInUseError: another process's session is live.
    """

    def __init__(
        self, storage: BaseStorage, *, take_over: bool = False, heartbeat: float | None = None
    ) -> None:
        self.storage = storage
        self.heartbeat = heartbeat or heartbeat_seconds()
        running = [t.number for t in storage.get_all_trials([TrialState.RUNNING])]
        self.session = storage.start_session(heartbeat=self.heartbeat, take_over=take_over)
        self.requeued = running
        for number in running:
            logger.info("trial %d was left running by a stopped search; re-queued", number)
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="autometa-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                alive = self.storage.touch_session(self.session)
            except Exception as exc:  # noqa: BLE001 - a busy or flaky file: try next beat
                logger.warning("heartbeat not recorded: %s", exc)
                continue
            if not alive:  # the search reports it in one line (taken_over), not here
                logger.info("%s: another process took the study over", self.storage)
                self.lost.set()
                return

    def taken_over(self) -> StudyTakenOverError:
        """The error a search raises when it finds that this session was taken over."""
        where = str(getattr(self.storage, "path", self.storage))
        holder = self.storage.taken_over_by(self.session)
        if holder is None:  # ended by hand: no newer session to name
            return StudyTakenOverError(
                f"study {where}: this session was ended by another process; stopping without "
                "writing more"
            )
        return taken_over_error(where, holder)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def release(self) -> None:
        """Stop the heartbeat and record the session's end (unless it was taken over)."""
        self._stop.set()
        self._thread.join()
        if self.lost.is_set():
            return
        try:
            self.storage.touch_session(self.session, ended=True)
        except Exception as exc:  # noqa: BLE001 - the next claim ends it once it is stale
            logger.warning("the end of the session was not recorded: %s", exc)
