"""``autometa resume STORAGE``: continue a stored study with the recipe it recorded."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from autometa.cli._default import add_storage_argument, resolve_storage
from autometa.cli._logs import log_target
from autometa.cli._outcome import (
    UsageError,
    guard,
    report_failed,
    report_result,
    report_taken_over,
    usage,
)
from autometa.cli._recipe import (
    build_executor,
    check_executor,
    check_recipe,
    check_workers,
    stored_logs,
)
from autometa.cli._search import _add_run_options, _execute
from autometa.cli._signals import exit_code, report
from autometa.errors import SearchFailedError, StorageError, StudyTakenOverError
from autometa.experiment import Budget, Final, SQLiteStorage, check_study, search
from autometa.experiment.fidelity import fidelity_from_dict
from autometa.experiment.search import current_evaluator, rebuild_evaluator
from autometa.space import load_space

__all__ = ["add_resume", "run_resume"]


def add_resume(sub: argparse._SubParsersAction) -> None:
    """Register ``autometa resume STORAGE``."""
    p = sub.add_parser(
        "resume",
        help="continue a stored search with its stored configuration",
        description="Re-open a study started by `autometa search` and continue it: finished "
        "trials are kept, interrupted ones run again first. Budget and run options given "
        "here replace the stored ones.",
    )
    add_storage_argument(p)
    p.add_argument(
        "--log", action="append", type=log_target, default=argparse.SUPPRESS,
        metavar="KIND:WHERE",
        help="log to tensorboard:DIR or mlflow:URI (repeatable) instead of the stored targets; "
        "a stored target outside the study's folder is used only when given here again",
    )  # fmt: skip
    _add_run_options(p, resume=True)
    p.set_defaults(handler=run_resume)


def run_resume(args: argparse.Namespace) -> int:
    """Continue the study in ``args.storage`` with its stored recipe."""
    path = Path(resolve_storage(args))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such study database")
    store = SQLiteStorage(path, read_only=True)
    try:
        study = store.get_study()
    finally:
        store.close()
    if study is None:
        return usage("resume", f"{path}: the database holds no study")
    check_study(study, str(path), resume=True)  # names it needs are registered: nothing runs
    stored = study.settings.get("cli") or {}
    if not stored:
        return guard(lambda: _resume_python_study(study, path, args), "resume")
    given = {name for name in _OVERRIDES if name in vars(args)}
    check_recipe(stored, path, given)  # types, ranges, the worker cap: one line if not
    recipe = dict(stored)
    recipe["log"] = stored_logs(list(recipe.get("log") or []), path)
    for name in given:
        recipe[name] = getattr(args, name)
    missing = sorted(set(_RECIPE_KEYS) - set(recipe))
    if missing:
        return usage("resume", f"{path}: the stored command line lacks {', '.join(missing)}")
    recipe["storage"] = str(path)
    space = load_space(study.space_spec)
    flags = {"allow_changes": args.allow_changes, "take_over": args.take_over}
    origin = f"{path}: table study, row 1, field 'settings.cli'"  # the stored command line
    return guard(
        lambda: _execute(recipe, space, args.no_progress, "resume", origin=origin, **flags),
        "resume",
    )


# Options given again on the command line replace the stored ones.
_OVERRIDES = ("trials", "seconds", "budget_meta_iterations", "workers", "executor",
              "ray_address", "gpus_per_trial", "trial_timeout", "max_memory", "log")  # fmt: skip

# What every stored command line holds (``imports`` came later and may be absent).
_RECIPE_KEYS = [
    "space", "strategy", "options", "objective", "task", "meta_iterations", "eval_options",
    "fidelity", "min_iterations", "eta", "storage", "seed", "trials", "seconds",
    "budget_meta_iterations", "workers", "executor", "ray_address", "gpus_per_trial",
    "trial_timeout",
]  # fmt: skip


def _resume_python_study(study: Any, path: Path, args: argparse.Namespace) -> int:
    """Continue a study started with ``autometa.search(...)`` from what it stored."""
    settings = study.settings
    try:
        evaluator = rebuild_evaluator(current_evaluator(study), study.imports)
    except StorageError as exc:
        raise UsageError(f"{path}: {exc}") from exc
    workers = getattr(args, "workers", None)
    if workers is None:
        workers = check_workers(settings.get("workers", 1), path)
    name = getattr(args, "executor", None)
    if "executor" not in vars(args):  # the one the study ran with; None: the default
        name = check_executor(settings.get("executor"), path)
    trial_timeout = getattr(args, "trial_timeout", settings.get("trial_timeout"))
    try:
        executor = build_executor({
            "executor": name, "workers": workers, "trial_timeout": trial_timeout,
            "ray_address": getattr(args, "ray_address", None),
            "gpus_per_trial": getattr(args, "gpus_per_trial", None),
        })  # fmt: skip
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        stored = Budget.from_dict(settings.get("budget"))
        budget = Budget(
            getattr(args, "trials", stored.trials),
            getattr(args, "seconds", stored.seconds),
            getattr(args, "budget_meta_iterations", stored.meta_iterations),
        )
        fidelity = fidelity_from_dict(settings.get("fidelity"))
        final = Final.from_dict(settings.get("final")) or False
        seeds, batch = int(settings.get("seeds") or 1), int(settings.get("batch") or 1)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise StorageError(f"{path}: table study, row 1, field 'settings': {exc}") from None
    print(f"study file: {path}", flush=True)
    try:
        result = search(
            load_space(study.space_spec),
            strategy=study.strategy,
            evaluator=evaluator,
            budget=budget,
            storage=str(path),
            workers=workers,
            executor=executor,
            seed=study.seed,
            strategy_options=dict(study.strategy_options),
            fidelity=fidelity,
            progress=False if args.no_progress else None,
            trial_timeout=trial_timeout,
            seeds=seeds,
            batch=batch,
            final=final,
            allow_changes=args.allow_changes,
            take_over=args.take_over,
            max_memory=getattr(args, "max_memory", "auto"),
            pruner=settings.get("pruner"),
        )
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM or SIGHUP
        report(exc, f"finished trials are stored; continue with `autometa resume {path}`")
        return exit_code(exc)
    except SearchFailedError as exc:
        return report_failed(exc, "resume")
    except StudyTakenOverError as exc:
        return report_taken_over(exc, "resume")
    return report_result(result, "resume")
