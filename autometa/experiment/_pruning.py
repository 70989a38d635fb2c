"""Pruning decisions where the evaluation runs: the hook, its seeds, and what it records.

The driver sends every job a :class:`PruneContext`: the pruner and, for each report step, the
sorted values the finished trials reported there (:func:`prune_context`, computed from the
trials in storage when the job is submitted). The worker decides locally with a
:class:`PruneHook`, so the process and Ray executors need no channel back to the driver; the
price is staleness: a decision uses the trials finished when the job was submitted.

A pruner that compares cost objectives too (:attr:`Pruner.uses_costs`, the ``dominated``
rule) gets, per step, the finished trials' ``(value, *costs)`` points, and each job carries
its own candidate's costs, computed by the driver from the graph before the job is sent
(``evaluator.cost_objectives(graph)``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, cast

from autometa.errors import ConfigurationError
from autometa.evaluation import CostReporting, EvalResult, Evaluator
from autometa.experiment.pruners import Pruner
from autometa.experiment.trial import TrialRecord, TrialState
from autometa.graph import from_json

__all__ = [
    "INTERMEDIATE",
    "PruneContext",
    "PruneHook",
    "SeedGroup",
    "JobReporting",
    "cost_names",
    "costs_of",
    "intermediate_values",
    "job_contexts",
    "prune_context",
    "pruned_result",
]

INTERMEDIATE = "intermediate_values"
"""The metrics key of a trial's reported values: ``[[step, value], ...]`` (the mean over its
seeds at each step)."""


@dataclass(frozen=True)
class PruneContext:
    """What a worker needs to decide alone: the pruner, the finished trials' values at each
    report step (sorted ascending) and how many trials had finished.

    For a pruner that :attr:`~Pruner.uses_costs`, also ``points``: the finished trials'
    ``(value, *costs)`` at each step, the costs named by ``cost_names``; and ``costs``: the
    job's own candidate's costs in that order (None when unknown: then it is not pruned).
    """

    pruner: Pruner
    history: dict[int, tuple[float, ...]] = field(default_factory=dict)
    finished: int = 0
    points: dict[int, tuple[tuple[float, ...], ...]] = field(default_factory=dict)
    cost_names: tuple[str, ...] = ()
    costs: tuple[float, ...] | None = None


def cost_names(objectives: Mapping[str, object], n_objectives: int) -> tuple[str, ...]:
    """The objectives a strategy of ``n_objectives`` minimises besides the score, as the
    search tells them: ``params`` for two objectives when there is one, else the first
    ``n_objectives - 1`` of ``objectives`` (empty when there are too few)."""
    if n_objectives < 2:
        return ()
    if n_objectives == 2 and "params" in objectives:
        return ("params",)
    names = tuple(objectives)[: n_objectives - 1]
    return names if len(names) == n_objectives - 1 else ()


def costs_of(objectives: object, names: tuple[str, ...]) -> tuple[float, ...] | None:
    """The values of ``names`` in ``objectives`` (a trial's stored objectives: untrusted),
    or None when one is missing or not a finite number."""
    if not names or not isinstance(objectives, Mapping):
        return None
    out = []
    for name in names:
        value = objectives.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if not math.isfinite(value):
            return None
        out.append(float(value))
    return tuple(out)


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


def prune_context(
    pruner: Pruner, trials: Iterable[TrialRecord], names: tuple[str, ...] = ()
) -> PruneContext:
    """The context for jobs submitted now: the values of every evaluated ``DONE`` trial
    (copies of another trial's score left out) at each step they reported.

    With cost ``names`` and a pruner that uses costs, the points of the finished trials whose
    stored objectives hold every cost too (the others still set ``history``)."""
    history: dict[int, list[float]] = {}
    points: dict[int, list[tuple[float, ...]]] = {}
    finished = 0
    with_costs = pruner.uses_costs and bool(names)
    for trial in trials:
        if trial.state != TrialState.DONE or trial.duplicate_of is not None:
            continue
        values = intermediate_values(trial)
        finished += bool(values)
        costs = costs_of(trial.objectives, names) if with_costs else None
        for step, value in values:
            history.setdefault(step, []).append(value)
            if costs is not None:
                points.setdefault(step, []).append((value, *costs))
    return PruneContext(
        pruner,
        {s: tuple(sorted(v)) for s, v in history.items()},
        finished,
        {s: tuple(v) for s, v in points.items()},
        names if with_costs else (),
    )


def _known_costs(evaluator: Evaluator, graph_json: dict[str, Any]) -> dict[str, Any] | None:
    """``evaluator.cost_objectives(graph)``, or None when the candidate's cannot be computed
    (a bad graph: its evaluation says what is wrong)."""
    try:
        known = cast(CostReporting, evaluator).cost_objectives(from_json(graph_json))
    except ConfigurationError:
        raise
    except Exception:  # noqa: BLE001 - a bad candidate is failed by its evaluation
        return None
    return known if isinstance(known, Mapping) else None


def job_contexts(
    pruner: Pruner,
    trials: Iterable[TrialRecord],
    graphs: list[dict[str, Any]],
    evaluator: Evaluator,
    n_objectives: int,
) -> list[PruneContext]:
    """One context per job about to be submitted (``graphs``: their candidates' node-link
    JSON), from the finished ``trials``.

    A pruner that uses costs gets the candidates' costs from ``evaluator.cost_objectives``,
    for the objectives a strategy of ``n_objectives`` minimises (:func:`cost_names`); the
    other pruners get one shared context, as before.

    Raises:
        ConfigurationError: from ``cost_objectives``, for settings no candidate can run with.
    """
    if not pruner.uses_costs:
        return [prune_context(pruner, trials)] * len(graphs)
    known = [_known_costs(evaluator, g) for g in graphs]
    names = next((cost_names(k, n_objectives) for k in known if k), ())
    context = prune_context(pruner, trials, names)
    return [replace(context, costs=costs_of(k, names) if k else None) for k in known]


class PruneHook:
    """The reporter of one trial: records its values and decides with its context.

    ``report(step, value)`` records; ``should_stop()`` asks the pruner about the latest step
    with the trial's best value so far (and, for a pruner that uses costs, the candidate's
    costs). Once it says stop it keeps saying so, and :attr:`step`, :attr:`value` and
    :attr:`threshold` (or :attr:`dominated_by`, the finished trials that dominated it) say
    what decided it.
    """

    def __init__(self, context: PruneContext) -> None:
        self.context = context
        self.values: dict[int, float] = {}
        self.stopped = False
        self.step: int | None = None
        self.value: float | None = None
        self.threshold: float | None = None
        self.dominated_by: int | None = None

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
        context, pruner = self.context, self.context.pruner
        if pruner.uses_costs:
            if context.costs is None or not context.cost_names:
                return False  # costs unknown: the rule cannot compare this candidate
            points = context.points.get(step, ())
            count = pruner.decide_point(step, (best, *context.costs), points, context.finished)
            if count is not None:
                self.stopped, self.step, self.value = True, step, best
                self.dominated_by = count
            return self.stopped
        history = context.history.get(step, ())
        if pruner.decide(step, best, history, context.finished):
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
    (the value it had to reach, when the rule has one; None for the dominance rule, which
    adds ``pruned_dominated_by``, how many finished trials dominated it, and
    ``pruned_costs``, the costs it was compared with) and ``curve``, the values reported up
    to the step (the mean over the seeds at each step).
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
        **_dominance(hook),
        **{INTERMEDIATE: [[s, v] for s, v in sorted(kept.items())]},
    )
    return EvalResult(
        status="pruned",
        score=kept.get(step, math.nan),
        objectives=dict(first.objectives) if first is not None else {},
        metrics=metrics,
        fidelity=step,
    )


def _dominance(hook: PruneHook) -> dict[str, Any]:
    """What the dominance rule adds to a pruned trial's metrics (nothing for other rules)."""
    if hook.dominated_by is None or hook.context.costs is None:
        return {}
    names, costs = hook.context.cost_names, hook.context.costs
    return {"pruned_dominated_by": hook.dominated_by, "pruned_costs": dict(zip(names, costs))}


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
