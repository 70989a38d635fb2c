"""Which fields of a trial or a final run a write may change, and how a backend checks and
normalises them before writing (finished records are immutable; scores are finite or None).

Every backend runs the same checks before its own write, so they live here once; :mod:`.base`
re-exports these names.
"""

from __future__ import annotations

import math
from typing import Any

from autometa.errors import StorageError
from autometa.experiment.trial import FinalRun, TrialRecord, TrialState

__all__ = [
    "FINAL_UPDATABLE",
    "UPDATABLE_FIELDS",
    "check_final_update",
    "check_update",
    "clean_score",
]

#: Fields :meth:`BaseStorage.update_trial` may change; identity fields (number, key, graph,
#: values, seed, candidate id, duplicate_of, created) are fixed when the trial is created.
UPDATABLE_FIELDS = frozenset(
    {
        "state",
        "score",
        "objectives",
        "metrics",
        "error",
        "device",
        "fidelity",
        "rung",
        "bracket",
        "attempts",
        "started",
        "finished",
        "wall_time",
    }
)


#: Fields :meth:`BaseStorage.update_final_run` may change.
FINAL_UPDATABLE = frozenset(
    {"state", "score", "metrics", "error", "device", "wall_time", "finished", "attempts"}
)


def check_final_update(run: FinalRun, fields: dict[str, Any]) -> dict[str, Any]:
    """Shared checks of :meth:`BaseStorage.update_final_run`; returns the normalised fields.

    A run lost with its worker may go from FAILED back to QUEUED (a retry): its error and
    finish time are cleared with it.
    """
    state = run.state
    retry = run.lost_with_worker and TrialState(fields.get("state", state)) == TrialState.QUEUED
    if retry:
        fields = {"error": None, "finished": None, **fields}
        state = TrialState.QUEUED
    what = f"final run {run.id}"
    return _checked_fields(fields, FINAL_UPDATABLE, "update_final_run", state, what)


def check_update(record: TrialRecord, fields: dict[str, Any]) -> dict[str, Any]:
    """Shared checks of :meth:`BaseStorage.update_trial`; returns the normalised fields."""
    return _checked_fields(
        fields, UPDATABLE_FIELDS, "update_trial", record.state, f"trial {record.number}"
    )


def _checked_fields(
    fields: dict[str, Any], allowed: frozenset[str], method: str, state: TrialState, what: str
) -> dict[str, Any]:
    """``fields`` checked (updatable, the record unfinished) and normalised (state, score)."""
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise TypeError(
            f"{method}() cannot change {unknown}; updatable fields are {sorted(allowed)}"
        )
    if state.is_finished():
        raise StorageError(f"{what} is finished ({state.name}); it cannot be changed")
    out = dict(fields)
    if "state" in out:
        out["state"] = TrialState(out["state"])
    if "score" in out:
        out["score"] = clean_score(out["score"])
    return out


def clean_score(score: Any) -> float | None:
    """A finite float, or None for missing / NaN / infinite scores."""
    if score is None:
        return None
    score = float(score)
    return score if math.isfinite(score) else None
