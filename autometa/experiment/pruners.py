"""Pruners: stop a trial whose learning curve falls behind the finished trials' curves.

A pruner compares a running trial's intermediate value at a report step with the values the
finished (``DONE``) trials reported at the same step, and says whether to stop it. The rules
follow Optuna's ``MedianPruner`` and ``PercentilePruner`` (Akiba et al., 2019, see
``docs/references.md``): the running trial's best value so far is compared with a percentile
of the finished trials' values at the step, and no decision is taken before
``n_startup_trials`` trials have finished or before ``n_warmup_steps`` steps.

Pruners are chosen by name (``"median"``, ``"percentile:25"``, ``"none"``) through
:data:`PRUNERS` and :func:`make_pruner`, or passed as objects; see ``docs/pruning.md``.
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
    "MedianPruner",
    "PercentilePruner",
    "Pruner",
    "make_pruner",
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
        if step < self.n_warmup_steps or finished < self.n_startup_trials or not history:
            return False
        if not math.isfinite(value):
            return False
        return bool(self.should_prune(step, value, history))

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


PRUNERS: Registry[Any] = Registry("pruner")
"""Pruner classes by name; ``"none"`` (no pruning) is understood by :func:`make_pruner`."""
PRUNERS.register("median", MedianPruner)
PRUNERS.register("percentile", PercentilePruner)


def make_pruner(spec: Any) -> Pruner | None:
    """A pruner from a name, ``"name:argument"``, a :meth:`Pruner.to_dict` dict or an object.

    ``None`` and ``"none"`` mean no pruning (None). ``"percentile:25"`` passes 25 as the
    pruner's first argument (its percentile).

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
