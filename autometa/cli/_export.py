"""``autometa export`` and ``autometa plot``: take the result of a stored search out of it."""

from __future__ import annotations

import argparse
from pathlib import Path

from autometa.cli._args import add_intermixed_parser, integer
from autometa.cli._default import add_storage_argument, resolve_storage
from autometa.cli._imports import add_import_option
from autometa.errors import ExportError
from autometa.experiment._best import best_of
from autometa.export import export, plot, read_export
from autometa.export._plot import open_study


def add_export(sub: argparse._SubParsersAction) -> None:
    """Register ``autometa export [STORAGE] [--trial N | --best] OUT_DIR``."""
    p = add_intermixed_parser(
        sub,
        "export",
        help="write a trial's architecture and meta-learned weights to a folder",
        description="Export one trial of a stored search (the best DONE trial by default) to "
        "a self-contained folder: model.json, model.safetensors, the graph as JSON, GraphML, "
        "DOT and a drawing, TorchScript and ONNX copies checked against the policy, and "
        "card.md. Load it with autometa.load(OUT_DIR). Exit code 2 when the study, the trial "
        "or its weights are missing, or the trial did not finish.",
    )
    add_storage_argument(p)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--trial", type=integer(0), metavar="N", help="export trial number N")
    which.add_argument("--best", action="store_true", help="export the best trial (default)")
    p.add_argument("out_dir", metavar="OUT_DIR", type=Path, help="the folder to create")
    p.add_argument(
        "--task-family",
        metavar="NAME",
        default=None,
        help="task family giving the policy's spaces (default: the one the evaluator recorded)",
    )
    p.add_argument(
        "--overwrite", action="store_true",
        help="replace an earlier export in OUT_DIR (only a folder holding exactly an earlier "
        "autometa export; never the current folder, a parent of it or of STORAGE)",
    )  # fmt: skip
    p.add_argument("--no-onnx", action="store_true", help="do not write policy.onnx")
    p.add_argument(
        "--no-torchscript", action="store_true", help="do not write policy.torchscript.pt"
    )
    add_import_option(p)
    p.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    """Export the chosen trial and print what was written and checked."""
    storage = open_study(resolve_storage(args))
    try:
        best = None
        if args.trial is None:
            best = best_of(storage)
            if best is None:
                raise ExportError(f"{args.storage}: the study has no DONE trial to export")
            trial = best.trial
        else:
            try:
                trial = storage.get_trial(args.trial)
            except KeyError:
                count = len(storage.get_all_trials())
                raise ExportError(
                    f"{args.storage}: no trial {args.trial} (the study has trials 0..{count - 1})"
                ) from None
        folder = export(
            trial,
            args.out_dir,
            storage=storage,
            task_family=args.task_family,
            onnx=not args.no_onnx,
            torchscript=not args.no_torchscript,
            overwrite=args.overwrite,
        )
    finally:
        storage.close()
    model = read_export(folder)
    score = model.get("score")
    which = (
        best.describe().removeprefix(f"trial {trial.number}: ") + "; "
        if best is not None
        else f"search score {score:.4g}; " if score is not None else ""
    )  # fmt: skip
    print(
        f"exported trial {trial.number} ({which}{model['num_params']:,} parameters, "
        f"{model['macs']:,} MACs) to {folder}"
    )
    for label, check in model["checks"].items():
        if "skipped" in check:
            print(f"  {label}: not written ({check['skipped']})")
        elif check.get("max_abs_error") is not None:
            print(f"  {check['file']}: max abs error {check['max_abs_error']:.2g} vs the policy")
    for name in sorted(model["files"]):
        print(f"  {name}")
    return 0


def add_plot(sub: argparse._SubParsersAction) -> None:
    """Register ``autometa plot [STORAGE] [--out DIR]``."""
    p = sub.add_parser(
        "plot",
        help="draw a stored search: progress, score vs size with the Pareto front, best graph",
        description="Write progress.png (scores and the best-so-far curve by trial number, "
        "failed trials marked), pareto.png (score vs parameter count with the Pareto front), "
        "best_graph.png/.dot and trials.csv. Images need matplotlib (the plot extra); without "
        "it only the CSV and DOT files are written. Exit code 2 when the study is missing.",
    )
    add_storage_argument(p)
    p.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        default=None,
        help="folder to write to (default: <STORAGE without suffix>-plots next to it)",
    )
    add_import_option(p)
    p.set_defaults(handler=run_plot)


def run_plot(args: argparse.Namespace) -> int:
    """Draw the study and list the files."""
    path = Path(resolve_storage(args))
    out = args.out if args.out is not None else path.with_name(f"{path.stem}-plots")
    for written in plot(path, out):
        print(written)
    return 0
