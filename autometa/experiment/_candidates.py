"""Between the search loop and its strategy: new candidates as trials, and what is told back."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

from autometa.experiment._pruning import cost_names
from autometa.experiment.trial import TrialRecord, TrialState
from autometa.graph import to_json

__all__ = ["candidate_records", "told_value"]


def _told_cost(name: str, value: float) -> float:
    """A cost as a multi-objective strategy maximises it (see :func:`told_value`)."""
    return -math.log10(max(value, 1.0)) if name in ("params", "macs") else -value


def told_value(strategy: Any, score: float | None, objectives: dict[str, float]) -> Any:
    """What to tell the strategy: the score, or a tuple for a multi-objective strategy.

    The strategy maximises every value, and the evaluation's objectives are costs (lower
    is better), so each is told negated: the counts ``params`` and ``macs``, which span
    orders of magnitude, as ``-log10(max(count, 1))``, any other as ``-value``. Two
    objectives are ``(score, -log10(params))``; more are the score and the first
    ``n_objectives - 1`` objectives (:func:`cost_names`, the costs a dominance pruner
    compares). Missing objectives make the value None (failed).
    """
    if score is None:
        return None
    n = int(getattr(strategy, "n_objectives", 1) or 1)
    if n == 1:
        return float(score)
    names = cost_names(objectives, n)
    if len(names) != n - 1:
        return None
    return (float(score), *(_told_cost(k, float(objectives[k])) for k in names))


def _find_done(trials: Iterable[TrialRecord], key: str) -> TrialRecord | None:
    """The first DONE, evaluated (not copied) trial of ``key``."""
    for trial in trials:
        if trial.key == key and trial.state == TrialState.DONE and trial.duplicate_of is None:
            return trial
    return None


def candidate_records(
    strategy: Any,
    candidates: list[Any],
    trials: Iterable[TrialRecord],
    placement: dict[str, Any],
    *,
    reuse: bool,
) -> list[TrialRecord]:
    """The trials to create for the strategy's ``candidates`` (numbers given by storage).

    With ``reuse``, a candidate already scored by a DONE trial of ``trials`` is answered from
    it: the strategy is told that score now and the new trial is DONE, a copy
    (``duplicate_of``) that runs nothing. ``placement`` holds a multi-fidelity plan's
    bracket fields for every new trial.
    """
    known = list(trials)
    now = time.time()
    records = []
    for cand in candidates:
        base = TrialRecord(
            number=-1,
            state=TrialState.QUEUED,
            key=cand.key,
            graph_json=to_json(cand.graph),
            values=dict(cand.values),
            candidate_id=cand.id,
            **placement,
        )
        done = _find_done(known, cand.key) if reuse else None
        if done is not None:  # answered from storage, no evaluation
            strategy.tell(cand.id, told_value(strategy, done.score, done.objectives))
            base = base.replace(
                state=TrialState.DONE,
                score=done.score,
                objectives=dict(done.objectives),
                metrics={"duplicate_of": done.number},
                fidelity=done.fidelity,
                duplicate_of=done.number,
                started=now,
                finished=now,
                wall_time=0.0,
            )
        records.append(base)
    return records
