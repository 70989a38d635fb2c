"""Pruning decisions where the evaluation runs: the hook, its seeds, and what it records.

The driver sends every job a :class:`PruneContext`: the pruner and, for each report step, the
sorted values the finished trials reported there (:func:`prune_context`, computed from the
trials in storage when the job is submitted). The worker decides locally with a
:class:`PruneHook`, so the process and Ray executors need no channel back to the driver; the
price is staleness: a decision uses the trials finished when the job was submitted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from autometa.evaluation import EvalResult
from autometa.experiment.pruners import Pruner
from autometa.experiment.trial import TrialRecord, TrialState

__all__ = [
    "INTERMEDIATE",
    "PruneContext",
    "PruneHook",
    "SeedGroup",
    "JobReporting",
    "intermediate_values",
    "prune_context",
    "pruned_result",
]

INTERMEDIATE = "intermediate_values"
"""The metrics key of a trial's reported values: ``[[step, value], ...]`` (the mean over its
seeds at each step)."""


@dataclass(frozen=True)
class PruneContext:
    """What a worker needs to decide alone: the pruner, the finished trials' values at each
    report step (sorted ascending) and how many trials had finished."""

    pruner: Pruner
    history: dict[int, tuple[float, ...]] = field(default_factory=dict)
    finished: int = 0


def intermediate_values(trial: TrialRecord) -> list[tuple[int, float]]:
    """The ``(step, value)`` pairs a trial reported, from its stored metrics; entries that are
    not a positive int step with a finite value are skipped (storage is untrusted data)."""
    raw = trial.metrics.get(INTERMEDIATE) if isinstance(trial.metrics, dict) else None
    out = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, list | tuple) or len(item) != 2:
            continue
        step, value = item
        if (
            isinstance(step, int) and not isinstance(step, bool) and step > 0
            and isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value)
        ):  # fmt: skip
            out.append((step, float(value)))
    return out


def prune_context(pruner: Pruner, trials: Iterable[TrialRecord]) -> PruneContext:
    """The context for jobs submitted now: the values of every evaluated ``DONE`` trial
    (copies of another trial's score left out) at each step they reported."""
    history: dict[int, list[float]] = {}
    finished = 0
    for trial in trials:
        if trial.state != TrialState.DONE or trial.duplicate_of is not None:
            continue
        values = intermediate_values(trial)
        finished += bool(values)
        for step, value in values:
            history.setdefault(step, []).append(value)
    return PruneContext(pruner, {s: tuple(sorted(v)) for s, v in history.items()}, finished)


class PruneHook:
    """The reporter of one trial: records its values and decides with its context.

    ``report(step, value)`` records; ``should_stop()`` asks the pruner about the latest step
    with the trial's best value so far. Once it says stop it keeps saying so, and
    :attr:`step`, :attr:`value` and :attr:`threshold` say what decided it.
    """

    def __init__(self, context: PruneContext) -> None:
        self.context = context
        self.values: dict[int, float] = {}
        self.stopped = False
        self.step: int | None = None
        self.value: float | None = None
        self.threshold: float | None = None

    def report(self, step: int, value: float) -> None:
        """Record ``value`` at ``step`` (a later report at the same step replaces it)."""
        if not self.stopped:
            self.values[int(step)] = float(value)

    def should_stop(self) -> bool:
        """Whether the trial should stop now (decided on its latest reported step)."""
        if self.stopped or not self.values:
            return self.stopped
        step = max(self.values)
        finite = [v for s, v in self.values.items() if s <= step and math.isfinite(v)]
        best = max(finite, default=math.nan)
        history = self.context.history.get(step, ())
        pruner = self.context.pruner
        if pruner.decide(step, best, history, self.context.finished):
            self.stopped, self.step, self.value = True, step, best
            self.threshold = pruner.threshold(history)
        return self.stopped


class SeedGroup:
    """Reporters for the seeds of one candidate, deciding on their mean at each step.

    Seed ``k``'s reporter (:meth:`reporter`) records its value; when it is asked whether to
    stop, the mean over the seeds that reported that step so far is reported to the
    candidate's :class:`PruneHook`, which decides for every seed. In one batched program all
    seeds report a step before any is asked, so the mean is over all of them; evaluated one
    after another, the first seed decides alone.
    """

    def __init__(self, hook: PruneHook, count: int) -> None:
        self.hook = hook
        self.values: dict[int, dict[int, float]] = {}
        self._last: dict[int, int] = {}

    def reporter(self, index: int) -> _SeedReporter:
        """The reporter of seed number ``index``."""
        return _SeedReporter(self, index)

    def means(self) -> dict[int, float]:
        """The mean over the seeds that reported, at each step."""
        return {s: sum(v.values()) / len(v) for s, v in sorted(self.values.items())}

    def _stop(self, index: int) -> bool:
        step = self._last.get(index)
        if step is not None and not self.hook.stopped:
            self.hook.report(step, self.means()[step])
        return self.hook.should_stop()


class _SeedReporter:
    def __init__(self, group: SeedGroup, index: int) -> None:
        self.group, self.index = group, index

    def report(self, step: int, value: float) -> None:
        self.group.values.setdefault(int(step), {})[self.index] = float(value)
        self.group._last[self.index] = int(step)

    def should_stop(self) -> bool:
        return self.group._stop(self.index)


def pruned_result(hook: PruneHook, results: list[Any], curve: dict[int, float]) -> EvalResult:
    """The result of a candidate its hook stopped: scored by its last reported value.

    ``metrics`` keeps the first seed's metrics (its curve so far) and adds ``pruned_step``,
    ``pruned_value`` (the best value so far that the pruner compared), ``pruned_threshold``
    (the value it had to reach, when the rule has one) and ``curve``, the values reported
    up to the step (the mean over the seeds at each step).
    """
    first = next((r for r in results if isinstance(r, EvalResult)), None)
    metrics = dict(first.metrics) if first is not None else {}
    metrics.pop("traceback", None)
    step = int(hook.step or 0)
    kept = {s: v for s, v in curve.items() if s <= step}
    metrics.update(
        pruned_step=step,
        pruned_value=hook.value,
        pruned_threshold=hook.threshold,
        **{INTERMEDIATE: [[s, v] for s, v in sorted(kept.items())]},
    )
    return EvalResult(
        status="pruned",
        score=kept.get(step, math.nan),
        objectives=dict(first.objectives) if first is not None else {},
        metrics=metrics,
        fidelity=step,
    )


class JobReporting:
    """The reporters of one job's candidate (one per seed) and what they leave in its result.

    Args:
        context: the job's :class:`PruneContext`.
        seeds: how many seeds the candidate is evaluated on.
    """

    def __init__(self, context: PruneContext, seeds: int) -> None:
        self.hook = PruneHook(context)
        self.group = SeedGroup(self.hook, seeds) if seeds > 1 else None
        self.count = seeds

    def reporters(self) -> list[Any]:
        """One reporter per seed, in the order of the seeds."""
        if self.group is None:
            return [self.hook]
        return [self.group.reporter(k) for k in range(self.count)]

    def curve(self) -> dict[int, float]:
        """The reported values by step (the mean over the seeds that reported each step)."""
        return self.group.means() if self.group is not None else dict(self.hook.values)

    def finish(self, results: list[Any], combined: Any) -> Any:
        """The pruned result when the hook stopped the candidate; else ``combined`` with the
        reported values in its metrics when it is a finished, successful result."""
        if self.hook.stopped:
            return pruned_result(self.hook, results, self.curve())
        if isinstance(combined, EvalResult) and combined.ok:
            combined.metrics[INTERMEDIATE] = [[s, v] for s, v in sorted(self.curve().items())]
        return combined
