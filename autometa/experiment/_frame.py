"""A search's trials as a pandas DataFrame (:meth:`SearchResult.to_pandas`).

pandas is optional (the ``pandas`` extra): it is imported when a table is asked for, and a
missing pandas is one line that names what to install.
"""

from __future__ import annotations

import math
from typing import Any

from autometa._optional import import_optional

__all__ = ["FRAME_COLUMNS", "trials_frame"]

FRAME_COLUMNS = [
    "number", "state", "best", "search_score", "score_sem", "params", "fidelity", "wall_time",
    "key", "duplicate_of", "device", "error", "final_mean",
]  # fmt: skip
"""The fixed columns, in order; ``seed_score_<i>`` and ``value.<name>`` follow."""


def _number(value: Any) -> float | None:
    """A finite number as float, anything else (NaN, text, None) as None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _params(trial: Any) -> float | None:
    """The parameter count: an objective, else a metric, else None."""
    for holder in (trial.objectives or {}, trial.metrics or {}):
        value = _number(holder.get("params"))
        if value is not None:
            return value
    return None


def trials_frame(trials: list[Any], verdict: Any = None, best: int | None = None) -> Any:
    """One row per trial, by trial number (ascending).

    Columns: :data:`FRAME_COLUMNS` (``best`` is True on the one row of the best trial
    ``best``, by the rule of ``docs/scoring.md``; ``search_score`` is the mean over the seeds
    a candidate was scored on, NaN without one; ``final_mean`` is the finalist's mean over
    the final stage's fresh seeds, NaN for a trial that was not a finalist), then
    ``seed_score_0`` ... (each search seed's score, NaN where a trial had fewer seeds or
    none recorded), then ``value.<name>`` for every decision the trials made.

    Raises:
        ImportError: pandas is not installed (the message names the ``pandas`` extra).
    """
    pandas = import_optional("pandas", "SearchResult.to_pandas()")
    finals: dict[int, float] = {}
    for entry in getattr(verdict, "entries", None) or []:
        if entry.kind == "finalist" and entry.trial is not None:
            finals[int(entry.trial)] = entry.mean
    ordered = sorted(trials, key=lambda t: t.number)
    names: dict[str, None] = {}
    seeds = 0
    for trial in ordered:
        names.update(dict.fromkeys(trial.values))
        per_seed = (trial.metrics or {}).get("seed_scores")
        if isinstance(per_seed, list):
            seeds = max(seeds, len(per_seed))
    rows = []
    for t in ordered:
        metrics = t.metrics or {}
        per_seed = metrics.get("seed_scores")
        per_seed = per_seed if isinstance(per_seed, list) else []
        row: dict[str, Any] = {
            "number": t.number,
            "state": t.state.name,
            "best": best is not None and t.number == best,
            "search_score": _number(t.score) if t.has_score else None,
            "score_sem": _number(metrics.get("score_sem")),
            "params": _params(t),
            "fidelity": t.fidelity,
            "wall_time": t.wall_time,
            "key": t.key,
            "duplicate_of": t.duplicate_of,
            "device": t.device,
            "error": t.error,
            "final_mean": _number(finals.get(t.number)),
        }
        for i in range(seeds):
            row[f"seed_score_{i}"] = _number(per_seed[i]) if i < len(per_seed) else None
        row.update({f"value.{name}": t.values.get(name) for name in names})
        rows.append(row)
    columns = [*FRAME_COLUMNS, *(f"seed_score_{i}" for i in range(seeds))]
    columns += [f"value.{name}" for name in names]
    frame = pandas.DataFrame(rows, columns=columns)
    floats = ["search_score", "score_sem", "params", "wall_time", "final_mean"]
    for name in floats + [f"seed_score_{i}" for i in range(seeds)]:
        frame[name] = frame[name].astype("float64")
    for name in ("fidelity", "duplicate_of"):  # whole numbers that may be missing
        frame[name] = frame[name].astype("Int64")
    return frame
