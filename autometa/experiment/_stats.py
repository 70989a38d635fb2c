"""Paired comparisons for the final stage: t intervals, p-values, Holm's step-down method and
the seeds a paired t-test would need.

Quantiles are exact (``scipy.stats.t``), not read from a table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats

__all__ = ["POWER", "Paired", "holm", "mean_ci", "paired", "seeds_needed", "t_quantile"]

POWER = 0.8
"""The power the seeds-needed estimate aims for (the customary 80%)."""

_MAX_SEEDS = 1_000_000


def t_quantile(level: float, df: int) -> float:
    """The two-sided ``level`` quantile of Student's t with ``df`` degrees of freedom
    (``t_quantile(0.95, 4)`` is 2.776); NaN for ``df < 1``."""
    if df < 1:
        return math.nan
    return float(stats.t.ppf(0.5 + level / 2, df))


def _mean_sd(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
    return mean, sd


def mean_ci(values: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean and its two-sided t interval at ``level`` (NaN bounds
    for fewer than two values)."""
    if not values:
        return math.nan, math.nan, math.nan
    mean, sd = _mean_sd(values)
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = t_quantile(level, len(values) - 1) * sd / math.sqrt(len(values))
    return mean, mean - half, mean + half


@dataclass(frozen=True)
class Paired:
    """One paired comparison: the differences' mean, spread and two-sided t-test p-value."""

    mean: float
    sd: float
    n: int
    p_value: float


def paired(differences: list[float]) -> Paired:
    """The paired t-test of ``differences`` (one per seed) against zero.

    With no spread (every difference equal) the p-value is 0 for a non-zero difference and
    1 for zero; with fewer than two differences it is 1 (one seed cannot tell anything).
    """
    n = len(differences)
    if n == 0:
        return Paired(math.nan, math.nan, 0, 1.0)
    mean, sd = _mean_sd(differences)
    if n < 2:
        return Paired(mean, sd, n, 1.0)
    if sd == 0:
        return Paired(mean, sd, n, 0.0 if mean != 0 else 1.0)
    t = abs(mean) / (sd / math.sqrt(n))
    return Paired(mean, sd, n, float(2 * stats.t.sf(t, n - 1)))


def holm(p_values: list[float], alpha: float = 0.05) -> list[tuple[bool, float]]:
    """Holm's step-down method: for each p-value, ``(rejected, level)``.

    The p-values are taken smallest first; the i-th (from 0) is rejected when it and every
    smaller one are below ``alpha / (m - i)``. ``level`` is the confidence level of the
    interval that matches the decision: ``1 - alpha / (m - i)`` for a rejected one, and the
    level of the step where the method stopped for the others, so that a reported interval
    excludes zero exactly when its comparison is rejected. The family-wise error rate (any
    false "beats") stays at most ``alpha``.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    out: list[tuple[bool, float]] = [(False, 1 - alpha)] * m
    stopped: float | None = None
    for step, i in enumerate(order):
        level = 1 - alpha / (m - step)
        if stopped is None and p_values[i] < alpha / (m - step):
            out[i] = (True, level)
        else:
            stopped = level if stopped is None else stopped
            out[i] = (False, stopped)
    return out


def seeds_needed(diff: float, sd: float, level: float, power: float = POWER) -> int | None:
    """Seeds a paired t-test at confidence ``level`` would need to detect a true difference of
    ``diff`` with the given ``power``, at spread ``sd`` (the standard estimate
    ``n = ((t_{1-a/2, n-1} + t_{power, n-1}) * sd / diff)^2``, iterated from the normal
    approximation until it settles). None when it cannot be estimated (no spread known, or
    a zero difference, which no number of seeds tells from zero)."""
    if not (math.isfinite(diff) and math.isfinite(sd)) or diff == 0:
        return None
    if sd == 0:
        return 2
    alpha = 1 - level
    ratio = sd / abs(diff)
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    n = max(2, math.ceil((z * ratio) ** 2))
    for _ in range(50):
        if n >= _MAX_SEEDS:
            return _MAX_SEEDS
        t = stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(power, n - 1)
        new = max(2, math.ceil((t * ratio) ** 2))
        if new == n:
            break
        n = new
    return min(n, _MAX_SEEDS)
