"""The three steps of :func:`autometa.search`: build the study, open it, run it.

:func:`build_study` checks the settings and builds the strategy, evaluator and executor
(started, so a script without a main guard stops here) before anything is stored;
:func:`open_study` creates or resumes the study in storage, checks it against the stored
one, claims it and returns the search loop; :func:`run_study` runs the loop and reads the
result back.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autometa.errors import ConfigurationError, SearchFailedError
from autometa.evaluation import Evaluator
from autometa.experiment._callbacks import Callback, CallbackList
from autometa.experiment._checks import (
    check_arguments,
    check_before_claiming,
    check_claimed,
    check_evaluator,
    check_pruner,
    start_over,
    wrap_strategy_error,
)
from autometa.experiment._failures import no_success
from autometa.experiment._final import Final
from autometa.experiment._lease import Lease
from autometa.experiment._loop import SearchLoop
from autometa.experiment._memory import AUTO
from autometa.experiment._references import build_strategy, describe_evaluator, strategy_spec
from autometa.experiment._result import SearchResult, load_result
from autometa.experiment.budget import Budget
from autometa.experiment.executors import BaseExecutor, executor_name, make_executor
from autometa.experiment.fidelity import Scheduler, SuccessiveHalving
from autometa.experiment.progress import ProgressBar
from autometa.experiment.pruners import Pruner, make_pruner
from autometa.experiment.storage import BaseStorage, get_storage
from autometa.experiment.trial import StudyInfo
from autometa.meta import MAMLEvaluator
from autometa.meta.result import runtime_versions
from autometa.space import SearchSpace, load_space

__all__ = [
    "DEFAULT_TRIALS",
    "BuiltStudy",
    "build_study",
    "default_storage_path",
    "open_study",
    "run_study",
]

logger = logging.getLogger("autometa.experiment")

#: The trial budget used when ``budget`` is None.
DEFAULT_TRIALS = 20


def default_storage_path(space_name: str, strategy: str, seed: int) -> Path:
    """``./runs/<space>-<strategy>-seed<seed>.db`` (names made file-safe)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{space_name}-{strategy}-seed{seed}")
    return Path("runs") / f"{safe}.db"


@dataclass
class BuiltStudy:
    """What :func:`build_study` checked and built; nothing is stored yet.

    The executor is started: whoever holds a ``BuiltStudy`` shuts it down on failure.
    """

    space: SearchSpace
    strategy: Any
    strategy_name: str
    strategy_options: dict[str, Any]
    strategy_registered: bool
    evaluator: Evaluator
    budget: Budget
    final: Final | None
    pruner: Pruner | None
    fidelity: SuccessiveHalving | None
    storage: BaseStorage | str | os.PathLike[str]
    executor: BaseExecutor
    executor_name: str | None
    max_memory: int | None
    callbacks: CallbackList


