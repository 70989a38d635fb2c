"""Pruners: stop a trial whose learning curve falls behind the finished trials' curves.

A pruner compares a running trial's intermediate value at a report step with the values the
finished (``DONE``) trials reported at the same step, and says whether to stop it. The rules
follow Optuna's ``MedianPruner`` and ``PercentilePruner`` (Akiba et al., 2019, see
``docs/references.md``): the running trial's best value so far is compared with a percentile
of the finished trials' values at the step, and no decision is taken before
``n_startup_trials`` trials have finished or before ``n_warmup_steps`` steps.

:class:`DominancePruner` (``"dominated:3"``) is the multi-objective rule for searches whose
strategy also minimises costs (NSGA-II): a trial stops when enough finished trials beat it on
the value at the step *and* on every cost, so a small network that learns slowly is kept.

Pruners are chosen by name (``"median"``, ``"percentile:25"``, ``"dominated:3"``, ``"none"``)
through :data:`PRUNERS` and :func:`make_pruner`, or passed as objects; see
``docs/pruning.md``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from autometa.errors import ConfigurationError
from autometa.registry import Registry

__all__ = [
    "PRUNERS",
    "DominancePruner",
    "MedianPruner",
    "PercentilePruner",
    "Pruner",
    "make_pruner",
    "dominates",
    "percentile",
]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of sorted ``values``, interpolated linearly between
    the two nearest ranks (numpy's default method); NaN for no values."""
    if not values:
        return math.nan
    pos = (len(values) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (pos - low)


class Pruner(ABC):
    """Decides, at a report step, whether a running trial should stop.

    Subclasses implement :meth:`should_prune`; :meth:`decide` adds the warm-up. A pruner is
    sent to worker processes with every job, so it must be picklable and hold no state that
    changes during a search.

    Args:
        n_startup_trials: no trial is pruned before this many trials have finished (``DONE``
            with reported values): their curves are the reference.
        n_warmup_steps: no trial is pruned at a step below this (meta-iterations for MAML).
    """

    name = "pruner"
    uses_costs = False
    """True for a rule that needs the trial's cost objectives (:meth:`decide_point`)."""

    def __init__(self, n_startup_trials: int = 5, n_warmup_steps: int = 0) -> None:
        for label, value in (("n_startup_trials", n_startup_trials),
                             ("n_warmup_steps", n_warmup_steps)):  # fmt: skip
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigurationError(
                    f"pruner {self.name!r}: {label} must be an int >= 0, got {value!r}"
                )
        self.n_startup_trials = n_startup_trials
        self.n_warmup_steps = n_warmup_steps

    @abstractmethod
    def should_prune(self, step: int, value: float, history: Sequence[float]) -> bool:
        """Whether a trial whose best value so far is ``value`` at ``step`` should stop.

        Args:
            step: the report step (meta-iterations done).
            value: the trial's best reported value up to ``step`` (higher is better).
            history: the values the finished trials reported at ``step``, sorted ascending
                (possibly empty: then a pruner should not prune).
        """

    def decide(self, step: int, value: float, history: Sequence[float], finished: int) -> bool:
        """:meth:`should_prune` after the warm-up: never before ``n_warmup_steps`` or before
        ``n_startup_trials`` trials have ``finished``, never on a NaN value or no history."""
        if self.warming_up(step, finished) or not history:
            return False
        if not math.isfinite(value):
            return False
        return bool(self.should_prune(step, value, history))

    def warming_up(self, step: int, finished: int) -> bool:
        """Whether no decision may be taken yet: before ``n_warmup_steps`` or before
        ``n_startup_trials`` trials have ``finished``."""
        return step < self.n_warmup_steps or finished < self.n_startup_trials

    def threshold(self, history: Sequence[float]) -> float | None:
        """The value a trial must reach not to be pruned, when the rule has one (for the
        record of a pruned trial); None otherwise."""
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe settings that :func:`make_pruner` turns back into this pruner."""
        return {
            "name": self.name,
            "n_startup_trials": self.n_startup_trials,
            "n_warmup_steps": self.n_warmup_steps,
        }

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if k != "name")
        return f"{type(self).__name__}({options})"


class PercentilePruner(Pruner):
    """Stops a trial that is not in the top ``percentile`` % of the finished trials at a step.

    As Optuna's ``PercentilePruner`` when maximising: prune when the trial's best value so far
    is below the ``100 - percentile``-th percentile of the finished trials' values at the
    step. ``percentile=25`` keeps only trials in the top quarter; 50 is the median rule.
    """

    name = "percentile"

    def __init__(
        self, percentile: float = 25.0, n_startup_trials: int = 5, n_warmup_steps: int = 0
    ) -> None:
        super().__init__(n_startup_trials, n_warmup_steps)
        if (
            isinstance(percentile, bool)
            or not isinstance(percentile, int | float)
            or not 0.0 <= float(percentile) <= 100.0
        ):
            raise ConfigurationError(
                f"pruner 'percentile': percentile must be a number in [0, 100], got {percentile!r}"
            )
        self.percentile = float(percentile)

    def threshold(self, history: Sequence[float]) -> float | None:
        return percentile(history, 100.0 - self.percentile) if history else None

    def should_prune(self, step: int, value: float, history: Sequence[float]) -> bool:
        bar = self.threshold(history)
        return bar is not None and value < bar

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "percentile": self.percentile}


class MedianPruner(PercentilePruner):
    """Stops a trial whose best value so far is below the median of the finished trials'
    values at the same step (Optuna's ``MedianPruner``)."""

    name = "median"

    def __init__(self, n_startup_trials: int = 5, n_warmup_steps: int = 0) -> None:
        super().__init__(50.0, n_startup_trials, n_warmup_steps)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        del out["percentile"]
        return out


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether point ``a`` dominates ``b``: ``(value, *costs)`` points, the value maximised
    and the costs minimised; at least as good on every objective, strictly better on one."""
    if len(a) != len(b) or not a:
        return False
    if a[0] < b[0] or any(x > y for x, y in zip(a[1:], b[1:])):
        return False
    return a[0] > b[0] or any(x < y for x, y in zip(a[1:], b[1:]))


class DominancePruner(Pruner):
    """Stops a trial whose point is dominated by at least ``min_dominating`` finished trials.

    For multi-objective searches (NSGA-II): at a report step a trial's point is its best
    value so far paired with its cost objectives (those the strategy minimises, e.g.
    parameters and MACs, known from its graph before it runs); the finished trials' points
    are their values at the same step with their costs. A trial that some finished trial
    beats on the value and matches or beats on every cost cannot reach the Pareto front
    unless its curve overtakes that trial's later; with ``min_dominating`` such trials
    (the default 3) one lucky or noisy curve is not enough to stop it, and a trial that is
    the smallest or the fastest learner at its size is never stopped, however low its value.
    A median rule on the value alone would stop exactly the small networks that NSGA-II
    keeps for their size.

    Without costs (:meth:`should_prune`, values only) dominance is being beaten on the value:
    the trial stops when ``min_dominating`` finished values are higher.

    Args:
        min_dominating: finished trials that must dominate the trial's point (an int >= 1).
        n_startup_trials: as :class:`Pruner`.
        n_warmup_steps: as :class:`Pruner`.
    """

    name = "dominated"
    uses_costs = True

    def __init__(
        self, min_dominating: int = 3, n_startup_trials: int = 5, n_warmup_steps: int = 0
    ) -> None:
        super().__init__(n_startup_trials, n_warmup_steps)
        whole = isinstance(min_dominating, float) and min_dominating.is_integer()
        if (
            isinstance(min_dominating, bool)
            or not (isinstance(min_dominating, int) or whole)
            or min_dominating < 1
        ):
            raise ConfigurationError(
                f"pruner 'dominated': min_dominating must be an int >= 1, got {min_dominating!r}"
            )
        self.min_dominating = int(min_dominating)

    def count_dominating(self, point: Sequence[float], points: Sequence[Sequence[float]]) -> int:
        """How many of ``points`` dominate ``point`` (see :func:`dominates`)."""
        return sum(dominates(other, point) for other in points)

    def should_prune(self, step: int, value: float, history: Sequence[float]) -> bool:
        return sum(v > value for v in history) >= self.min_dominating

    def decide_point(
        self, step: int, point: Sequence[float], points: Sequence[Sequence[float]], finished: int
    ) -> int | None:
        """How many finished points dominate ``point`` when that stops the trial, else None.

        ``point`` is ``(value, *costs)``; no decision during the warm-up, on a NaN value or
        cost, or without points at the step.
        """
        if self.warming_up(step, finished) or not points:
            return None
        if not all(math.isfinite(x) for x in point):
            return None
        count = self.count_dominating(point, points)
        return count if count >= self.min_dominating else None

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "min_dominating": self.min_dominating}


PRUNERS: Registry[Any] = Registry("pruner")
"""Pruner classes by name; ``"none"`` (no pruning) is understood by :func:`make_pruner`."""
PRUNERS.register("median", MedianPruner)
PRUNERS.register("percentile", PercentilePruner)
PRUNERS.register("dominated", DominancePruner)


def make_pruner(spec: Any) -> Pruner | None:
    """A pruner from a name, ``"name:argument"``, a :meth:`Pruner.to_dict` dict or an object.

    ``None`` and ``"none"`` mean no pruning (None). ``"percentile:25"`` passes 25 as the
    pruner's first argument (its percentile), ``"dominated:3"`` its ``min_dominating``.

    Raises:
        ConfigurationError: an unknown name (with the valid ones), a bad argument or option.
    """
    if spec is None or isinstance(spec, Pruner):
        return spec
    if isinstance(spec, dict):
        options = dict(spec)
        name = options.pop("name", None)
        args: list[Any] = []
    elif isinstance(spec, str):
        name, _, arg = spec.partition(":")
        options = {}
        try:
            args = [float(arg)] if arg else []
        except ValueError:
            raise ConfigurationError(
                f"pruner {spec!r}: expected a number after ':', got {arg!r}"
            ) from None
    else:
        raise ConfigurationError(
            f"pruner: expected a name, a dict or a Pruner, got {type(spec).__name__}"
        )
    if name == "none" and not args and not options:
        return None
    if not isinstance(name, str) or name not in PRUNERS:
        raise ConfigurationError(
            PRUNERS.unknown_message(name).replace("Valid names: ", "Valid names: none, ")
        )
    try:
        return PRUNERS.make(name, *args, **options)
    except TypeError as exc:
        raise ConfigurationError(f"pruner {name!r}: {exc}") from None
