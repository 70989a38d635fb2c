"""Sessions: the rules by which one process at a time holds a study (heartbeats, staleness,
take-over) and the errors a refused claim or a fenced-off write raises.

Every backend applies the same rules to the sessions it stores, so they live here once;
:mod:`.base` re-exports these names.
"""

from __future__ import annotations

import socket
import time

from autometa.errors import StudyInUseError, StudyTakenOverError
from autometa.experiment.trial import SessionInfo

__all__ = [
    "HEARTBEAT_SECONDS",
    "STALE_AFTER_HEARTBEATS",
    "is_stale",
    "sessions_to_end",
    "taken_over_error",
    "this_host",
]

HEARTBEAT_SECONDS = 5.0
"""Seconds between two heartbeats of a search process (it records that it is alive)."""

STALE_AFTER_HEARTBEATS = 3
"""A session whose last heartbeat is older than this many of its own heartbeat intervals is
stale: its process is taken to be gone, and another search may take the study over."""


def taken_over_error(where: str, holder: SessionInfo) -> StudyTakenOverError:
    """The error a write of an older session gets once ``holder`` claimed the study."""
    return StudyTakenOverError(
        f"study {where} was taken over by session {holder.id} on host "
        f"{holder.host or 'unknown'} (pid {holder.pid}); stopping without writing more",
        holder.id,
        holder.host,
        holder.pid,
    )


def is_stale(session: SessionInfo, now: float) -> bool:
    """True when ``session`` missed ``STALE_AFTER_HEARTBEATS`` of its heartbeats at ``now``."""
    interval = session.heartbeat or HEARTBEAT_SECONDS
    return now - session.updated > STALE_AFTER_HEARTBEATS * interval


def sessions_to_end(
    sessions: list[SessionInfo], now: float, take_over: bool, where: str
) -> list[int]:
    """The unended sessions a new session ends when it claims the study.

    Raises:
        StudyInUseError: one of them is live and ``take_over`` is False.
    """
    unended = [s for s in sessions if s.ended is None]
    live = [s for s in unended if not is_stale(s, now)]
    if live and not take_over:
        holder = live[-1]
        grace = STALE_AFTER_HEARTBEATS * (holder.heartbeat or HEARTBEAT_SECONDS)
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.started))
        raise StudyInUseError(
            f"{where} is in use by pid {holder.pid} on {holder.host or 'an unknown host'} "
            f"since {since} (last heartbeat {max(0.0, now - holder.updated):.1f} s ago); "
            f"wait for it to end, or if that process is gone, run again in "
            f"{max(0.0, holder.updated + grace - now):.0f} s or with --take-over "
            "(take_over=True in Python)"
        )
    return [s.id for s in unended]


def this_host() -> str:
    """The name sessions record for this machine."""
    return socket.gethostname()
