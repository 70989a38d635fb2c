"""The one definition of a study's best trial, used everywhere a "best" is shown or exported.

A study has two scores per candidate: the *search score* (the mean over the search seeds,
what the strategy maximised) and, for the finalists of a finished final stage, the *final
mean* (the mean over fresh seeds shared by every entry, ``docs/scoring.md``). The best is

- the final stage's winner (highest final mean among finalists scored on every fresh seed)
  once the final stage is complete, else
- the DONE trial with the highest search score (lowest number on ties).

Pruned, failed, queued and running trials are never best. The leaderboard, ``autometa
show``, the plots, ``SearchResult.best``, ``export --best``, the card and every logger call
:func:`best_of` or :func:`choose_best`, and show :attr:`Best.label` with the number, so a
reader always knows which of the two scores the word "best" refers to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from autometa.experiment._verdict import Verdict, verdict
from autometa.experiment.trial import TrialRecord, TrialState

__all__ = ["FINAL", "SEARCH", "Best", "best_of", "choose_best", "ranked", "with_final_means"]

FINAL = "final stage winner"
SEARCH = "search score"


@dataclass(frozen=True)
class Best:
    """The best trial and which score made it best.

    Attributes:
        trial: the trial record (its ``score`` is the search score; ``final_mean`` is set for
            a finalist of a finished final stage).
        basis: :data:`FINAL` (the final stage's winner) or :data:`SEARCH` (highest search
            score: the final stage is absent, unfinished, or scored no finalist on every seed).
        search_score: the trial's mean over its search seeds.
        final_mean: its mean over the final stage's fresh seeds (None before that).
        final_low, final_high: the 95% interval of ``final_mean`` (None without one).
        final_seeds: fresh seeds behind ``final_mean`` (0 before the final stage).
        why: for a :data:`SEARCH` best, why it is not a final stage winner.
    """

    trial: TrialRecord
    basis: str
    search_score: float
    final_mean: float | None = None
    final_low: float | None = None
    final_high: float | None = None
    final_seeds: int = 0
    why: str = ""

    @property
    def number(self) -> int:
        """The best trial's number."""
        return self.trial.number

    @property
    def value(self) -> float:
        """The number that made it best: the final mean, or the search score."""
        return self.final_mean if self.basis == FINAL else self.search_score  # type: ignore[return-value]

    @property
    def label(self) -> str:
        """What "best" means here, e.g. ``best (final stage winner, final mean over 3 fresh
        seeds)`` or ``best so far (search score)``."""
        if self.basis == FINAL:
            return f"best (final stage winner, final mean over {self.final_seeds} fresh seeds)"
        return f"best so far (search score{'; ' + self.why if self.why else ''})"

    def short(self) -> str:
        """``trial 1, final mean -54.36`` or ``trial 0, search score -61.89``."""
        which = "final mean" if self.basis == FINAL else "search score"
        return f"trial {self.number}, {which} {self.value:.4g}"

    def describe(self) -> str:
        """One line: ``trial 1: best (...) -54.36; search score -69.28``."""
        text = f"trial {self.number}: {self.label} {self.value:.4g}"
        if self.basis == FINAL:
            ci = (
                f" (95% CI {self.final_low:.4g} to {self.final_high:.4g})"
                if self.final_low is not None
                else ""
            )
            text += f"{ci}; search score {self.search_score:.4g}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: the trial number, the basis, its label, both scores."""
        return {
            "trial": self.number,
            "basis": self.basis,
            "label": self.label,
            "value": self.value,
            "search_score": self.search_score,
            "final_mean": self.final_mean,
            "final_low": self.final_low,
            "final_high": self.final_high,
            "final_seeds": self.final_seeds,
        }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def choose_best(trials: list[TrialRecord], final: Verdict | None) -> Best | None:
    """The rule itself (no storage access): see the module docstring.

    Args:
        trials: every trial of the study.
        final: the final stage's verdict, or None when the study has none.
    """
    by_number = {t.number: t for t in trials}
    if final is not None and final.complete and final.winner is not None:
        w = final.winner
        trial = by_number.get(w.trial) if w.trial is not None else None
        if trial is not None and trial.state == TrialState.DONE:
            return Best(
                trial.replace(final_mean=w.mean), FINAL, float(trial.score),  # type: ignore[arg-type]
                w.mean, _finite(w.low), _finite(w.high), sum(s is not None for s in w.scores),
            )  # fmt: skip
    done = [t for t in trials if t.state == TrialState.DONE and t.has_score]
    top = max(done, key=lambda t: (t.score, -t.number), default=None)
    if top is None:
        return None
    if final is None:
        why = ""
    elif not final.complete:
        why = "the final stage is not finished"
    else:
        why = "the final stage scored no finalist on every seed"
    return Best(top, SEARCH, float(top.score), why=why)  # type: ignore[arg-type]


def with_final_means(trials: list[TrialRecord], final: Verdict | None) -> list[TrialRecord]:
    """``trials`` with ``final_mean`` set on every finalist scored on all its fresh seeds."""
    if final is None:
        return list(trials)
    means = {
        e.trial: e.mean
        for e in final.entries
        if e.kind == "finalist" and e.trial is not None and e.done and math.isfinite(e.mean)
    }
    return [t.replace(final_mean=means[t.number]) if t.number in means else t for t in trials]


def ranked(trials: list[TrialRecord], final: Verdict | None) -> list[TrialRecord]:
    """The leaderboard: the best first, then the other DONE trials by search score, then the
    rest by number. Once the final stage is complete its finalists lead, by final mean, so
    rank 1 is always :func:`choose_best`'s trial."""
    trials = with_final_means(trials, final)
    done = sorted(
        (t for t in trials if t.state == TrialState.DONE and t.has_score),
        key=lambda t: (-t.score, t.number),  # type: ignore[operator]
    )
    best = choose_best(trials, final)
    if best is not None and best.basis == FINAL:
        finalists = sorted(
            (t for t in done if t.final_mean is not None),
            key=lambda t: (-t.final_mean, t.number),  # type: ignore[operator]
        )
        done = finalists + [t for t in done if t.final_mean is None]
    seen = {t.number for t in done}
    return done + sorted((t for t in trials if t.number not in seen), key=lambda t: t.number)


def best_of(storage: Any) -> Best | None:
    """The study's best (see the module docstring), read from its storage."""
    return choose_best(storage.get_all_trials(), verdict(storage))