def build_study(
    *,
    space: Any,
    strategy: Any,
    evaluator: Evaluator | None,
    budget: Budget | None,
    storage: Any,
    workers: int,
    executor: BaseExecutor | str | None,
    seed: int,
    strategy_options: dict[str, Any] | None,
    fidelity: SuccessiveHalving | None,
    trial_timeout: float | None,
    seeds: int,
    batch: int,
    final: Final | bool | None,
    callbacks: Sequence[Callback] | None,
    max_memory: int | str | None,
    pruner: Pruner | str | None,
) -> BuiltStudy:
    """Check :func:`autometa.search`'s settings and build what the study runs with.

    Every check that can fail runs here, before the study is touched; the executor is started
    last (workers up, the main guard checked).

    Raises:
        ConfigurationError: a setting of the wrong type or range, or one that cannot work.
    """
    check_arguments(
        budget=budget, seed=seed, workers=workers, trial_timeout=trial_timeout, seeds=seeds,
        batch=batch,
    )  # fmt: skip
    space_obj = space if isinstance(space, SearchSpace) else load_space(space)
    strategy_name, options, strategy_registered = strategy_spec(strategy)
    if isinstance(strategy, str):
        options = dict(strategy_options or {})
    elif strategy_options:
        raise ConfigurationError("`strategy_options` only applies when `strategy` is a name")
    if evaluator is None:
        evaluator = MAMLEvaluator()
    budget = budget if budget is not None else Budget(trials=DEFAULT_TRIALS)
    watchers = CallbackList(callbacks)
    plan = _final_plan(final, space_obj)
    try:
        strat = build_strategy(strategy, space_obj, seed, options)
    except (ImportError, AttributeError, LookupError, TypeError, ValueError) as exc:
        raise wrap_strategy_error(strategy, exc) from exc
    check_evaluator(evaluator, space_obj, fidelity)
    prune = make_pruner(pruner)
    if prune is not None and fidelity is not None:
        raise ConfigurationError(
            "`pruner` and `fidelity` cannot be combined: choose learning-curve pruning or "
            "multi-fidelity rungs"
        )
    check_pruner(prune, strat, strategy_name, evaluator)
    if storage is None:
        storage = default_storage_path(space_obj.name, strategy_name, seed)
    if max_memory != AUTO and not (
        max_memory is None or isinstance(max_memory, int) and not isinstance(max_memory, bool)
        and max_memory >= 1
    ):  # fmt: skip
        raise ConfigurationError(
            f"`max_memory` must be a number of bytes >= 1, 'auto' or None, got {max_memory!r}"
        )
    exe, exe_name = _make_executor(executor, workers, trial_timeout)
    exe.start(evaluator)  # workers up (and the main guard checked) before the study is touched
    return BuiltStudy(
        space_obj, strat, strategy_name, options, strategy_registered, evaluator, budget, plan,
        prune, fidelity, storage, exe, exe_name,
        exe.memory_limit() if max_memory == AUTO else max_memory, watchers,
    )  # fmt: skip


def _final_plan(final: Final | bool | None, space: SearchSpace) -> Final | None:
    """The final stage asked for, with the space's baselines added."""
    plan = Final() if final is True else (final or None)
    if plan is not None and not isinstance(plan, Final):
        raise ConfigurationError(f"`final` must be a Final, True, False or None, got {final!r}")
    if plan is not None and getattr(space, "baselines", None):
        plan = Final(
            plan.top,
            plan.seeds,
            (*space.baselines, *plan.baselines),
            plan.ablation,
            plan.confirm_seeds,
        )
    return plan


def _make_executor(
    executor: BaseExecutor | str | None, workers: int, trial_timeout: float | None
) -> tuple[BaseExecutor, str | None]:
    """The executor to run with, and the name the study stores for ``autometa resume``:
    the registered name of the one asked for, or None for the default (which follows
    ``workers``) and for an instance of an unregistered class."""
    if isinstance(executor, BaseExecutor):
        return executor, executor_name(executor)
    if executor is not None and not isinstance(executor, str):
        raise ConfigurationError(
            f"`executor` must be a BaseExecutor, a registered executor name or None, got "
            f"{type(executor).__name__}"
        )
    try:
        return make_executor(executor, workers=workers, trial_timeout=trial_timeout), executor
    except ConfigurationError as exc:
        raise ConfigurationError(f"`executor`: {exc}") from None


