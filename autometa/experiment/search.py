"""``autometa.search``: one call that runs (or resumes) a search and returns its leaderboard."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autometa.errors import ConfigurationError, SearchFailedError, StorageError
from autometa.evaluation import Evaluator
from autometa.experiment._callbacks import Callback, CallbackList
from autometa.experiment._checks import (
    check_arguments,
    check_evaluator,
    check_pruner,
    check_same_scoring,
    check_same_study,
    current_evaluator,
    start_over,
    wrap_strategy_error,
)
from autometa.experiment._failures import no_success
from autometa.experiment._final import Final
from autometa.experiment._lease import Lease
from autometa.experiment._loop import SearchLoop
from autometa.experiment._memory import AUTO
from autometa.experiment._references import (
    build_strategy,
    describe_evaluator,
    rebuild_evaluator,
    strategy_spec,
)
from autometa.experiment._result import SearchResult, load_result
from autometa.experiment._startup import exit_if_reimporting_main
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
    "SearchResult",
    "current_evaluator",
    "default_storage_path",
    "describe_evaluator",
    "load_result",
    "rebuild_evaluator",
    "search",
]

logger = logging.getLogger("autometa.experiment")

#: The trial budget used when ``budget`` is None.
DEFAULT_TRIALS = 20


def default_storage_path(space_name: str, strategy: str, seed: int) -> Path:
    """``./runs/<space>-<strategy>-seed<seed>.db`` (names made file-safe)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{space_name}-{strategy}-seed{seed}")
    return Path("runs") / f"{safe}.db"


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


