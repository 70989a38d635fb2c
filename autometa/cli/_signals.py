"""SIGTERM and SIGHUP stop a command the way Ctrl-C does.

A service manager stopping a job (SIGTERM) or a closed terminal (SIGHUP) would otherwise kill
the process on the spot, leaving its trials ``RUNNING`` and its worker processes orphaned.
While a command runs, both signals raise :class:`Terminated`, a ``KeyboardInterrupt``, in the
main thread, so they take the Ctrl-C path: running evaluations are stopped and re-queued,
everything finished stays stored, the session is closed, and the command exits with
``128 + signal number`` (143 for SIGTERM, 129 for SIGHUP; Ctrl-C keeps 130).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["EXIT_INTERRUPTED", "Terminated", "exit_code", "report", "signals_as_interrupts"]

#: Exit code after Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130

_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived; raised where Ctrl-C would raise ``KeyboardInterrupt``.

    Attributes:
        signum: the signal number.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        """``"SIGTERM"`` or ``"SIGHUP"``."""
        return signal.Signals(self.signum).name


def exit_code(exc: BaseException) -> int:
    """``128 + signal number`` for :class:`Terminated`, 130 for Ctrl-C."""
    return 128 + exc.signum if isinstance(exc, Terminated) else EXIT_INTERRUPTED


def report(exc: BaseException, text: str) -> None:
    """Print ``text`` after an interruption, prefixed with what stopped the command.

    A hang-up may have closed the terminal, so a failed write is ignored: the exit code
    still tells what happened.
    """
    what = f"terminated ({exc.name})" if isinstance(exc, Terminated) else "interrupted"
    try:
        print(f"{what}: {text}" if text else what, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


@contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """While active, SIGTERM and SIGHUP raise :class:`Terminated` in the main thread.

    The first such signal also makes further ones ignored, so the clean-up it starts (stopping
    workers, re-queueing trials, closing the session) is not cut short by a second one. Outside
    the main thread (where Python cannot install handlers) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        for sig in _SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        raise Terminated(signum)

    previous = {sig: signal.signal(sig, handler) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