def open_study(
    built: BuiltStudy,
    *,
    strategy: Any,
    seed: int,
    workers: int,
    trial_timeout: float | None,
    seeds: int,
    batch: int,
    settings: dict[str, Any] | None,
    imports: Sequence[str] | None,
    fresh: bool,
    take_over: bool,
    allow_changes: bool,
    progress: bool | ProgressBar | None,
) -> SearchLoop:
    """Create or resume the study in storage, claim it, and return the loop that runs it.

    A resumed study must be the same study (space, strategy, seed) scored the same way
    (unless ``allow_changes``); its strategy is restored from the stored state. The executor
    is shut down (and the claim released) when anything here fails.

    Raises:
        StorageError: the storage holds another study, or one scored otherwise.
        StudyInUseError: another live session holds the study.
    """
    try:
        if fresh:
            start_over(built.storage, take_over)
        store = get_storage(built.storage)
        info = _study_info(built, strategy, seed, workers, trial_timeout, seeds, batch,
                           settings, imports)  # fmt: skip
        restored = check_before_claiming(store, info, built.strategy, allow_changes, take_over)
        lease = Lease(store, take_over=take_over)  # refused while another search runs
    except BaseException:
        built.executor.shutdown()
        raise
    try:
        check_claimed(store, info, allow_changes, restored)
        if isinstance(progress, ProgressBar):
            bar = progress
        else:
            bar = ProgressBar(built.budget) if ProgressBar.wanted(progress) else None
        return SearchLoop(
            storage=store,
            strategy=built.strategy,
            executor=built.executor,
            evaluator=built.evaluator,
            scheduler=Scheduler(built.fidelity),
            budget=built.budget,
            progress=bar,
            lease=lease,
            executor_started=True,
            seeds=seeds,
            batch=batch,
            pruner=built.pruner,
            final=built.final,
            search_seed=int(seed),
            callbacks=built.callbacks,
            max_memory=built.max_memory,
        )
    except BaseException:
        built.executor.shutdown()
        lease.release()
        raise


def _study_info(
    built: BuiltStudy,
    strategy: Any,
    seed: int,
    workers: int,
    trial_timeout: float | None,
    seeds: int,
    batch: int,
    settings: dict[str, Any] | None,
    imports: Sequence[str] | None,
) -> StudyInfo:
    """The study record this search creates, or compares with the stored one."""
    described = describe_evaluator(built.evaluator)
    unregistered = [] if built.strategy_registered else ["strategy"]
    if described["name"] is None:
        unregistered.insert(0, "evaluator")
    if imports is None:
        imports = _defining_modules(
            built.evaluator, strategy, described["name"], built.strategy_registered
        )
    run_settings = {
        "budget": built.budget.to_dict(),
        "workers": workers,
        "executor": built.executor_name,
        "fidelity": built.fidelity.to_dict() if built.fidelity is not None else None,
        "trial_timeout": trial_timeout,
        "evaluator": described,
        "seeds": seeds,
        "batch": batch,
        "final": built.final.to_dict() if built.final is not None else None,
        "pruner": built.pruner.to_dict() if built.pruner is not None else None,
        **(settings or {}),
    }
    space = built.space
    source = getattr(space, "source", None)
    return StudyInfo(
        space_name=space.name,
        space_hash=space.content_hash,
        space_spec=space.to_dict(),
        space_source=str(source) if source else None,
        space_text=_read_text(source),
        strategy=built.strategy_name,
        strategy_options=built.strategy_options,
        evaluator=described,
        seed=int(seed),
        settings=run_settings,
        versions=runtime_versions(),
        created=time.time(),
        imports=list(imports),
        unregistered=unregistered,
    )


def run_study(loop: SearchLoop) -> SearchResult:
    """Run the loop (its claim is released when it ends) and read the study back.

    Raises:
        SearchFailedError: trials failed and none succeeded.
    """
    try:
        reason = loop.run()
    finally:
        if loop.lease is not None:
            loop.lease.release()
    result = load_result(loop.storage, reason)
    loop.callbacks.search_end(result)
    failed = no_success(result.trials)
    if failed is not None:
        raise SearchFailedError(f"{loop.storage}: {failed}", result)
    return result


def _defining_modules(
    evaluator: Evaluator, strategy: Any, evaluator_name: str | None, strategy_registered: bool
) -> list[str]:
    """Modules outside autometa that define a registered evaluator or strategy given as an
    object: what ``--import`` needs to register them again."""
    found = []
    if evaluator_name is not None:
        found.append(type(evaluator).__module__)
    if strategy_registered and not isinstance(strategy, str):
        found.append(type(strategy).__module__)
    return [m for m in dict.fromkeys(found) if m != "__main__" and m.split(".")[0] != "autometa"]


def _read_text(source: Any) -> str | None:
    if not source:
        return None
    try:
        return Path(source).read_text()
    except OSError:
        return None
