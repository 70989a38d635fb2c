"""``autometa search``, ``autometa resume`` and ``autometa show``: run and inspect studies."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import yaml

from autometa.errors import AutometaError, StorageError
from autometa.experiment import (
    Budget,
    Hyperband,
    RayExecutor,
    SQLiteStorage,
    SuccessiveHalving,
    default_storage_path,
    load_result,
    search,
)
from autometa.experiment._loop import default_iterations
from autometa.experiment.fidelity import fidelity_from_dict
from autometa.experiment.progress import format_seconds
from autometa.experiment.search import rebuild_evaluator
from autometa.meta import MAMLEvaluator
from autometa.meta.synthetic import SyntheticObjective
from autometa.space import load_space
from autometa.strategies import make_strategy

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _key_value(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as YAML (``3`` -> int, ``true`` -> bool, ...)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key.strip(), yaml.safe_load(value)


def _add_run_options(p: argparse.ArgumentParser, resume: bool) -> None:
    """Options shared by ``search`` and ``resume`` (on resume they override the stored ones)."""
    default = argparse.SUPPRESS if resume else None
    p.add_argument("--trials", type=int, default=default, help="trial budget")
    p.add_argument("--seconds", type=float, default=default, help="wall-clock budget (s)")
    p.add_argument(
        "--budget-meta-iterations", type=int, default=default, metavar="N",
        help="budget of meta-iterations summed over all evaluations",
    )  # fmt: skip
    p.add_argument(
        "--workers", type=int, default=argparse.SUPPRESS if resume else 1,
        help="parallel evaluations (0: in this process, for debugging)",
    )  # fmt: skip
    p.add_argument(
        "--executor", choices=["process", "ray", "inline"], default=default,
        help="where evaluations run (default: local worker processes)",
    )  # fmt: skip
    p.add_argument("--ray-address", default=default, help="Ray cluster address (ray executor)")
    p.add_argument(
        "--gpus-per-trial", type=float, default=default,
        help="GPUs per evaluation on Ray (fractions share a GPU)",
    )  # fmt: skip
    p.add_argument(
        "--trial-timeout", type=float, default=default, metavar="S",
        help="seconds after which one evaluation is stopped and recorded as failed",
    )  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_search(sub: argparse._SubParsersAction) -> None:
    """Register ``autometa search SPACE``."""
    p = sub.add_parser(
        "search",
        help="search a space for the architecture that meta-learns best",
        description="Run a search and store every trial in a SQLite file. Running the same "
        "command again on the same storage resumes it. Exit codes: 0 ok, 1 no trial "
        "succeeded, 2 bad input, 130 interrupted (resume with `autometa resume STORAGE`).",
    )
    p.add_argument("space", help="path to a YAML or JSON search-space file")
    p.add_argument("--strategy", default="random", help="strategy name (default: random)")
    p.add_argument(
        "--option", action="append", type=_key_value, default=[], metavar="KEY=VALUE",
        help="strategy option (repeatable), e.g. --option population=20",
    )  # fmt: skip
    p.add_argument(
        "--objective", choices=["maml", "synthetic"], default="maml",
        help="maml: MAMLEvaluator on --task; synthetic: a cheap stand-in for demos and tests",
    )  # fmt: skip
    p.add_argument("--task", default="navigation2d", help="task family for MAML")
    p.add_argument(
        "--meta-iterations", type=int, default=None,
        help="meta-iterations per full evaluation (default: the task's preset)",
    )  # fmt: skip
    p.add_argument(
        "--eval-option", action="append", type=_key_value, default=[], metavar="KEY=VALUE",
        help="evaluator option (repeatable): a MAMLConfig field, or e.g. delay=0.5 for synthetic",
    )  # fmt: skip
    p.add_argument(
        "--fidelity", choices=["successive-halving", "hyperband"], default=None,
        help="drop weak candidates early by rungs of meta-iterations",
    )  # fmt: skip
    p.add_argument("--min-iterations", type=int, default=None, help="first rung's meta-iterations")
    p.add_argument("--eta", type=int, default=3, help="rung reduction factor")
    p.add_argument("--storage", default=None, help="SQLite file (default: runs/<space>-...db)")
    p.add_argument("--seed", type=int, default=0, help="search seed")
    _add_run_options(p, resume=False)
    p.set_defaults(handler=run_search)


def add_resume(sub: argparse._SubParsersAction) -> None:
    """Register ``autometa resume STORAGE``."""
    p = sub.add_parser(
        "resume",
        help="continue a stored search with its stored configuration",
        description="Re-open a study started by `autometa search` and continue it: finished "
        "trials are kept, interrupted ones run again first. Budget and run options given "
        "here replace the stored ones.",
    )
    p.add_argument("storage", help="the study's SQLite file")
    _add_run_options(p, resume=True)
    p.set_defaults(handler=run_resume)


def add_show(sub: argparse._SubParsersAction) -> None:
    """Register ``autometa show STORAGE``."""
    p = sub.add_parser(
        "show",
        help="print a study's leaderboard and status counts",
        description="Print the study's configuration, trial counts per status and the "
        "leaderboard, best first. Safe while the search is running.",
    )
    p.add_argument("storage", help="the study's SQLite file")
    p.add_argument("--top", type=int, default=20, help="rows of the leaderboard (0: all)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=run_show)


# -- running -----------------------------------------------------------------------------


def _recipe(args: argparse.Namespace) -> dict[str, Any]:
    """Everything ``resume`` needs to rebuild the search, stored with the study."""
    return {
        "space": args.space,
        "strategy": args.strategy,
        "options": dict(args.option),
        "objective": args.objective,
        "task": args.task,
        "meta_iterations": args.meta_iterations,
        "eval_options": dict(args.eval_option),
        "fidelity": args.fidelity,
        "min_iterations": args.min_iterations,
        "eta": args.eta,
        "storage": args.storage,
        "seed": args.seed,
        "trials": args.trials,
        "seconds": args.seconds,
        "budget_meta_iterations": args.budget_meta_iterations,
        "workers": args.workers,
        "executor": args.executor,
        "ray_address": args.ray_address,
        "gpus_per_trial": args.gpus_per_trial,
        "trial_timeout": args.trial_timeout,
    }


def _evaluator(recipe: dict[str, Any]) -> Any:
    options = dict(recipe["eval_options"])
    if recipe["objective"] == "synthetic":
        if recipe["meta_iterations"] is not None:
            options.setdefault("full_fidelity", recipe["meta_iterations"])
        return SyntheticObjective(**options)
    return MAMLEvaluator(recipe["task"], meta_iterations=recipe["meta_iterations"], **options)


def _execute(recipe: dict[str, Any], space: Any, no_progress: bool) -> int:
    """Build everything from a recipe, run the search, print the outcome."""
    try:
        evaluator = _evaluator(recipe)
        budget = Budget(recipe["trials"], recipe["seconds"], recipe["budget_meta_iterations"])
        if budget == Budget():
            budget = Budget(trials=20)
        fidelity = None
        if recipe["fidelity"]:
            top = recipe["meta_iterations"] or default_iterations(evaluator)
            low = recipe["min_iterations"] or max(1, (top or 1) // recipe["eta"] ** 2)
            cls = Hyperband if recipe["fidelity"] == "hyperband" else SuccessiveHalving
            fidelity = cls(low, top, recipe["eta"])
        make_strategy(recipe["strategy"], space, seed=recipe["seed"], **recipe["options"])
        executor = recipe["executor"]
        if executor == "ray":
            executor = RayExecutor(
                recipe["ray_address"], recipe["gpus_per_trial"] or 0.0,
                workers=recipe["workers"] or None, timeout=recipe["trial_timeout"],
            )  # fmt: skip
    except (TypeError, ValueError) as exc:
        raise _UsageError(str(exc)) from exc
    storage = recipe["storage"]
    try:
        result = search(
            space,
            strategy=recipe["strategy"],
            evaluator=evaluator,
            budget=budget,
            storage=storage,
            workers=recipe["workers"],
            executor=executor,
            seed=recipe["seed"],
            strategy_options=recipe["options"],
            fidelity=fidelity,
            progress=False if no_progress else None,
            trial_timeout=recipe["trial_timeout"],
            settings={"cli": recipe},
        )
    except KeyboardInterrupt:
        print(
            f"interrupted: finished trials are stored; continue with `autometa resume {storage}`",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except AutometaError:
        raise
    print(f"stopped: {result.stop_reason}")
    print(_format(result.storage, top=5))
    return EXIT_OK if result.best is not None else EXIT_FAILURE


class _UsageError(Exception):
    """Bad option values; reported like other bad input (exit code 2)."""


def run_search(args: argparse.Namespace) -> int:
    """Start or resume the search the options describe."""
    space = load_space(args.space)
    recipe = _recipe(args)
    if recipe["storage"] is None:
        recipe["storage"] = str(default_storage_path(space.name, args.strategy, args.seed))
    return _guard(lambda: _execute(recipe, space, args.no_progress), "search")


def run_resume(args: argparse.Namespace) -> int:
    """Continue the study in ``args.storage`` with its stored recipe."""
    path = Path(args.storage)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such study database")
    store = SQLiteStorage(path)
    study = store.get_study()
    store.close()
    if study is None:
        return _usage("resume", f"{path}: the database holds no study")
    recipe = dict(study.settings.get("cli") or {})
    if not recipe:
        return _guard(lambda: _resume_python_study(study, path, args), "resume")
    for name in ("trials", "seconds", "budget_meta_iterations", "workers", "executor",
                 "ray_address", "gpus_per_trial", "trial_timeout"):  # fmt: skip
        if name in vars(args):
            recipe[name] = getattr(args, name)
    recipe["storage"] = str(path)
    space = load_space(study.space_spec)
    return _guard(lambda: _execute(recipe, space, args.no_progress), "resume")


def _resume_python_study(study: Any, path: Path, args: argparse.Namespace) -> int:
    """Continue a study started with ``autometa.search(...)`` from what it stored."""
    settings = study.settings
    try:
        evaluator = rebuild_evaluator(study.evaluator)
    except StorageError as exc:
        raise _UsageError(f"{path}: {exc}") from exc
    stored = Budget.from_dict(settings.get("budget"))
    budget = Budget(
        getattr(args, "trials", stored.trials),
        getattr(args, "seconds", stored.seconds),
        getattr(args, "budget_meta_iterations", stored.meta_iterations),
    )
    try:
        result = search(
            load_space(study.space_spec),
            strategy=study.strategy,
            evaluator=evaluator,
            budget=budget,
            storage=str(path),
            workers=getattr(args, "workers", settings.get("workers", 1)),
            seed=study.seed,
            strategy_options=dict(study.strategy_options),
            fidelity=fidelity_from_dict(settings.get("fidelity")),
            progress=False if args.no_progress else None,
            trial_timeout=getattr(args, "trial_timeout", settings.get("trial_timeout")),
        )
    except KeyboardInterrupt:
        print(f"interrupted: continue with `autometa resume {path}`", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"stopped: {result.stop_reason}")
    print(_format(result.storage, top=5))
    return EXIT_OK if result.best is not None else EXIT_FAILURE


def _guard(body: Any, command: str) -> int:
    try:
        return int(body())
    except _UsageError as exc:
        return _usage(command, str(exc))


def _usage(command: str, message: str) -> int:
    print(f"autometa {command}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


# -- showing -----------------------------------------------------------------------------


def run_show(args: argparse.Namespace) -> int:
    """Print the study in ``args.storage``."""
    path = Path(args.storage)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such study database")
    store = SQLiteStorage(path)
    try:
        if store.get_study() is None:
            return _usage("show", f"{path}: the database holds no study")
        if args.json:
            result = load_result(store)
            rows = result.trials[: args.top or None]
            data = {
                "study": {k: v for k, v in result.study.to_dict().items() if k != "space_text"},
                "counts": result.counts,
                "usage": vars(result.usage),
                "trials": [
                    {k: v for k, v in t.to_dict().items() if k != "graph_json"} for t in rows
                ],
            }
            print(json.dumps(data, indent=2, default=str))
        else:
            print(_format(store, top=args.top))
    finally:
        store.close()
    return EXIT_OK


def _format(store: Any, top: int = 20) -> str:
    """The study header, status counts and leaderboard as text."""
    result = load_result(store)
    study, usage = result.study, result.usage
    lines = [
        f"study: {store}",
        f"  space {study.space_name!r} ({study.space_source or 'dict'}, hash "
        f"{study.space_hash[:12]}), strategy {study.strategy!r}, seed {study.seed}",
        f"  evaluator {study.evaluator.get('target', '?')}; autometa "
        f"{study.versions.get('autometa', '?')}, torch {study.versions.get('torch', '?')}, "
        f"Python {study.versions.get('python', '?')}",
        "  trials: " + ", ".join(f"{n} {s.lower()}" for s, n in result.counts.items() if n),
        f"  spent: {format_seconds(usage.seconds)} over all sessions, "
        f"{usage.meta_iterations} meta-iterations",
        "",
    ]
    header = ["rank", "trial", "state", "score", "fidelity", "params", "time", "device", "key"]
    rows = []
    for rank, trial in enumerate(result.trials[: top or None], start=1):
        params = trial.objectives.get("params", trial.metrics.get("params"))
        note = trial.error or (f"= trial {trial.duplicate_of}" if trial.duplicate_of else "")
        rows.append([
            str(rank) if trial.has_score and trial.state.name == "DONE" else "-",
            str(trial.number),
            trial.state.name.lower(),
            f"{trial.score:.4f}" if trial.has_score else "-",
            "-" if trial.fidelity is None else str(trial.fidelity),
            "-" if not isinstance(params, (int, float)) or math.isnan(params) else f"{params:g}",
            "-" if trial.wall_time is None else f"{trial.wall_time:.1f}s",
            trial.device or "-",
            trial.key[:12] + (f"  {note[:60]}" if note else ""),
        ])  # fmt: skip
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    if top and len(result.trials) > top:
        lines.append(f"... {len(result.trials) - top} more (--top 0 shows all)")
    return "\n".join(lines)
