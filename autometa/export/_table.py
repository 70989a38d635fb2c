"""Every trial of a study as a table: the CSV that ``autometa plot`` and ``show --csv`` write."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Any

from autometa.graph import describe_graph

__all__ = [
    "FORMULA_STARTS",
    "TRIAL_COLUMNS",
    "param_count",
    "safe_cell",
    "trial_rows",
    "write_trials_csv",
]

TRIAL_COLUMNS = (
    "number",
    "state",
    "score",
    "score_sem",
    "seed_scores",
    "seeds",
    "fidelity",
    "params",
    "wall_time",
    "device",
    "duplicate_of",
    "key",
    "architecture",
    "error",
)
"""The fixed columns; one ``value.<name>`` column per decision value follows them."""


def param_count(trial: Any) -> float | None:
    """The trial's parameter count (an objective or a metric), or None when it has none."""
    for holder in (trial.objectives or {}, trial.metrics or {}):
        value = holder.get("params")
        if isinstance(value, int | float) and math.isfinite(value):
            return float(value)
    return None


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula (OWASP's list)."""

_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def safe_cell(text: str) -> str:
    """``text`` with a single quote in front when a spreadsheet would run it as a formula.

    A study is untrusted data: an error message or a decision value starting with ``=``,
    ``+``, ``-``, ``@``, a tab or a carriage return is escaped as OWASP recommends, while a
    plain number such as ``-1.5`` stays as it is (a spreadsheet reads it as a number).
    """
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def _cell(value: Any) -> Any:
    """Numbers as they are, None as an empty cell, text escaped, anything else as JSON."""
    if value is None or isinstance(value, int | float | bool):
        return "" if value is None else value
    return safe_cell(value if isinstance(value, str) else json.dumps(value, default=str))


def _architecture(trial: Any) -> str:
    try:
        return describe_graph(trial.graph)
    except Exception:  # a trial whose graph cannot be rebuilt still gets its row
        return ""


def trial_rows(trials: list[Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """The column names and one row per trial (cells ready for ``csv``).

    Rows carry the score, the per-seed scores and their standard error when the candidate
    was scored on several seeds (``seed_scores``, ``score_sem``; JSON lists), the seeds, the
    fidelity, parameter count, wall time, device, the error of a failed trial in full, the
    one-line architecture (:func:`autometa.graph.describe_graph`) and every decision value.
    """
    names: dict[str, None] = {}
    for trial in trials:
        names.update(dict.fromkeys(trial.values))
    columns = [*TRIAL_COLUMNS, *(f"value.{name}" for name in names)]
    rows = []
    for t in trials:
        metrics = t.metrics or {}
        row = {
            "number": t.number,
            "state": t.state.name,
            "score": t.score if t.has_score else None,
            "score_sem": metrics.get("score_sem"),
            "seed_scores": metrics.get("seed_scores"),
            "seeds": metrics.get("seeds") or [t.seed],
            "fidelity": t.fidelity,
            "params": param_count(t),
            "wall_time": t.wall_time,
            "device": t.device,
            "duplicate_of": t.duplicate_of,
            "key": t.key,
            "architecture": _architecture(t),
            "error": t.error,
        }
        row.update({f"value.{name}": t.values.get(name) for name in names})
        rows.append({k: _cell(v) for k, v in row.items()})
    return columns, rows


def write_trials_csv(trials: list[Any], path: str | Path) -> Path:
    """Write :func:`trial_rows` of ``trials`` to the CSV file ``path``; returns the path."""
    columns, rows = trial_rows(trials)
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([safe_cell(name) for name in columns])  # decision names are data too
        writer.writerows([row[name] for name in columns] for row in rows)
    return path
