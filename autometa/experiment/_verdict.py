"""Reading the final stage: each entry's mean and 95% interval, the winner, paired margins.

Every entry of the final stage is scored on the same fresh seeds, so the winner's margin over
another entry is a paired difference (seed by seed) with a Student's t interval. ``docs/
scoring.md`` explains how to read it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from autometa.experiment.storage.base import BaseStorage
from autometa.experiment.trial import FinalRun, TrialState

__all__ = [
    "Margin",
    "Verdict",
    "VerdictEntry",
    "best_entry",
    "entries_of",
    "mean_ci",
    "t95",
    "verdict",
]


# Two-sided 95% quantiles of Student's t by degrees of freedom (then the normal's 1.96).
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042]  # fmt: skip


def t95(df: int) -> float:
    """The two-sided 95% quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        return math.nan
    if df <= len(_T95):
        return _T95[df - 1]
    return 2.021 if df <= 40 else 2.000 if df <= 60 else 1.980 if df <= 120 else 1.960


def mean_ci(values: list[float]) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean and its 95% t interval (NaN bounds for one value)."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = sum(values) / n
    if n == 1:
        return mean, math.nan, math.nan
    sem = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)
    half = t95(n - 1) * sem
    return mean, mean - half, mean + half


@dataclass(frozen=True)
class VerdictEntry:
    """One final-stage entry over its seeds.

    Attributes:
        label: ``"trial 12"``, ``"baseline maml-relu-2x100"``, ``"ablation ..."``.
        kind: ``"finalist"``, ``"baseline"`` or ``"ablation"``.
        trial: the search trial of a finalist, else None.
        key: the evaluated graph's canonical hash.
        graph_json: the evaluated graph.
        seeds: the final seeds, by seed index.
        scores: the score on each seed (None: failed or not run yet).
        mean: the mean over the finished seeds; ``low``, ``high``: its 95% t interval.
        complete: every seed finished, none lost with its worker (a resume re-runs those).
        errors: reasons of failed seeds.
    """

    label: str
    kind: str
    trial: int | None
    key: str
    graph_json: dict[str, Any]
    seeds: list[int]
    scores: list[float | None]
    mean: float
    low: float
    high: float
    complete: bool
    errors: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        """Every seed scored: the entry can win or be compared (a failed seed leaves it out)."""
        return bool(self.scores) and all(s is not None for s in self.scores)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (the graph left out)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "graph_json"}
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in out.items()}  # fmt: skip


def entries_of(runs: list[FinalRun]) -> list[VerdictEntry]:
    by_label: dict[str, list[FinalRun]] = {}
    for run in runs:
        by_label.setdefault(run.entry, []).append(run)
    out = []
    for label, group in by_label.items():
        group.sort(key=lambda r: r.seed_index)
        scores = [r.score if r.state == TrialState.DONE else None for r in group]
        mean, low, high = mean_ci([s for s in scores if s is not None])
        out.append(VerdictEntry(
            label, group[0].kind, group[0].trial, group[0].key, group[0].graph_json,
            [r.seed for r in group], scores, mean, low, high,
            complete=all(r.state.is_finished() and not r.lost_with_worker for r in group),
            errors=[f"seed {r.seed}: {r.error}" for r in group if r.state == TrialState.FAILED],
        ))  # fmt: skip
    return out


def best_entry(entries: Any) -> VerdictEntry | None:
    """The entry with the highest mean among those scored on every seed (None if none)."""
    scored = [e for e in entries if e.done and math.isfinite(e.mean)]
    return max(scored, key=lambda e: (e.mean, -(e.trial or 0)), default=None)


