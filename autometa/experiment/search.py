"""``autometa.search``: one call that runs (or resumes) a search and returns its leaderboard."""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autometa.errors import StorageError
from autometa.experiment._loop import SearchLoop
from autometa.experiment._ray import RayExecutor
from autometa.experiment.budget import Budget, Usage
from autometa.experiment.executors import BaseExecutor, InlineExecutor, ProcessExecutor
from autometa.experiment.fidelity import Scheduler, SuccessiveHalving
from autometa.experiment.progress import ProgressBar
from autometa.experiment.storage import BaseStorage, get_storage
from autometa.experiment.trial import StudyInfo, TrialRecord
from autometa.meta import MAMLEvaluator
from autometa.meta.result import runtime_versions
from autometa.space import SearchSpace, load_space
from autometa.strategies import make_strategy

__all__ = ["search", "SearchResult", "load_result", "default_storage_path", "describe_evaluator"]

logger = logging.getLogger("autometa.experiment")

#: The trial budget used when ``budget`` is None.
DEFAULT_TRIALS = 20


@dataclass
class SearchResult:
    """What a search produced, read back from its storage.

    Attributes:
        best: the DONE trial with the highest score, or None when no trial succeeded.
        trials: every trial, best first (the leaderboard; unscored trials last, by number).
        study: what the study was started with.
        storage: the storage holding everything (weights: ``storage.load_weights(n)``).
        counts: number of trials per state name (``"DONE"``, ``"FAILED"``, ...).
        usage: trials, seconds and meta-iterations spent over all sessions.
        stop_reason: why the last session stopped.
    """

    best: TrialRecord | None
    trials: list[TrialRecord]
    study: StudyInfo
    storage: BaseStorage
    counts: dict[str, int] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    stop_reason: str = ""

    @property
    def meta_iterations(self) -> int:
        """Meta-iterations evaluated over the whole study (every multi-fidelity rung)."""
        return self.usage.meta_iterations


def load_result(
    storage: BaseStorage | str | os.PathLike[str], stop_reason: str = ""
) -> SearchResult:
    """Read a study (finished, running or interrupted) into a :class:`SearchResult`.

    Raises:
        StorageError: the storage holds no study.
    """
    store = get_storage(storage)
    study = store.get_study()
    if study is None:
        raise StorageError(f"{store} holds no study")
    trials = store.leaderboard()
    spent = sum(int(t.metrics.get("meta_iterations_spent") or 0) for t in trials)
    counts = {state.name: n for state, n in store.count_states().items()}
    usage = Usage(len(trials), store.elapsed_seconds(), spent)
    best = store.get_best_trial()
    return SearchResult(best, trials, study, store, counts, usage, stop_reason)


