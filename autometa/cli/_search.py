"""``autometa search``: start (or continue) a study from the command line's options.

The options and the steps from them to ``search(...)`` are here (``autometa resume`` reuses
both); how a run ends, its exit code and printed outcome, is in :mod:`._outcome`.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from typing import Any

import yaml

from autometa.cli._args import integer, memory_size, number, storage_path
from autometa.cli._imports import add_import_option
from autometa.cli._logs import build_callbacks, log_target
from autometa.cli._outcome import (
    UsageError,
    guard,
    report_failed,
    report_result,
    report_taken_over,
    usage,
)
from autometa.cli._recipe import build_executor
from autometa.cli._signals import exit_code, report
from autometa.cli._space import space_help
from autometa.errors import (
    AutometaError,
    ConfigurationError,
    SearchFailedError,
    StudyTakenOverError,
)
from autometa.experiment import (
    ASHA,
    EVALUATORS,
    Budget,
    Final,
    Hyperband,
    SuccessiveHalving,
    default_storage_path,
    search,
)
from autometa.experiment._checks import MAX_SEED
from autometa.experiment._loop import default_iterations
from autometa.experiment.pruners import make_pruner
from autometa.space import load_space


def _key_value(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as YAML (``3`` -> int, ``true`` -> bool, ...)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key.strip(), yaml.safe_load(value)


def _add_run_options(p: argparse.ArgumentParser, resume: bool) -> None:
    """Options shared by ``search`` and ``resume`` (on resume they override the stored ones)."""
    default = argparse.SUPPRESS if resume else None
    p.add_argument("--trials", type=integer(1), default=default, help="trial budget")
    p.add_argument(
        "--seconds", type=number(0, strict=True, unit="seconds"), default=default,
        help="wall-clock budget (s)",
    )  # fmt: skip
    p.add_argument(
        "--budget-meta-iterations", type=integer(1), default=default, metavar="N",
        help="budget of meta-iterations summed over all evaluations",
    )  # fmt: skip
    p.add_argument(
        "--workers", type=integer(0), default=argparse.SUPPRESS if resume else 1,
        help="parallel evaluations (0: in this process, for debugging)",
    )  # fmt: skip
    p.add_argument(
        "--executor", default=default, metavar="NAME",
        help="where evaluations run: process (local worker processes, the default), inline "
        "(in this process), ray, or an executor registered by --import or a plugin",
    )  # fmt: skip
    p.add_argument("--ray-address", default=default, help="Ray cluster address (ray executor)")
    p.add_argument(
        "--gpus-per-trial", type=number(0, strict=False), default=default,
        help="GPUs per evaluation on Ray (fractions share a GPU)",
    )  # fmt: skip
    p.add_argument(
        "--trial-timeout", type=number(0, strict=True, unit="seconds"), default=default,
        metavar="S",
        help="seconds after which one evaluation is stopped and recorded as failed",
    )  # fmt: skip
    p.add_argument(
        "--max-memory", type=memory_size, default=argparse.SUPPRESS if resume else "auto",
        metavar="SIZE",
        help="memory one evaluation may need by its estimate (e.g. 8GiB, 512MiB, none); a "
        "candidate over it fails before it runs (default auto: half of the RAM, or of the "
        "GPU's memory, shared by the workers)",
    )  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--allow-changes", action="store_true",
        help="continue a study whose evaluator settings differ from the ones it ran with "
        "(the change is recorded in the study); without it such a run is refused",
    )  # fmt: skip
    p.add_argument(
        "--take-over", action="store_true",
        help="claim the study even if another search seems to hold it (use once that "
        "process is gone; a live one stops at its next heartbeat)",
    )  # fmt: skip
    add_import_option(p)


def add_search(sub: argparse._SubParsersAction) -> None:
    """Register ``autometa search SPACE``."""
    p = sub.add_parser(
        "search",
        help="search a space for the architecture that meta-learns best",
        description="Run a search and store every trial in a SQLite file. Running the same "
        "command again on the same storage resumes it. Exit codes: 0 ok, 1 no trial "
        "succeeded, 2 bad input, 130 interrupted by Ctrl-C, 143 by SIGTERM, 129 by SIGHUP "
        "(resume with `autometa resume STORAGE`).",
    )
    p.add_argument("space", help=space_help())
    p.add_argument("--strategy", default="random", help="strategy name (default: random)")
    p.add_argument(
        "--option", action="append", type=_key_value, default=[], metavar="KEY=VALUE",
        help="strategy option (repeatable), e.g. --option population_size=20 for ga",
    )  # fmt: skip
    p.add_argument(
        "--objective", default="maml", metavar="NAME",
        help="a registered evaluator: maml (MAMLEvaluator on --task), synthetic (a cheap "
        "stand-in for demos and tests), or one registered by --import or a plugin",
    )  # fmt: skip
    p.add_argument("--task", default="navigation2d", help="task family for MAML")
    p.add_argument(
        "--meta-iterations", type=integer(1), default=None,
        help="meta-iterations per full evaluation (default: the task's preset)",
    )  # fmt: skip
    p.add_argument(
        "--eval-option", action="append", type=_key_value, default=[], metavar="KEY=VALUE",
        help="evaluator option (repeatable): a MAMLConfig field, or e.g. delay=0.5 for synthetic",
    )  # fmt: skip
    p.add_argument(
        "--fidelity", choices=["successive-halving", "hyperband", "asha"], default=None,
        help="drop weak candidates early by rungs of meta-iterations (asha: promote without "
        "waiting for a rung to fill)",
    )  # fmt: skip
    p.add_argument(
        "--min-iterations", type=integer(1), default=None, help="first rung's meta-iterations"
    )
    p.add_argument(
        "--eta", type=integer(2), default=None, help="rung reduction factor (default 3)"
    )
    p.add_argument(
        "--pruner", default=None, metavar="NAME",
        help="stop trials whose learning curve falls behind the finished trials': median, "
        "percentile:P (keep the top P%%), dominated:K (multi-objective strategies such as "
        "nsga2: stop when K finished trials are better and no bigger; default K 3) or none "
        "(default; see docs/pruning.md)",
    )  # fmt: skip
    p.add_argument(
        "--storage", type=storage_path, default=None,
        help="SQLite file (default: runs/<space>-...db)",
    )  # fmt: skip
    p.add_argument(
        "--fresh", action="store_true",
        help="delete the study at --storage first (only an autometa study file) and start over",
    )  # fmt: skip
    p.add_argument("--seed", type=integer(0, MAX_SEED), default=0, help="search seed")
    p.add_argument(
        "--seeds", type=integer(1), default=1, metavar="S",
        help="seeds each candidate is scored on; its score is their mean (default 1)",
    )  # fmt: skip
    p.add_argument(
        "--batch", type=integer(1), default=1, metavar="N",
        help="candidates evaluated together as one batched program per worker (default 1)",
    )  # fmt: skip
    p.add_argument(
        "--final-top", type=integer(0), default=3, metavar="K",
        help="distinct best candidates re-evaluated on fresh seeds at the end (0: no final stage)",
    )  # fmt: skip
    p.add_argument(
        "--final-seeds", type=integer(0), default=3, metavar="S",
        help="fresh seeds of the final stage, shared by finalists and baselines (default 3)",
    )  # fmt: skip
    p.add_argument(
        "--confirm-seeds", type=integer(0), default=0, metavar="N",
        help="score the final stage's winner and its closest rival again on N further fresh "
        "seeds, for a margin the choice of the winner did not see (default 0: off)",
    )  # fmt: skip
    p.add_argument(
        "--baseline", action="append", default=[], metavar="NAME",
        help="reference architecture scored in the final stage (repeatable): "
        "maml-relu-2x100 (Finn et al. 2017), tanh-2x64",
    )  # fmt: skip
    p.add_argument(
        "--log", action="append", type=log_target, default=[], metavar="KIND:WHERE",
        help="also log every trial to tensorboard:DIR or mlflow:URI, e.g. "
        "mlflow:sqlite:///runs/mlflow.db (repeatable; `autometa resume` keeps logging)",
    )  # fmt: skip
    p.add_argument(
        "--no-ablation", action="store_true",
        help="skip the cells that swap the winner's and the best baseline's hyperparameters",
    )  # fmt: skip
    _add_run_options(p, resume=False)
    p.set_defaults(handler=run_search)


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
        "eta": args.eta if args.eta is not None else 3,
        "pruner": args.pruner,
        "storage": args.storage,
        "seed": args.seed,
        "seeds": args.seeds,
        "batch": args.batch,
        "final": {
            "top": args.final_top,
            "seeds": args.final_seeds,
            "baselines": list(args.baseline),
            "ablation": not args.no_ablation,
            "confirm_seeds": args.confirm_seeds,
        },
        "trials": args.trials,
        "seconds": args.seconds,
        "budget_meta_iterations": args.budget_meta_iterations,
        "workers": args.workers,
        "executor": args.executor,
        "ray_address": args.ray_address,
        "gpus_per_trial": args.gpus_per_trial,
        "trial_timeout": args.trial_timeout,
        "max_memory": args.max_memory,
        "imports": list(args.imports),
        "log": list(args.log),
    }


def _evaluator(recipe: dict[str, Any], origin: str | None = None) -> Any:
    """The evaluator registered as ``recipe["objective"]``, made from the recipe's options;
    a bad ``--eval-option`` is a usage error naming it, or naming ``origin`` (the stored
    recipe of a resumed study) when given."""
    name, options = recipe["objective"], dict(recipe["eval_options"])
    factory = EVALUATORS.get(name)
    try:
        if name == "maml":
            return factory(recipe["task"], meta_iterations=recipe["meta_iterations"], **options)
        if name == "synthetic":
            known = list(inspect.signature(factory).parameters)
            unknown = sorted(set(options) - set(known))
            if unknown:
                raise ValueError(
                    f"unknown synthetic objective option(s) {', '.join(map(repr, unknown))}; "
                    f"valid names: {', '.join(known)}"
                )
            if recipe["meta_iterations"] is not None:
                options.setdefault("full_fidelity", recipe["meta_iterations"])
        return factory.from_config(options)
    except ConfigurationError:
        if name == "maml" and origin is None:
            raise  # one line naming the setting (task family, MAMLConfig field) already
        raise UsageError(f"{origin or 'argument --eval-option'}: {sys.exc_info()[1]}") from None
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{origin or 'argument --eval-option'}: {exc}") from exc


def _execute(
    recipe: dict[str, Any],
    space: Any,
    no_progress: bool,
    command: str,
    *,
    origin: str | None = None,
    **flags: bool,
) -> int:
    """Build everything from a recipe, run the search, print the outcome.

    ``flags`` are ``allow_changes``, ``fresh`` and ``take_over``, passed to ``search``; they
    belong to this run and are not stored in the recipe. ``origin`` names where a stored
    recipe came from, for the one line a bad evaluator setting in it gets.
    """
    try:
        evaluator = _evaluator(recipe, origin)
        for name in ("seeds", "batch"):
            if recipe.get(name, 1) < 1:
                raise ValueError(f"--{name}: expected an int >= 1, got {recipe[name]}")
        final = Final.from_dict(recipe.get("final"))
        budget = Budget(recipe["trials"], recipe["seconds"], recipe["budget_meta_iterations"])
        if budget == Budget():
            budget = Budget(trials=20)
        fidelity = None
        if recipe["fidelity"]:
            top = (
                recipe["meta_iterations"]
                or default_iterations(evaluator)
                or getattr(evaluator, "full_fidelity", None)
            )
            low = recipe["min_iterations"] or max(1, (top or 1) // recipe["eta"] ** 2)
            if top is not None and low > top:
                raise ValueError(
                    f"argument --min-iterations: expected at most the {top} meta-iterations of "
                    f"a full evaluation (--meta-iterations), got {low}"
                )
            classes = {"hyperband": Hyperband, "asha": ASHA}
            cls = classes.get(recipe["fidelity"], SuccessiveHalving)
            fidelity = cls(low, top, recipe["eta"])
        try:
            pruner = make_pruner(recipe.get("pruner"))
        except ConfigurationError as exc:
            raise ValueError(f"argument --pruner: {exc}") from None
        if pruner is not None and fidelity is not None:
            raise ValueError("--pruner and --fidelity cannot be combined")
        callbacks = build_callbacks(list(recipe.get("log") or []))
        executor = build_executor(recipe)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    storage = recipe["storage"]
    print(f"study file: {storage}", flush=True)  # where show / plot / export / resume read it
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
            seeds=recipe.get("seeds", 1),
            batch=recipe.get("batch", 1),
            final=final if final is not None else False,
            **flags,
            imports=recipe.get("imports") or [],
            callbacks=callbacks,
            max_memory=recipe.get("max_memory", "auto"),
            pruner=pruner,
        )
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM or SIGHUP
        report(exc, f"finished trials are stored; continue with `autometa resume {storage}`")
        return exit_code(exc)
    except SearchFailedError as exc:
        return report_failed(exc, command)
    except StudyTakenOverError as exc:
        return report_taken_over(exc, command)
    except AutometaError:
        raise
    return report_result(result, command)


def run_search(args: argparse.Namespace) -> int:
    """Start or resume the search the options describe."""
    space = load_space(args.space)
    if args.fidelity is None:
        given = [f"--{n.replace('_', '-')}" for n in ("min_iterations", "eta")
                 if getattr(args, n) is not None]  # fmt: skip
        if given:
            return usage("search", f"{' and '.join(given)} apply only with --fidelity")
    recipe = _recipe(args)
    if recipe["storage"] is None:
        recipe["storage"] = str(default_storage_path(space.name, args.strategy, args.seed))
    flags = {"allow_changes": args.allow_changes, "fresh": args.fresh, "take_over": args.take_over}
    return guard(lambda: _execute(recipe, space, args.no_progress, "search", **flags), "search")
