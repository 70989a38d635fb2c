"""The confirmation: the winner and its closest rival re-scored on seeds not used to choose it.

The final stage's winner is the best of several entries on the same seeds, so its margin on
those seeds leans high (selection bias). With ``Final(confirm_seeds=N)`` the winner and the
entry with the next-highest final mean (a finalist or a baseline) are scored again on ``N``
further fresh seeds, as final runs of kind ``"confirmation"``; their paired difference is a
margin the choice of the winner did not see. The confirmation never re-chooses the winner.
``docs/scoring.md`` explains it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from autometa.experiment._margin import Margin, fmt
from autometa.experiment._stats import mean_ci, paired, seeds_needed
from autometa.experiment.trial import FinalRun, TrialState

__all__ = ["CONFIRMATION", "Confirmation", "confirmation_of", "rival_of", "split_runs"]

CONFIRMATION = "confirmation"
"""The kind of the confirmation's final runs."""

LEVEL = 0.95
"""Confidence level of the confirmation margin (one comparison: no adjustment)."""


def split_runs(runs: list[FinalRun]) -> tuple[list[FinalRun], list[FinalRun]]:
    """``(stage, confirmation)``: the final stage's own runs and the confirmation's runs."""
    stage = [r for r in runs if r.kind != CONFIRMATION]
    return stage, [r for r in runs if r.kind == CONFIRMATION]


def rival_of(entries: Any, winner: Any) -> Any:
    """The winner's closest rival: the finalist or baseline (ablation cells excluded) other
    than the winner with the highest final mean among those scored on every seed (a baseline
    above the winner, which is chosen among finalists only, is its rival); None if none."""
    others = [
        e for e in entries
        if e.kind in ("finalist", "baseline") and e.label != winner.label and e.done
        and math.isfinite(e.mean)
    ]  # fmt: skip
    return max(others, key=lambda e: (e.mean, -(e.trial or 0)), default=None)


@dataclass(frozen=True)
class Confirmation:
    """The winner against its closest rival on the confirmation seeds.

    Attributes:
        winner, rival: the two entries' labels; ``rival_kind``: the rival's kind.
        seeds: the confirmation seeds, by seed index (none of them a search or final seed).
        winner_scores, rival_scores: the score on each seed (None: failed or not run).
        margin: winner minus rival paired by seed, with its 95% t interval (one
            comparison, no adjustment); None unless both were scored on every seed.
        errors: reasons of failed seeds.
    """

    winner: str
    rival: str
    rival_kind: str
    seeds: list[int]
    winner_scores: list[float | None]
    rival_scores: list[float | None]
    margin: Margin | None
    errors: list[str] = field(default_factory=list)

    def sentence(self) -> str:
        """What the confirmation says, as the verdict's closing sentence."""
        n = len(self.seeds)
        where = f"on {n} confirmation seed{'s' if n != 1 else ''} not used to choose it"
        tail = "; the confirmation does not re-choose the winner."
        if self.margin is None:
            return f"Confirmation, {where}: no margin ({self.rival} or {self.winner} left out: " \
                f"a seed failed){tail}"  # fmt: skip
        w = _mean(self.winner_scores)
        r = _mean(self.rival_scores)
        return (
            f"Confirmation, the margin to quote, {where}: {self.winner} scores {fmt(w)} against "
            f"{fmt(r)} for {self.rival}, and {self.margin.phrase()}{tail}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe."""
        return {
            "winner": self.winner,
            "rival": self.rival,
            "rival_kind": self.rival_kind,
            "seeds": list(self.seeds),
            "winner_scores": list(self.winner_scores),
            "rival_scores": list(self.rival_scores),
            "winner_mean": _finite(_mean(self.winner_scores)),
            "rival_mean": _finite(_mean(self.rival_scores)),
            "margin": None if self.margin is None else self.margin.to_dict(),
            "errors": list(self.errors),
        }


def _mean(scores: list[float | None]) -> float:
    done = [s for s in scores if s is not None]
    return sum(done) / len(done) if done else math.nan


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _scores(runs: list[FinalRun], label: str) -> tuple[dict[int, int], dict[int, float | None]]:
    mine = sorted((r for r in runs if r.entry == label), key=lambda r: r.seed_index)
    seeds = {r.seed_index: r.seed for r in mine}
    return seeds, {r.seed_index: r.score if r.state == TrialState.DONE else None for r in mine}


def confirmation_of(runs: list[FinalRun], winner: Any, rival: Any) -> Confirmation | None:
    """The confirmation of ``winner`` against ``rival`` (entries with ``label`` and ``kind``)
    from the confirmation's runs; None when neither has a confirmation run."""
    w_seeds, w_scores = _scores(runs, winner.label)
    r_seeds, r_scores = _scores(runs, rival.label)
    if not w_seeds and not r_seeds:
        return None
    seeds = {**r_seeds, **w_seeds}
    index = sorted(seeds)
    wins = [w_scores.get(i) for i in index]
    rivals = [r_scores.get(i) for i in index]
    errors = [
        f"{r.entry}: seed {r.seed}: {r.error}" for r in runs
        if r.entry in (winner.label, rival.label) and r.state == TrialState.FAILED
    ]  # fmt: skip
    margin = None
    if all(s is not None for s in (*wins, *rivals)):
        diffs = [w - r for w, r in zip(wins, rivals)]  # type: ignore[operator]
        test = paired(diffs)
        mean, low, high = mean_ci(diffs, LEVEL)
        if len(diffs) >= 2 and test.sd == 0:
            low = high = mean
        decided = test.p_value < 1 - LEVEL
        need = None if decided else seeds_needed(test.mean, test.sd, LEVEL)
        margin = Margin(rival.label, rival.kind, mean, low, high, len(diffs), LEVEL,
                        test.p_value, decided, test.sd, need)  # fmt: skip
    return Confirmation(
        winner.label,
        rival.label,
        rival.kind,
        [seeds[i] for i in index],
        wins,
        rivals,
        margin,
        errors,
    )
