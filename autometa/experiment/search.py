"""``autometa.search``: one call that runs (or resumes) a search and returns its leaderboard."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from autometa.evaluation import Evaluator
from autometa.experiment._callbacks import Callback
from autometa.experiment._checks import current_evaluator
from autometa.experiment._final import Final
from autometa.experiment._memory import AUTO
from autometa.experiment._references import describe_evaluator, rebuild_evaluator
from autometa.experiment._result import SearchResult, load_result
from autometa.experiment._startup import exit_if_reimporting_main
from autometa.experiment._study_setup import (
    build_study,
    default_storage_path,
    open_study,
    run_study,
)
from autometa.experiment.budget import Budget
from autometa.experiment.executors import BaseExecutor
from autometa.experiment.fidelity import SuccessiveHalving
from autometa.experiment.progress import ProgressBar
from autometa.experiment.pruners import Pruner
from autometa.experiment.storage import BaseStorage

__all__ = [
    "SearchResult",
    "current_evaluator",
    "default_storage_path",
    "describe_evaluator",
    "load_result",
    "rebuild_evaluator",
    "search",
]


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
    built = build_study(
        space=space, strategy=strategy, evaluator=evaluator, budget=budget, storage=storage,
        workers=workers, executor=executor, seed=seed, strategy_options=strategy_options,
        fidelity=fidelity, trial_timeout=trial_timeout, seeds=seeds, batch=batch, final=final,
        callbacks=callbacks, max_memory=max_memory, pruner=pruner,
    )  # fmt: skip
    loop = open_study(
        built, strategy=strategy, seed=seed, workers=workers, trial_timeout=trial_timeout,
        seeds=seeds, batch=batch, settings=settings, imports=imports, fresh=fresh,
        take_over=take_over, allow_changes=allow_changes, progress=progress,
    )  # fmt: skip
    return run_study(loop)
