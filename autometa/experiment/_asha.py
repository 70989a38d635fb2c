"""Asynchronous successive halving's promotion rule (Li et al., 2020), from trial records.

A rung's *results so far* are the candidates that finished it: those waiting at the rung for a
decision and those promoted past it (their score at the rung is in ``metrics["rungs"]``), plus
any dropped there. A waiting candidate may be promoted when it is among the best
``len(results) // eta`` of those results; higher rungs are served first. Nothing waits for a
rung to fill, so a free worker either continues a candidate or starts a new one at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from autometa.experiment.trial import TrialRecord, TrialState

__all__ = ["asha_promotions", "rung_score"]


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def rung_score(trial: TrialRecord, rung: int) -> float | None:
    """The trial's score at ``rung`` from its ``metrics["rungs"]``, or None when unknown.

    The metrics come from the study file, which is untrusted: entries that are not
    ``{"rung": int, "score": number}`` are ignored.
    """
    entries = trial.metrics.get("rungs") if isinstance(trial.metrics, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("rung") == rung:
            return _finite(entry.get("score"))
    return None


def _best_waiting(
    trials: Sequence[TrialRecord],
    rung: int,
    eta: int,
    awaiting: Callable[[TrialRecord], bool],
    taken: set[int],
) -> TrialRecord | None:
    """The best candidate waiting at ``rung`` that is in the top ``1/eta`` of its results."""
    results: list[tuple[float, int, TrialRecord | None]] = []
    for trial in trials:
        if trial.bracket is None:
            continue
        reached = trial.rung or 0
        if reached > rung or trial.number in taken:  # promoted past the rung already
            score = rung_score(trial, rung)
            results.append((math.inf if score is None else score, trial.number, None))
        elif reached == rung and awaiting(trial):
            score = _finite(trial.score)
            results.append((-math.inf if score is None else score, trial.number, trial))
        elif reached == rung and trial.state == TrialState.PRUNED:
            score = rung_score(trial, rung)
            if score is not None:  # dropped at the end of an earlier session: still a result
                results.append((score, trial.number, None))
    top = sorted(results, key=lambda r: (-r[0], r[1]))[: len(results) // eta]
    return next((trial for _, _, trial in top if trial is not None), None)


def asha_promotions(
    trials: Sequence[TrialRecord],
    *,
    eta: int,
    rungs: int,
    awaiting: Callable[[TrialRecord], bool],
    free: int | None,
) -> list[TrialRecord]:
    """Candidates to promote now, one per free worker (``free``; None: every one due).

    Each promotion takes the highest rung below the top (``rungs`` in all) that has a
    candidate due, and there its best; results are recounted after each promotion.
    """
    promoted: list[TrialRecord] = []
    taken: set[int] = set()
    while free is None or len(promoted) < free:
        pick = None
        for rung in range(rungs - 2, -1, -1):
            pick = _best_waiting(trials, rung, eta, awaiting, taken)
            if pick is not None:
                break
        if pick is None:
            return promoted
        promoted.append(pick)
        taken.add(pick.number)
    return promoted