def search(
    space: Any,
    strategy: Any = "random",
    evaluator: Evaluator | None = None,
    budget: Budget | None = None,
    storage: BaseStorage | str | os.PathLike[str] | None = None,
    workers: int = 1,
    executor: BaseExecutor | str | None = None,
    seed: int = 0,
    strategy_options: dict[str, Any] | None = None,
    fidelity: SuccessiveHalving | None = None,
    progress: bool | ProgressBar | None = None,
    trial_timeout: float | None = None,
    settings: dict[str, Any] | None = None,
    *,
    allow_changes: bool = False,
    fresh: bool = False,
    seeds: int = 1,
    batch: int = 1,
    final: Final | bool | None = True,
    take_over: bool = False,
    imports: Sequence[str] | None = None,
    callbacks: Sequence[Callback] | None = None,
    max_memory: int | str | None = AUTO,
    pruner: Pruner | str | None = None,
) -> SearchResult:
    """Run a search, or resume it when ``storage`` already holds the same study.

    Every trial is written to storage when it is created, starts and ends; the strategy's
    state is written with every ``ask`` and ``tell``. Calling ``search`` again with the same
    storage resumes: finished trials are kept and count toward the budget, trials that were
    running are re-queued and run first, and the strategy is restored from its stored state.

    Before a study is created or resumed, and before any evaluation, the settings are checked:
    the strategy is built with its options, the evaluator checks the space's hyperparameters
    (``evaluator.check_space(space)``), a fidelity plan needs an evaluator that takes
    ``meta_iterations=``, and worker processes are started (a script without an
    ``if __name__ == "__main__":`` guard is caught here).

    Args:
        space: a :class:`~autometa.space.SearchSpace`, a shipped space's name, a space file
            path, or a dict.
        strategy: a registered strategy name (``"random"``, ``"ga"``, ...) or an instance
            built on the same space.
        evaluator: ``evaluator(graph, *, seed, device, meta_iterations=None) -> EvalResult``;
            default ``autometa.meta.MAMLEvaluator()``. Must be picklable for worker processes.
        budget: limits; default ``Budget(trials=20)``.
        storage: a SQLite path, a storage instance, ``":memory:"``; default
            ``./runs/<space>-<strategy>-seed<seed>.db``.
        workers: parallel evaluations (>= 0); ``0`` evaluates in this process (debugging).
        executor: a name in :data:`~autometa.experiment.executors.EXECUTORS` (``"process"``,
            the default; ``"inline"``, the default for ``workers=0``; ``"ray"``; or one
            registered by you or a plugin) or an executor instance (e.g.
            ``RayExecutor(address=...)``), which ignores ``workers``. The study stores the
            name (a registered instance's too) and ``autometa resume`` builds it again.
        seed: the search seed, an int in [0, 2**63 - 1] (strategy seed; trial ``n`` is
            evaluated with ``trial_seed(seed, n)``). Same seed, same device, one worker: same
            search.
        strategy_options: keyword options for ``make_strategy`` when ``strategy`` is a name.
        fidelity: a :class:`SuccessiveHalving`, :class:`Hyperband` or :class:`ASHA` plan over
            meta-iterations, or None to evaluate every candidate fully.
        progress: report progress on stderr: a bar on a terminal, a plain line per finished
            trial (and at least every 30 s) elsewhere; False for silence; or a
            :class:`ProgressBar` to use (another stream or ``line_interval``).
        trial_timeout: seconds (finite, > 0) after which one evaluation is stopped and
            recorded as failed; None for no limit.
        settings: extra JSON-safe settings stored with the study (the CLI keeps its
            arguments here for ``autometa resume``).
        seeds: seeds each candidate is scored on during the search; its score is their mean
            and the trial keeps the per-seed scores, their standard error and the seeds.
        batch: candidates sent to a worker as one job (a GA generation or a BO batch at a
            time); the evaluator scores those of one architecture, and the seeds of each, in
            one batched program (``docs/evaluator.md``). 1 sends them one by one.
        final: the final stage run when the budget is spent (``docs/scoring.md``): True for
            ``Final()`` (the top 3 distinct candidates on 3 fresh seeds), a :class:`Final`
            (finalists, seeds, baselines, ablation, confirmation seeds), or False / None for
            none.
        allow_changes: continue a study whose evaluator settings or fidelity plan differ from
            the ones it ran with; the change is recorded in the study's settings.
        fresh: delete the study file at ``storage`` first (only an autometa study file) and
            start over; refused (``StudyInUseError``) while a live session on any host holds
            the study, unless ``take_over`` is also given.
        take_over: claim the study even while another session looks alive (for a process
            known to be gone, e.g. on a machine that went down); a live one stops at its
            next heartbeat.
        imports: the modules or files that registered a user evaluator, strategy or task
            family (the CLI's ``--import`` list), recorded with a new study; default: the
            modules that define a registered evaluator and strategy outside autometa.
        callbacks: :class:`Callback` instances told of each finished trial and of the end
            (e.g. :class:`TensorBoardCallback`, :class:`MLflowCallback`); one that raises is
            logged and disabled, the search goes on.
        max_memory: bytes one evaluation may need, by the evaluator's ``estimate_memory``
            (evaluators without one are not checked); a candidate over it is recorded as
            failed (``"out of memory: needs ~X, limit Y (estimate; ...)"``) before it runs.
            ``"auto"`` (default): the executor's :meth:`~BaseExecutor.memory_limit`, half of
            the RAM (or of the GPU's memory when evaluating on CUDA) shared by the workers on
            it; None: no limit.
        pruner: stop trials whose learning curve falls behind the finished trials' (recorded
            ``PRUNED``, ``docs/pruning.md``): ``"median"``, ``"percentile:25"``, ``"none"``
            or a :class:`~autometa.experiment.pruners.Pruner`; None: no pruning. Not with
            ``fidelity``. ``"dominated:3"`` (multi-objective strategies only, with an
            evaluator that has ``cost_objectives(graph)``) stops a trial that 3 finished
            trials beat on the value and on every cost.

    Returns:
        The :class:`SearchResult` read back from storage.

    Raises:
        ConfigurationError: an argument of the wrong type or range (one line naming it), a
            setting that cannot work (unknown strategy or option, a hyperparameter the
            evaluator does not have, a script without a main guard with worker processes,
            ...); nothing was created or evaluated.
        StorageError: the storage holds a study for another space, strategy or seed, or one
            run with other evaluator settings (unless ``allow_changes``).
        SearchFailedError: the run ended with failed trials and none succeeded; the message
            quotes the first failure and ``.result`` holds the stored study.
        StudyInUseError: another live process is searching the study (it names the host
            and pid).
        StudyTakenOverError: another process took the study over while this one ran; this
            search stopped, and storage refused its writes from then on.
        KeyboardInterrupt: on Ctrl-C, after running trials are stopped and re-queued and
            everything finished is safely stored; ``load_result(storage)`` reads it, and
            running the same call again resumes.
    """

    exit_if_reimporting_main()  # a worker re-running an unguarded script: the parent explains
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
    plan = Final() if final is True else (final or None)
    if plan is not None and not isinstance(plan, Final):
        raise ConfigurationError(f"`final` must be a Final, True, False or None, got {final!r}")
    if plan is not None and getattr(space_obj, "baselines", None):
        plan = Final(
            plan.top,
            plan.seeds,
            (*space_obj.baselines, *plan.baselines),
            plan.ablation,
            plan.confirm_seeds,
        )
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
    try:
        if fresh:
            start_over(storage, take_over)
        store = get_storage(storage)
        described = describe_evaluator(evaluator)
        unregistered = [] if strategy_registered else ["strategy"]
        if described["name"] is None:
            unregistered.insert(0, "evaluator")
        if imports is None:
            imports = _defining_modules(
                evaluator, strategy, described["name"], strategy_registered
            )
        run_settings = {
            "budget": budget.to_dict(),
            "workers": workers,
            "executor": exe_name,
            "fidelity": fidelity.to_dict() if fidelity is not None else None,
            "trial_timeout": trial_timeout,
            "evaluator": described,
            "seeds": seeds,
            "batch": batch,
            "final": plan.to_dict() if plan is not None else None,
            "pruner": prune.to_dict() if prune is not None else None,
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
            evaluator=described,
            seed=int(seed),
            settings=run_settings,
            versions=runtime_versions(),
            created=time.time(),
            imports=list(imports),
            unregistered=unregistered,
        )
        lease = Lease(store, take_over=take_over)  # refused while another search runs
    except BaseException:
        exe.shutdown()
        raise
    try:
        stored = store.open_study(info)
        resuming = bool(store.get_all_trials())
        check_same_study(store, stored, info)
        run_settings["changes"] = check_same_scoring(store, stored, info, allow_changes)
        if stored.settings != run_settings:
            store.update_study_settings(run_settings)
        state = store.get_strategy_state()
        if state is not None:
            try:
                strat.load_state_dict(state)
            except (ValueError, TypeError) as exc:  # a damaged or crafted state: refused
                raise StorageError(
                    f"{getattr(store, 'path', store)}: table strategy_state, row 1, field "
                    f"'state': {exc}"
                ) from None
        if resuming:
            counts = {s.name: n for s, n in store.count_states().items() if n}
            logger.info("resuming %s: %s", store, counts)
        if isinstance(progress, ProgressBar):
            bar = progress
        else:
            bar = ProgressBar(budget) if ProgressBar.wanted(progress) else None
        loop = SearchLoop(
            storage=store,
            strategy=strat,
            executor=exe,
            evaluator=evaluator,
            scheduler=Scheduler(fidelity),
            budget=budget,
            progress=bar,
            lease=lease,
            executor_started=True,
            seeds=seeds,
            batch=batch,
            pruner=prune,
            final=plan,
            search_seed=int(seed),
            callbacks=watchers,
            max_memory=exe.memory_limit() if max_memory == AUTO else max_memory,
        )
    except BaseException:
        exe.shutdown()
        lease.release()
        raise
    try:
        reason = loop.run()
    finally:
        lease.release()
    result = load_result(store, reason)
    watchers.search_end(result)
    failed = no_success(result.trials)
    if failed is not None:
        raise SearchFailedError(f"{store}: {failed}", result)
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
