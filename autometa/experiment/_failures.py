"""Failed trials grouped by kind: what the search prints as it runs and when it ends."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FailureKind",
    "describe_failure",
    "failure_kind",
    "failure_kinds",
    "log_failure",
    "log_session_failures",
    "no_success",
]

logger = logging.getLogger("autometa.experiment")

# Reasons the search itself writes, matched at the start of the error text.
_PREFIXES = [
    ("out of memory", "out of memory"),
    ("timed out", "timed out"),
    ("worker died", "worker died"),
    ("score is", "non-finite score"),
    ("result could not be sent back", "result not sent back"),
    ("Ray task failed", "Ray task failed"),
    ("evaluator returned", "not an EvalResult"),
]
_EXCEPTION = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*(?:Error|Exception|Interrupt|Exit|Warning))\b")


@dataclass
class FailureKind:
    """Failed trials that share a kind.

    Attributes:
        kind: e.g. ``"ValueError"``, ``"out of memory"``, ``"timed out"``.
        count: how many trials failed this way.
        first: the number of the first such trial.
        error: the first trial's full error text.
    """

    kind: str
    count: int
    first: int
    error: str


def failure_kind(error: str | None) -> str:
    """The kind of a failure from its error text: the exception's name or the search's reason."""
    text = (error or "").strip()
    if not text:
        return "failed"
    for prefix, kind in _PREFIXES:
        if text.startswith(prefix):
            return kind
    match = _EXCEPTION.match(text)
    if match:
        return match.group(1).rsplit(".", 1)[-1]
    return text.split("(", 1)[0].split(":", 1)[0].strip()[:60] or "failed"


def failure_kinds(trials: Iterable[Any]) -> list[FailureKind]:
    """Failed trials grouped by kind, most frequent first (then by first occurrence)."""
    kinds: dict[str, FailureKind] = {}
    for trial in sorted(trials, key=lambda t: t.number):
        if getattr(trial.state, "name", "") != "FAILED":
            continue
        kind = failure_kind(trial.error)
        if kind in kinds:
            kinds[kind].count += 1
        else:
            kinds[kind] = FailureKind(kind, 1, trial.number, trial.error or "failed")
    return sorted(kinds.values(), key=lambda k: (-k.count, k.first))


def describe_failure(number: int, error: str | None, metrics: dict[str, Any]) -> str:
    """The full text of one failure: its error and, when recorded, the traceback."""
    text = f"trial {number} failed: {error or 'failed'}"
    trace = metrics.get("traceback")
    if trace:
        text += "\n" + str(trace).rstrip()
    return text


def no_success(trials: list[Any]) -> str | None:
    """Why a run counts as failed (failed trials and none done), quoting the first failure."""
    if any(getattr(t.state, "name", "") == "DONE" for t in trials):
        return None
    kinds = failure_kinds(trials)
    if not kinds:
        return None
    total = sum(k.count for k in kinds)
    summary = ", ".join(f"{k.count} {k.kind}" for k in kinds)
    first = min(kinds, key=lambda k: k.first)
    return (
        f"no trial succeeded: {total} failed ({summary}); the first failure, trial "
        f"{first.first}: {first.error}"
    )


def log_failure(
    counts: dict[str, int], number: int, error: str | None, metrics: dict[str, Any]
) -> None:
    """Count a failed trial in ``counts`` (per kind) and log it: the first failure of each kind
    in full (with its traceback), later ones briefly."""
    kind = failure_kind(error)
    first = kind not in counts
    counts[kind] = counts.get(kind, 0) + 1
    if first:
        logger.warning(
            "%s\n(the first failure of kind %r in this session; later ones are counted "
            "at the end)",
            describe_failure(number, error, metrics),
            kind,
        )
    else:
        logger.info("trial %d failed: %s", number, error)


def log_session_failures(counts: dict[str, int]) -> None:
    """At the end of a session: the count of each kind of failure (:func:`log_failure`)."""
    if counts:
        logger.warning(
            "%d trial(s) failed in this session: %s",
            sum(counts.values()),
            ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items(), key=lambda i: -i[1])),
        )