@dataclass(frozen=True)
class Margin:
    """The winner minus another entry, paired by seed: mean difference and its 95% interval."""

    other: str
    kind: str
    difference: float
    low: float
    high: float
    pairs: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in self.__dict__.items()}  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    """What the final stage says: every entry, the winner, and its paired margins.

    A verdict rests on finished runs only: while any final run is queued, running or lost
    with its worker (``pending``) there is no winner, and :meth:`sentence` says how to
    finish the stage. An entry with a recorded failure (a seed that failed for a reason of
    its own, e.g. out of memory) can neither win nor be compared; it is named as left out.

    Attributes:
        entries: every entry of the stage.
        winner: the finalist with the best mean over every seed, or None.
        margins: the winner minus each other entry scored on every seed, paired by seed.
        pending: final runs not done yet: queued, running, or lost with their worker.
        lost: how many of ``pending`` were lost with their worker.
        total: every final run of the stage.
        where: the study's file, for the resume command; None when it has none.
    """

    entries: list[VerdictEntry]
    winner: VerdictEntry | None
    margins: list[Margin]
    pending: int = 0
    lost: int = 0
    total: int = 0
    where: str | None = None

    @property
    def complete(self) -> bool:
        """Every final evaluation finished, none lost with its worker."""
        return bool(self.entries) and self.pending == 0

    def sentence(self) -> str:
        """The result in one sentence a user can quote."""
        w = self.winner
        if not self.complete:
            how = (
                f"`autometa resume {self.where}`" if self.where
                else "running the same search again on its storage"
            )  # fmt: skip
            lost = f", {self.lost} of them lost with their worker" if self.lost else ""
            return (
                f"The final stage is incomplete: {self.pending} of {self.total} evaluations "
                f"are not done{lost}; no verdict yet. Finish it with {how}."
            )
        if w is None:
            return (
                "The final stage finished, but no finalist was scored on every seed; no verdict."
            )
        n = sum(s is not None for s in w.scores)
        text = (
            f"{w.label} scores {w.mean:.2f} (95% CI {_fmt(w.low)} to {_fmt(w.high)}, "
            f"{n} fresh seeds)"
        )
        parts = [
            f"{'beats' if m.difference > 0 else 'trails'} {m.other} by "
            f"{abs(m.difference):.2f} (95% CI of the difference {_fmt(m.low, '+')} to "
            f"{_fmt(m.high, '+')})"
            for m in self.margins
            if math.isfinite(m.difference)
        ]
        if parts:
            text += "; paired on the same seeds, it " + "; it ".join(parts)
        out = [e.label for e in self.entries if e.kind != "finalist" and not e.done]
        if out:
            text += f" ({', '.join(out)} left out: a seed failed)"
        return text + "."

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe."""
        return {
            "entries": [e.to_dict() for e in self.entries],
            "winner": self.winner.label if self.winner else None,
            "margins": [m.to_dict() for m in self.margins],
            "sentence": self.sentence(),
            "complete": self.complete,
            "pending": self.pending,
            "lost": self.lost,
        }


def _fmt(value: float, sign: str = "") -> str:
    return f"{value:{sign}.2f}" if math.isfinite(value) else "n/a"


def verdict(storage: BaseStorage) -> Verdict | None:
    """The final stage's result read from storage, or None when the study has none."""
    runs = storage.get_final_runs()
    if not runs:
        return None
    entries = entries_of(runs)
    lost = sum(r.lost_with_worker for r in runs)
    pending = lost + sum(not r.state.is_finished() for r in runs)
    winner = best_entry(e for e in entries if e.kind == "finalist") if not pending else None
    margins = []
    if winner is not None:
        mine = dict(zip(winner.seeds, winner.scores))
        for other in entries:
            if other.kind == "finalist" or not other.done:
                continue
            diffs = [
                mine[s] - o for s, o in zip(other.seeds, other.scores)
                if o is not None and mine.get(s) is not None
            ]  # fmt: skip
            mean, low, high = mean_ci(diffs)
            margins.append(Margin(other.label, other.kind, mean, low, high, len(diffs)))
    where = getattr(storage, "path", None)
    return Verdict(
        entries, winner, margins, pending, lost, len(runs), None if where is None else str(where)
    )
