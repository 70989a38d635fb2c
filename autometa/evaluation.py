"""The evaluator contract: what the search calls, what it gets back, and what else it may use.

An evaluator is any callable ``evaluator(graph, *, seed, device=None) -> EvalResult``
(:class:`Evaluator`). Everything past that is optional: the search asks once, with
:func:`abilities`, which of the abilities below an evaluator offers, and uses those it has.

| ability | the evaluator offers | what the search does with it |
| --- | --- | --- |
| `MultiFidelity` | `__call__(..., meta_iterations=)` | runs fidelity plans (Hyperband, ASHA) |
| `Pruneable` | `__call__(..., reporter=)` | hands it a pruner's reporter |
| `Resumable` | `__call__(..., resume_from=, keep_training_state=)` | continues rungs |
| (batched) | `evaluate_seeds` or `evaluate_population` naming them | continues batched rungs |
| `SeedsEvaluator` | `evaluate_seeds(graph, seeds=)` | scores a candidate's seeds at once |
| `PopulationEvaluator` | `evaluate_population(pairs)` | scores a batch in one call |
| `MemoryEstimating` | `estimate_memory(graph, meta_iterations)` | fails what cannot fit |
| `SpaceChecking` | `check_space(space)` | refuses a bad space before a study |
| `SettingsResolving` | `config_for_graph(graph)` | compares hyperparameter sets |
| `ConfigExporting` | `to_config()` | stores the settings with the study |
| `Configured` | `meta_iterations` or `config.meta_iterations` | counts the cost |

This module sits below both the evaluators (``autometa.meta``) and the search
(``autometa.experiment``) and imports neither, nor torch: the search needs the record types
without the algorithm, and a custom evaluator can be written against this module alone.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "Abilities",
    "ConfigExporting",
    "Configured",
    "CostReporting",
    "EvalResult",
    "Evaluator",
    "MemoryEstimating",
    "MultiFidelity",
    "PopulationEvaluator",
    "Pruneable",
    "Reporter",
    "Resumable",
    "SeedsEvaluator",
    "SettingsResolving",
    "SpaceChecking",
    "abilities",
    "default_iterations",
    "failed_result",
]


@dataclass
class EvalResult:
    """What an evaluation of one candidate produced.

    Attributes:
        status: ``"ok"``, ``"failed"`` or ``"pruned"``; a failed result never carries a usable
            score; a pruned one (stopped early by its reporter, ``docs/pruning.md``) carries
            its last reported value.
        score: the value to maximise (post-adaptation return for MAML); NaN when failed.
        objectives: extra objective values for multi-objective search (e.g. ``params``).
        metrics: JSON-safe details: returns before/after adaptation, learning curve,
            parameter count, MACs, env steps, wall time, device, seed, versions.
        error: why the evaluation failed (exception text, ``"nan in loss"``, ...).
        state_dict: the meta-learned initial weights, for export; None when not kept.
        fidelity: how far the evaluation ran (meta-iterations), for multi-fidelity search.
        step_sizes: the meta-learned per-parameter inner step sizes of Meta-SGD, keyed like
            ``state_dict`` (one tensor of the parameter's shape each), for export and
            ``autometa.adapt``; None without Meta-SGD or when the weights are not kept.
        training_state: where meta-training stopped, as named CPU tensors, when asked for
            (``keep_training_state=True``), so that a later evaluation continues it
            (``autometa.meta.training_state``); None otherwise.
    """

    status: str
    score: float = math.nan
    objectives: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    state_dict: dict[str, Any] | None = None
    fidelity: int | None = None
    step_sizes: dict[str, Any] | None = None
    training_state: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """True when the evaluation finished with a finite score."""
        return self.status == "ok" and math.isfinite(self.score)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe view without the weights and step sizes (they are stored separately)."""
        return {
            "status": self.status,
            "score": self.score,
            "objectives": dict(self.objectives),
            "metrics": dict(self.metrics),
            "error": self.error,
            "fidelity": self.fidelity,
        }


def failed_result(error: str, **metrics: Any) -> EvalResult:
    """A failed :class:`EvalResult` with its reason."""
    return EvalResult(status="failed", error=error, metrics=dict(metrics))


@runtime_checkable
class Reporter(Protocol):
    """What an evaluation is handed to report intermediate values and to ask whether to stop."""

    def report(self, step: int, value: float) -> None:
        """Record ``value`` (higher is better) after ``step`` units of work (meta-iterations)."""

    def should_stop(self) -> bool:
        """True when the evaluation should end now (its trial is pruned)."""


@runtime_checkable
class Evaluator(Protocol):
    """What the search calls to score a candidate. Must not raise for a bad candidate.

    A bad candidate (one that does not build, NaN or Inf, out of memory) comes back as a
    failed :class:`EvalResult`; a setting no candidate can run with raises
    ``ConfigurationError``, which stops the search. The search sends it to worker processes,
    so it must be picklable there.
    """

    def __call__(
        self, graph: nx.DiGraph, *, seed: int, device: str | None = None
    ) -> EvalResult: ...


class MultiFidelity(Protocol):
    """An evaluator that runs a smaller budget when told: a fidelity plan (Hyperband, ASHA)
    calls it with ``meta_iterations=`` and refuses, before the study starts, one without."""

    def __call__(
        self,
        graph: nx.DiGraph,
        *,
        seed: int,
        device: str | None = None,
        meta_iterations: int | None = None,
    ) -> EvalResult: ...


class Pruneable(Protocol):
    """An evaluator that reports its learning curve: with a pruner set, the search passes a
    :class:`Reporter` and records the trial ``PRUNED`` once the reporter said stop
    (``docs/pruning.md``); without ``reporter=`` the evaluation runs unpruned."""

    def __call__(
        self,
        graph: nx.DiGraph,
        *,
        seed: int,
        device: str | None = None,
        reporter: Reporter | None = None,
    ) -> EvalResult: ...


class Resumable(Protocol):
    """An evaluator that continues where a previous call stopped: between fidelity rungs the
    search asks for the state reached (``keep_training_state=True``, returned in
    :attr:`EvalResult.training_state`) and hands it to the next rung (``resume_from=``), so a
    promoted trial pays only for the added meta-iterations. Each keyword is passed only when
    ``__call__`` names it (a ``**kwargs`` catch-all does not count)."""

    def __call__(
        self,
        graph: nx.DiGraph,
        *,
        seed: int,
        device: str | None = None,
        resume_from: dict[str, Any] | None = None,
        keep_training_state: bool = False,
    ) -> EvalResult: ...


class SeedsEvaluator(Protocol):
    """An evaluator that scores one candidate on several seeds in one call: the search uses
    it for ``seeds > 1`` (with ``reporters=``, one a seed, when it takes them and a pruner is
    set). When it also names ``resume_from`` (one state per seed) and
    ``keep_training_state``, the seeds' rungs continue; otherwise each rung starts over."""

    def evaluate_seeds(
        self, graph: nx.DiGraph, *, seeds: list[int], device: str | None = None
    ) -> Sequence[EvalResult]: ...


class PopulationEvaluator(Protocol):
    """An evaluator that scores a batch of ``(graph, seed)`` pairs in one call: the search
    sends a ``batch=N`` job's pairs through it (with ``reporters=``, one a pair, when it takes
    them and a pruner is set), one result a pair in order; without it, one call a trial. When
    it also names ``resume_from`` (one state or None per pair) and ``keep_training_state``,
    the members' rungs continue in the batch; otherwise a member that continues one runs
    alone through ``__call__``."""

    def evaluate_population(
        self, pairs: list[tuple[nx.DiGraph, int]], *, device: str | None = None
    ) -> Sequence[EvalResult]: ...


class MemoryEstimating(Protocol):
    """An evaluator that estimates the bytes an evaluation needs: the search fails a
    candidate over its memory limit (``max_memory``) before running it; an estimate that
    raises anything but ``ConfigurationError`` leaves the candidate to its evaluation."""

    def estimate_memory(self, graph: nx.DiGraph, meta_iterations: int | None = None) -> int: ...


class SpaceChecking(Protocol):
    """An evaluator that checks a whole space before a search: ``search`` calls it before
    the study is created, so a hyperparameter it cannot use fails at once (it raises
    ``ConfigurationError``), not in every trial."""

    def check_space(self, space: Any) -> None: ...


class SettingsResolving(Protocol):
    """An evaluator that fills a candidate's hyperparameters in with its defaults: the final
    stage compares two hyperparameter sets through it (``{}`` and the defaults written out
    are one setting) to skip an ablation cell that would repeat a run."""

    def config_for_graph(self, graph: nx.DiGraph, meta_iterations: int | None = None) -> Any: ...


class CostReporting(Protocol):
    """An evaluator that says a candidate's cost objectives (e.g. ``params``, ``macs``) from
    its graph, before evaluating it: a pruner that compares costs (``dominated``) sends them
    with the candidate's job, so the worker can decide alone; without it that pruner is
    refused."""

    def cost_objectives(self, graph: nx.DiGraph) -> dict[str, float]: ...


class ConfigExporting(Protocol):
    """An evaluator that describes its own settings: the study stores ``to_config()`` (its
    class's ``from_config`` rebuilds it on resume); without it, the JSON-safe public
    attributes are stored."""

    def to_config(self) -> dict[str, Any]: ...


class Configured(Protocol):
    """An evaluator that says how many meta-iterations it runs when not told, on itself or on
    its ``config``: the search counts a trial evaluated without ``meta_iterations=`` at that
    cost (budgets in meta-iterations, the top rung of a fidelity plan)."""

    meta_iterations: int


@dataclass(frozen=True)
class Abilities:
    """Which optional parts of the contract one evaluator offers, read once from the object.

    Attributes:
        fidelity: ``__call__`` takes ``meta_iterations=`` (:class:`MultiFidelity`); also True
            for a ``**kwargs`` catch-all, or when no signature can be read (it may try).
        reporter: ``__call__`` takes ``reporter=`` (or any keyword) (:class:`Pruneable`).
        resume_from: ``__call__`` names ``resume_from`` (:class:`Resumable`).
        keep_training_state: ``__call__`` names ``keep_training_state`` (:class:`Resumable`).
        seeds: it has ``evaluate_seeds`` (:class:`SeedsEvaluator`).
        seeds_reporters: its ``evaluate_seeds`` takes ``reporters=`` (or any keyword).
        population: it has ``evaluate_population`` (:class:`PopulationEvaluator`).
        population_reporters: its ``evaluate_population`` takes ``reporters=`` (or any
            keyword).
        seeds_states: its ``evaluate_seeds`` names ``resume_from`` and
            ``keep_training_state``.
        population_states: its ``evaluate_population`` names ``resume_from`` and
            ``keep_training_state``.
        memory_estimate: it has ``estimate_memory`` (:class:`MemoryEstimating`).
        space_check: it has a callable ``check_space`` (:class:`SpaceChecking`).
        settings: it has ``config_for_graph`` (:class:`SettingsResolving`).
        to_config: it has ``to_config`` (:class:`ConfigExporting`).
        costs: it has a callable ``cost_objectives`` (:class:`CostReporting`).
        default_iterations: the meta-iterations it runs when not told, if it says
            (:func:`default_iterations`).
    """

    fidelity: bool
    reporter: bool
    resume_from: bool
    keep_training_state: bool
    seeds: bool
    seeds_reporters: bool
    population: bool
    population_reporters: bool
    seeds_states: bool
    population_states: bool
    memory_estimate: bool
    space_check: bool
    settings: bool
    to_config: bool
    costs: bool
    default_iterations: int | None


def _parameters(fn: Any) -> list[inspect.Parameter] | None:
    """The parameters of ``fn``, or None when it has no signature to read."""
    try:
        return list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None


def _takes(parameters: list[inspect.Parameter] | None, name: str) -> bool:
    """Whether a function with ``parameters`` takes keyword ``name`` (or any keyword)."""
    return parameters is not None and any(
        p.name == name or p.kind is p.VAR_KEYWORD for p in parameters
    )


def _names_states(fn: Any) -> bool:
    """Whether ``fn`` names both ``resume_from`` and ``keep_training_state``."""
    names = {p.name for p in _parameters(fn) or []}
    return {"resume_from", "keep_training_state"} <= names


def default_iterations(evaluator: Any) -> int | None:
    """The meta-iterations an evaluator runs when not told (for cost accounting), if known:
    an int ``meta_iterations`` on the evaluator or else on its ``config``."""
    for owner in (evaluator, getattr(evaluator, "config", None)):
        value = getattr(owner, "meta_iterations", None)
        if isinstance(value, int):
            return value
    return None


def abilities(evaluator: Any) -> Abilities:
    """Which optional abilities ``evaluator`` offers (see :class:`Abilities`).

    Read from the object as it is: attributes by ``hasattr`` (so a wrapper that forwards
    attributes offers what it wraps) and keywords from the signatures.
    """
    call = _parameters(evaluator)
    names = {p.name for p in call or []}
    seeds = hasattr(evaluator, "evaluate_seeds")
    population = hasattr(evaluator, "evaluate_population")
    return Abilities(
        fidelity=call is None or _takes(call, "meta_iterations"),
        reporter=_takes(call, "reporter"),
        resume_from="resume_from" in names,
        keep_training_state="keep_training_state" in names,
        seeds=seeds,
        seeds_reporters=seeds and _takes(_parameters(evaluator.evaluate_seeds), "reporters"),
        population=population,
        population_reporters=population
        and _takes(_parameters(evaluator.evaluate_population), "reporters"),
        seeds_states=seeds and _names_states(evaluator.evaluate_seeds),
        population_states=population and _names_states(evaluator.evaluate_population),
        memory_estimate=getattr(evaluator, "estimate_memory", None) is not None,
        space_check=callable(getattr(evaluator, "check_space", None)),
        settings=getattr(evaluator, "config_for_graph", None) is not None,
        to_config=hasattr(evaluator, "to_config"),
        costs=callable(getattr(evaluator, "cost_objectives", None)),
        default_iterations=default_iterations(evaluator),
    )
