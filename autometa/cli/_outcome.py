"""How ``autometa search`` and ``autometa resume`` end: the exit code and what is printed for a
finished, failed or taken-over run, and bad option values reported as a usage error.

Both commands run a study through the same steps and end the same way, so this lives apart
from either command's options.
"""

from __future__ import annotations

import sys
from typing import Any

from autometa.cli._show import format_study
from autometa.errors import StudyTakenOverError

__all__ = [
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "UsageError",
    "guard",
    "report_failed",
    "report_result",
    "report_taken_over",
    "usage",
]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def report_result(result: Any, command: str) -> int:
    """Print the stored study; exit code 1 when nothing succeeded or the final stage is
    incomplete (its sentence, with the resume command, goes to stderr too)."""
    print(f"stopped: {result.stop_reason}")
    print(format_study(result.storage, top=5))
    if result.verdict is not None and not result.verdict.complete:
        print(f"autometa {command}: {result.verdict.sentence()}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK if result.best is not None else EXIT_FAILURE


def report_taken_over(exc: StudyTakenOverError, command: str) -> int:
    """One line: this search was taken over and stopped without writing more; exit code 1."""
    print(f"autometa {command}: {exc}", file=sys.stderr)
    return EXIT_FAILURE


def report_failed(exc: Any, command: str) -> int:
    """Print the stored study and why the run failed (no trial succeeded); exit code 1."""
    result = exc.result
    if result is not None:
        print(f"stopped: {result.stop_reason}")
        print(format_study(result.storage, top=5))
    print(f"autometa {command}: {exc}", file=sys.stderr)
    return EXIT_FAILURE


class UsageError(Exception):
    """Bad option values; reported like other bad input (exit code 2)."""


def guard(body: Any, command: str) -> int:
    """``body()`` as an exit code; a :class:`UsageError` it raises becomes a usage line (2)."""
    try:
        return int(body())
    except UsageError as exc:
        return usage(command, str(exc))


def usage(command: str, message: str) -> int:
    """Print ``message`` as ``autometa COMMAND: error: ...`` on stderr; exit code 2."""
    print(f"autometa {command}: error: {message}", file=sys.stderr)
    return EXIT_USAGE
