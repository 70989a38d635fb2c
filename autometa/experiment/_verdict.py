"""Reading the final stage: each entry's mean and 95% interval, the winner, paired margins.

Every entry of the final stage is scored on the same fresh seeds, so the winner's margin over
another entry is a paired difference (seed by seed) with a Student's t interval (exact
quantiles from ``scipy.stats``). The winner is compared with every other entry at once, so
the comparisons are adjusted with Holm's step-down method; "beats" is said only when the
adjusted interval excludes zero, else the sentence says the seeds could not tell the two
apart and how many seeds a paired t-test would need. ``docs/scoring.md`` explains it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from autometa.experiment._confirm import Confirmation, confirmation_of, rival_of, split_runs
from autometa.experiment._margin import Margin, fmt
from autometa.experiment._stats import holm, paired, seeds_needed, t_quantile
from autometa.experiment._stats import mean_ci as _mean_ci
from autometa.experiment.trial import FinalRun, TrialState

if TYPE_CHECKING:
    from autometa.experiment.storage.base import BaseStorage

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


def t95(df: int) -> float:
    """The two-sided 95% quantile of Student's t with ``df`` degrees of freedom (exact)."""
    return t_quantile(0.95, df)


def mean_ci(values: list[float]) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean and its 95% t interval (NaN bounds for one value)."""
    return _mean_ci(values, 0.95)


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


ALPHA = 0.05
"""Family-wise error rate of the verdict's comparisons (Holm's method keeps it)."""


def _margins(winner: VerdictEntry, entries: list[VerdictEntry]) -> list[Margin]:
    """The winner against every other entry scored on every seed, Holm-adjusted together."""
    mine = dict(zip(winner.seeds, winner.scores))
    tests = []
    for other in entries:
        if other.label == winner.label or not other.done:
            continue
        diffs = [
            mine[s] - o for s, o in zip(other.seeds, other.scores)  # type: ignore[operator]
            if o is not None and mine.get(s) is not None
        ]  # fmt: skip
        tests.append((other, diffs, paired(diffs)))
    decisions = holm([t.p_value for _, _, t in tests], ALPHA)
    out = []
    for (other, diffs, test), (decided, level) in zip(tests, decisions):
        mean, low, high = _mean_ci(diffs, level)
        if len(diffs) >= 2 and test.sd == 0:
            low = high = mean
        need = None if decided else seeds_needed(test.mean, test.sd, level)
        out.append(Margin(other.label, other.kind, mean, low, high, len(diffs), level,
                          test.p_value, decided, test.sd, need))  # fmt: skip
    return out


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
        margins: the winner minus each other entry scored on every seed (other finalists,
            baselines, ablation cells), paired by seed, Holm-adjusted together.
        pending: final runs not done yet: queued, running, or lost with their worker.
        lost: how many of ``pending`` were lost with their worker.
        total: every final run of the stage.
        where: the study's file, for the resume command; None when it has none.
        confirmation: the winner against its closest rival on the confirmation seeds (seeds
            not used to choose it), or None without a confirmation; it never re-chooses the
            winner, and its runs are counted in ``pending`` and ``total``.
    """

    entries: list[VerdictEntry]
    winner: VerdictEntry | None
    margins: list[Margin]
    pending: int = 0
    lost: int = 0
    total: int = 0
    where: str | None = None
    confirmation: Confirmation | None = None

    @property
    def complete(self) -> bool:
        """Every final evaluation finished, none lost with its worker."""
        return bool(self.entries) and self.pending == 0

    def ranks(self) -> dict[str, int]:
        """Finalist label -> rank by mean (1: the winner) among finalists scored on every
        seed; other entries and finalists with a failed seed have none."""
        done = [e for e in self.entries if e.kind == "finalist" and e.done]
        done.sort(key=lambda e: (-e.mean, e.trial or 0))
        return {e.label: i for i, e in enumerate(done, start=1)}

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
        k = len(self.ranks())
        chosen = (
            f"; optimistic, since it was chosen as the best of {k} finalists on these same "
            "seeds" if k > 1 else ""
        )  # fmt: skip
        text = (
            f"{w.label} scores {w.mean:.2f} (95% CI {fmt(w.low)} to {fmt(w.high)}, "
            f"{n} fresh seeds{chosen})"
        )
        margins = [m for m in self.margins if math.isfinite(m.difference)]
        if len(margins) == 1:
            text += "; paired on the same seeds (one comparison), " + margins[0].phrase()
        elif margins:
            text += (
                f"; paired on the same seeds, with Holm's adjustment over {len(margins)} "
                "comparisons (at most a 5% chance of any false claim), "
                + "; ".join(m.phrase() for m in margins)
            )
        out = [e.label for e in self.entries if e.label != w.label and not e.done]
        if out:
            text += f" ({', '.join(out)} left out: a seed failed)"
        text += "."
        if self.confirmation is not None:
            text += " " + self.confirmation.sentence()
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe."""
        ranks = self.ranks()
        return {
            "entries": [e.to_dict() | {"rank": ranks.get(e.label)} for e in self.entries],
            "winner": self.winner.label if self.winner else None,
            "margins": [m.to_dict() for m in self.margins],
            "sentence": self.sentence(),
            "complete": self.complete,
            "pending": self.pending,
            "lost": self.lost,
            "confirmation": None if self.confirmation is None else self.confirmation.to_dict(),
        }


def verdict(storage: BaseStorage) -> Verdict | None:
    """The final stage's result read from storage, or None when the study has none."""
    runs = storage.get_final_runs()
    if not runs:
        return None
    stage, confirming = split_runs(runs)
    entries = entries_of(stage)
    lost = sum(r.lost_with_worker for r in runs)
    pending = lost + sum(not r.state.is_finished() for r in runs)
    winner = best_entry(e for e in entries if e.kind == "finalist") if not pending else None
    margins = _margins(winner, entries) if winner is not None else []
    rival = rival_of(entries, winner) if winner is not None and confirming else None
    confirmed = None if rival is None else confirmation_of(confirming, winner, rival)
    where = getattr(storage, "path", None)
    return Verdict(
        entries,
        winner,
        margins,
        pending,
        lost,
        len(runs),
        None if where is None else str(where),
        confirmed,
    )