def default_storage_path(space_name: str, strategy: str, seed: int) -> Path:
    """``./runs/<space>-<strategy>-seed<seed>.db`` (names made file-safe)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{space_name}-{strategy}-seed{seed}")
    return Path("runs") / f"{safe}.db"


def describe_evaluator(evaluator: Any) -> dict[str, Any]:
    """``{"target": "module:Class", "config": {...}}``: the evaluator's public settings.

    Uses ``evaluator.to_config()`` when it exists, else the JSON-safe public attributes
    (objects with ``to_dict()`` are expanded). Stored with the study for the record.
    """
    cls = type(evaluator)
    target = f"{cls.__module__}:{cls.__qualname__}"
    if hasattr(evaluator, "to_config"):
        return {"target": target, "config": evaluator.to_config()}
    config: dict[str, Any] = {}
    for name, value in vars(evaluator).items() if hasattr(evaluator, "__dict__") else []:
        if name.startswith("_"):
            continue
        if hasattr(value, "to_dict"):
            value = value.to_dict()
        if _json_safe(value):
            config[name] = value
        else:
            config[name] = repr(value)
    return {"target": target, "config": config}


def rebuild_evaluator(description: dict[str, Any]) -> Any:
    """The evaluator a study recorded with :func:`describe_evaluator`, built again.

    Raises:
        StorageError: the evaluator's class cannot be imported or has no ``from_config``.
    """
    target = str(description.get("target", ""))
    module_name, _, qualname = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise StorageError(f"the study's evaluator {target!r} cannot be imported: {exc}") from exc
    if not hasattr(obj, "from_config"):
        raise StorageError(
            f"the study's evaluator {target!r} has no from_config(); resume it by calling "
            "autometa.search(...) again with the same arguments"
        )
    try:
        return obj.from_config(description.get("config") or {})
    except (TypeError, ValueError, KeyError) as exc:
        raise StorageError(f"the study's evaluator {target!r} cannot be rebuilt: {exc}") from exc


def _json_safe(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_json_safe(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_safe(v) for k, v in value.items())
    return False


def _strategy_spec(strategy: Any) -> tuple[str, dict[str, Any]]:
    """The name and options stored for a strategy given by name or as an instance."""
    if isinstance(strategy, str):
        return strategy, {}
    name = (
        getattr(strategy, "name", "") or f"{type(strategy).__module__}:{type(strategy).__name__}"
    )
    return name, dict(getattr(strategy, "options", {}) or {})


def _make_executor(
    executor: BaseExecutor | str | None, workers: int, trial_timeout: float | None
) -> BaseExecutor:
    if isinstance(executor, BaseExecutor):
        return executor
    if executor is None:
        executor = "inline" if workers == 0 else "process"
    if executor == "inline":
        return InlineExecutor(timeout=trial_timeout)
    if executor == "process":
        return ProcessExecutor(max(1, workers), timeout=trial_timeout)
    if executor == "ray":
        return RayExecutor(workers=max(1, workers), timeout=trial_timeout)
    raise ValueError(
        f"`executor` must be a BaseExecutor, 'process', 'inline', 'ray' or None, got {executor!r}"
    )


def search(
    space: Any,
    strategy: Any = "random",
    evaluator: Any = None,
    budget: Budget | None = None,
    storage: BaseStorage | str | os.PathLike[str] | None = None,
    workers: int = 1,
    executor: BaseExecutor | str | None = None,
    seed: int = 0,
    strategy_options: dict[str, Any] | None = None,
    fidelity: SuccessiveHalving | None = None,
    progress: bool | None = None,
    trial_timeout: float | None = None,
    settings: dict[str, Any] | None = None,
) -> SearchResult:
    """Run a search, or resume it when ``storage`` already holds the same study.

    Every trial is written to storage when it is created, starts and ends; the strategy's
    state is written with every ``ask`` and ``tell``. Calling ``search`` again with the same
    storage resumes: finished trials are kept and count toward the budget, trials that were
    running are re-queued and run first, and the strategy is restored from its stored state.

    Args:
        space: a :class:`~autometa.space.SearchSpace`, a space file path, or a dict.
        strategy: a registered strategy name (``"random"``, ``"ga"``, ...) or an instance
            built on the same space.
        evaluator: ``evaluator(graph, *, seed, device, meta_iterations=None) -> EvalResult``;
            default ``autometa.meta.MAMLEvaluator()``. Must be picklable for worker processes.
        budget: limits; default ``Budget(trials=20)``.
        storage: a SQLite path, a storage instance, ``":memory:"``; default
            ``./runs/<space>-<strategy>-seed<seed>.db``.
        workers: parallel evaluations; ``0`` evaluates in this process (debugging).
        executor: ``"process"`` (default), ``"inline"``, ``"ray"`` or an executor instance
            (e.g. ``RayExecutor(address=...)``); an instance ignores ``workers``.
        seed: the search seed (strategy seed; trial ``n`` is evaluated with
            ``trial_seed(seed, n)``). Same seed, same device, one worker: same search.
        strategy_options: keyword options for ``make_strategy`` when ``strategy`` is a name.
        fidelity: a :class:`SuccessiveHalving` or :class:`Hyperband` plan over meta-iterations,
            or None to evaluate every candidate fully.
        progress: show a progress bar; default: only on a terminal and not under CI.
        trial_timeout: seconds after which one evaluation is stopped and recorded as failed.
        settings: extra JSON-safe settings stored with the study (the CLI keeps its
            arguments here for ``autometa resume``).

    Returns:
        The :class:`SearchResult` read back from storage.

    Raises:
        StorageError: the storage holds a study for another space, strategy or seed.
        KeyboardInterrupt: on Ctrl-C, after running trials are stopped and re-queued and
            everything finished is safely stored; ``load_result(storage)`` reads it, and
            running the same call again resumes.
    """
    space_obj = space if isinstance(space, SearchSpace) else load_space(space)
    strategy_name, options = _strategy_spec(strategy)
    if isinstance(strategy, str):
        options = dict(strategy_options or {})
    elif strategy_options:
        raise TypeError("`strategy_options` only applies when `strategy` is a name")
    if evaluator is None:
        evaluator = MAMLEvaluator()
    budget = budget if budget is not None else Budget(trials=DEFAULT_TRIALS)
    if storage is None:
        storage = default_storage_path(space_obj.name, strategy_name, seed)
    store = get_storage(storage)
    run_settings = {
        "budget": budget.to_dict(),
        "workers": workers,
        "fidelity": fidelity.to_dict() if fidelity is not None else None,
        "trial_timeout": trial_timeout,
        **(settings or {}),
    }
    source = getattr(space_obj, "source", None)
    info = StudyInfo(
        space_name=space_obj.name,
        space_hash=space_obj.content_hash,
        space_spec=space_obj.to_dict(),
        space_source=str(source) if source else None,
        space_text=_read_text(source),
        strategy=strategy_name,
        strategy_options=options,
        evaluator=describe_evaluator(evaluator),
        seed=int(seed),
        settings=run_settings,
        versions=runtime_versions(),
        created=time.time(),
    )
    stored = store.open_study(info)
    resuming = bool(store.get_all_trials())
    _check_same_study(store, stored, info)
    if stored.settings != run_settings:
        store.update_study_settings(run_settings)
    strat = _build_strategy(strategy, space_obj, seed, options)
    state = store.get_strategy_state()
    if state is not None:
        strat.load_state_dict(state)
    if resuming:
        counts = {s.name: n for s, n in store.count_states().items() if n}
        logger.info("resuming %s: %s", store, counts)
    if fidelity is not None and stored.settings.get("fidelity") not in (None, fidelity.to_dict()):
        logger.warning("the study was started with fidelity %s", stored.settings.get("fidelity"))
    exe = _make_executor(executor, workers, trial_timeout)
    bar = None
    if ProgressBar.wanted(progress):
        bar = ProgressBar(budget)
    loop = SearchLoop(
        storage=store,
        strategy=strat,
        executor=exe,
        evaluator=evaluator,
        scheduler=Scheduler(fidelity),
        budget=budget,
        progress=bar,
    )
    reason = loop.run()
    return load_result(store, reason)


def _read_text(source: Any) -> str | None:
    if not source:
        return None
    try:
        return Path(source).read_text()
    except OSError:
        return None


def _check_same_study(store: BaseStorage, stored: StudyInfo, info: StudyInfo) -> None:
    """Refuse to resume a study with another strategy or seed (its state would not fit)."""
    for what in ("strategy", "seed"):
        if getattr(stored, what) != getattr(info, what):
            raise StorageError(
                f"{store}: the study was created with {what} {getattr(stored, what)!r}, not "
                f"{getattr(info, what)!r}; use another storage, or the same {what} to resume"
            )
    if stored.strategy_options != info.strategy_options:
        raise StorageError(
            f"{store}: the study was created with strategy options {stored.strategy_options!r}, "
            f"not {info.strategy_options!r}; use another storage, or the same options to resume"
        )
    if stored.evaluator.get("target") != info.evaluator.get("target"):
        logger.warning(
            "%s: the study was evaluated with %s, now with %s",
            store,
            stored.evaluator.get("target"),
            info.evaluator.get("target"),
        )


def _build_strategy(strategy: Any, space: Any, seed: int, options: dict[str, Any]) -> Any:
    if not isinstance(strategy, str):
        return strategy
    if ":" in strategy:  # a class path stored for an instance
        module, _, name = strategy.partition(":")
        cls = getattr(importlib.import_module(module), name)
        kwargs = {"seed": seed} if "seed" in inspect.signature(cls).parameters else {}
        return cls(space, **kwargs, **options)
    return make_strategy(strategy, space, seed=seed, **options)
