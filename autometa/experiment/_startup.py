"""Worker start-up checks: a worker re-running an unguarded main script, a worker that dies."""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import time
from multiprocessing import connection
from typing import Any

from autometa.errors import ConfigurationError
from autometa.experiment._worker import describe_exitcode

__all__ = ["UNGUARDED_MAIN_EXIT", "START_TIMEOUT", "exit_if_reimporting_main", "wait_ready"]

logger = logging.getLogger("autometa.experiment.executors")

#: Exit code of a worker whose start-up re-ran a script's unguarded ``search()`` call.
UNGUARDED_MAIN_EXIT = 87

#: Seconds :func:`wait_ready` waits for the workers' ready messages.
START_TIMEOUT = 300.0


def exit_if_reimporting_main() -> None:
    """End this process at once if it is a worker still importing the parent's main script.

    With the ``spawn`` and ``forkserver`` start methods a worker runs the parent's main
    script (as ``__mp_main__``) before it gets its task; a script whose search is not under
    ``if __name__ == "__main__":`` would start the search again there. ``search()`` calls
    this first: the worker exits with :data:`UNGUARDED_MAIN_EXIT` before anything is opened,
    and the parent's :func:`wait_ready` explains in one message.
    """
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        os._exit(UNGUARDED_MAIN_EXIT)


def unguarded_message() -> str:
    """What a user reads when worker processes re-ran the search of an unguarded script."""
    main = getattr(sys.modules.get("__main__"), "__file__", None) or "the main script"
    return (
        f"worker processes import {main} before they start, and it runs the search again "
        'when imported: put the script\'s main code under `if __name__ == "__main__":` '
        "(worker processes are started with spawn or forkserver), or pass workers=0"
    )


def wait_ready(workers: dict[int, tuple[Any, Any]], timeout: float = START_TIMEOUT) -> None:
    """Wait for a ``("ready", pid)`` message from each ``slot: (process, pipe)``.

    Raises:
        ConfigurationError: a worker exited first: it re-ran an unguarded main script, or it
            could not be set up (its own error output says why).
    """
    waiting = dict(workers)
    deadline = time.monotonic() + timeout
    while waiting:
        left = deadline - time.monotonic()
        if left <= 0:
            logger.warning("%d worker(s) not ready after %g s", len(waiting), timeout)
            return
        handles = [h for process, conn in waiting.values() for h in (conn, process.sentinel)]
        ready = set(connection.wait(handles, left))
        for slot, (process, conn) in list(waiting.items()):
            if conn in ready:
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    message = None
                if message is not None and message[0] == "ready":
                    del waiting[slot]
                    continue
            if conn in ready or process.sentinel in ready:
                process.join(5)
                if process.exitcode == UNGUARDED_MAIN_EXIT:
                    raise ConfigurationError(unguarded_message())
                raise ConfigurationError(
                    f"worker process {slot} could not start "
                    f"({describe_exitcode(process.exitcode)}); its error output is above (the "
                    "evaluator must be importable and picklable in a fresh process)"
                )
