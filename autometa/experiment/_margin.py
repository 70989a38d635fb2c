"""One paired margin of the final stage's winner over another entry, and how it is said.

Kept apart from the verdict so that the confirmation (:mod:`autometa.experiment._confirm`),
which the verdict reads, phrases its margin the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Margin", "fmt", "pct"]


@dataclass(frozen=True)
class Margin:
    """The winner minus another entry, paired by seed.

    Attributes:
        other: the other entry's label; ``kind``: its kind.
        difference: the mean of the per-seed differences.
        low, high: the interval of ``difference`` at ``level``.
        pairs: seeds paired.
        level: confidence level of the interval: Holm's level for this comparison
            (``1 - 0.05 / (comparisons left at its step)``), see :func:`_stats.holm`.
        p_value: the paired t-test's two-sided p-value (unadjusted).
        decided: Holm's method rejects "no difference": the interval excludes zero.
        spread: standard deviation of the per-seed differences.
        seeds_needed: for an undecided comparison, the seeds a paired t-test at ``level``
            with 80% power would need at the observed difference and spread (None: cannot
            be estimated).
    """

    other: str
    kind: str
    difference: float
    low: float
    high: float
    pairs: int
    level: float = 0.95
    p_value: float = 1.0
    decided: bool = False
    spread: float = math.nan
    seeds_needed: int | None = None

    def phrase(self) -> str:
        """``it beats X by ...``, ``it trails X by ...`` or ``the seeds cannot tell it apart
        from X ...``."""
        ci = (
            f"{pct(self.level)} CI of the difference {fmt(self.low, '+')} to {fmt(self.high, '+')}"
        )
        if self.decided:
            verb = "beats" if self.difference > 0 else "trails"
            return f"it {verb} {self.other} by {abs(self.difference):.2f} ({ci})"
        if self.pairs < 2:
            need = "one seed gives no spread to size a test from"
        elif self.seeds_needed is None:
            need = "the observed difference is zero, so no number of seeds would separate them"
        else:
            more = "more than " if self.seeds_needed >= 1_000_000 else "about "
            need = (
                f"{more}{self.seeds_needed:,} seeds would be needed at the observed spread "
                "(paired t-test, 80% power, at this level)"
            )
        return (
            f"the seeds cannot tell it apart from {self.other} (difference "
            f"{fmt(self.difference, '+')}, {ci}; {need})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in self.__dict__.items()}  # fmt: skip


def pct(level: float) -> str:
    """A confidence level as a percentage: ``0.975`` -> ``"97.5%"``, ``0.95`` -> ``"95%"``."""
    text = f"{100 * level:.1f}"
    return (text.removesuffix(".0") if text.endswith(".0") else text) + "%"


def fmt(value: float, sign: str = "") -> str:
    """A score with two decimals (``sign="+"`` signs it); ``"n/a"`` when not finite."""
    return f"{value:{sign}.2f}" if math.isfinite(value) else "n/a"
