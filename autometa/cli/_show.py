"""``autometa show``: a study's configuration, status counts and leaderboard."""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from autometa.cli._args import integer
from autometa.cli._default import add_storage_argument, resolve_storage
from autometa.cli._imports import add_import_option
from autometa.experiment import SQLiteStorage, check_study, load_result
from autometa.experiment._references import evaluator_name
from autometa.experiment.progress import format_seconds
from autometa.export import trial_rows, write_trials_csv
from autometa.graph import describe_graph

__all__ = ["add_show", "format_study", "run_show", "strict_json"]

EXIT_OK, EXIT_USAGE = 0, 2
ARCHITECTURE_CHARS = 100
"""Characters of an architecture in the table (``--wide``: all)."""
NOTE_CHARS = 60
"""Characters of a failed trial's error in the table (``--errors``: all)."""


def add_show(sub: argparse._SubParsersAction) -> None:
    """Register ``autometa show STORAGE``."""
    p = sub.add_parser(
        "show",
        help="print a study's leaderboard and status counts",
        description="Print the study's configuration, trial counts per status and the "
        "leaderboard, best first. Safe while the search is running.",
    )
    add_storage_argument(p)
    p.add_argument("--top", type=integer(0), default=20, help="rows of the leaderboard (0: all)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--wide", action="store_true", help="show each architecture in full (default: cut at 100)"
    )
    p.add_argument(
        "--errors", action="store_true", help="also print every failed trial's full error"
    )
    p.add_argument(
        "--csv",
        metavar="FILE",
        type=Path,
        default=None,
        help="write every trial to the CSV file FILE, or to standard output for '-' (decision "
        "values, seeds, per-seed scores, fidelity, wall time, device, error, architecture) "
        "instead of printing the table",
    )
    add_import_option(p)
    p.set_defaults(handler=run_show)


def run_show(args: argparse.Namespace) -> int:
    """Print the study in ``args.storage``."""
    path = Path(resolve_storage(args))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such study database")
    store = SQLiteStorage(path, read_only=True)
    try:
        study = store.get_study()
        if study is None:
            print(f"autometa show: error: {path}: the database holds no study", file=sys.stderr)
            return EXIT_USAGE
        check_study(study, str(path))  # every name it records is registered: nothing is run
        if args.csv is not None and str(args.csv) == "-":
            columns, rows = trial_rows(store.get_all_trials())
            writer = csv.DictWriter(sys.stdout, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        elif args.csv is not None:
            if not args.csv.parent.is_dir():
                raise FileNotFoundError(f"--csv {args.csv}: no such folder {args.csv.parent}")
            if args.csv.is_dir():
                raise IsADirectoryError(f"--csv {args.csv}: is a folder, expected a file name")
            trials = store.get_all_trials()
            write_trials_csv(trials, args.csv)
            print(f"wrote {len(trials)} trial(s) to {args.csv}")
        elif args.json:
            result = load_result(store)
            rows = result.trials[: args.top or None]
            data = {
                "study": {k: v for k, v in result.study.to_dict().items() if k != "space_text"},
                "counts": result.counts,
                "usage": vars(result.usage),
                "trials": [
                    {k: v for k, v in t.to_dict().items() if k != "graph_json"}
                    | {"architecture": describe_graph(t.graph)}
                    for t in rows
                ],
                "best": result.best_info.to_dict() if result.best_info is not None else None,
                "final": result.verdict.to_dict() if result.verdict is not None else None,
            }
            print(json.dumps(strict_json(data), indent=2, default=str, allow_nan=False))
        else:
            print(format_study(store, top=args.top, wide=args.wide, errors=args.errors))
    finally:
        store.close()
    return EXIT_OK


def strict_json(value: Any) -> Any:
    """``value`` with every NaN or infinite float as None, so the JSON printed is strict
    (RFC 8259 has no ``NaN`` / ``Infinity``; strict parsers refuse them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def format_study(store: Any, top: int = 20, wide: bool = False, errors: bool = False) -> str:
    """The study header, status counts and leaderboard as text.

    Args:
        store: the study's storage.
        top: rows of the leaderboard (0: all).
        wide: architectures in full (default: cut at :data:`ARCHITECTURE_CHARS`).
        errors: add every failed trial's error in full (the table cuts them).
    """
    result = load_result(store)
    study, usage = result.study, result.usage
    lines = [
        f"study: {store}",
        f"  space {study.space_name!r} ({study.space_source or 'dict'}, hash "
        f"{study.space_hash[:12]}), strategy {study.strategy!r}, seed {study.seed}",
        f"  evaluator {_evaluator_label(study)}; autometa "
        f"{study.versions.get('autometa', '?')}, torch {study.versions.get('torch', '?')}, "
        f"Python {study.versions.get('python', '?')}",
        "  trials: " + ", ".join(f"{n} {s.lower()}" for s, n in result.counts.items() if n),
        *_holder(store),
        f"  spent: {format_seconds(usage.seconds)} over all sessions, "
        f"{usage.meta_iterations} meta-iterations",
        f"  {result.best_info.describe()}" if result.best_info is not None else "  best: none",
        "",
    ]
    header = ["rank", "trial", "state", "search score", "final mean", "fidelity", "params",
              "time", "device", "key", "architecture", "note"]  # fmt: skip
    cut = None if wide else ARCHITECTURE_CHARS
    rows = []
    for rank, trial in enumerate(result.trials[: top or None], start=1):
        params = trial.objectives.get("params", trial.metrics.get("params"))
        note = trial.error or (f"= trial {trial.duplicate_of}" if trial.duplicate_of else "")
        rows.append([
            str(rank) if trial.has_score and trial.state.name == "DONE" else "-",
            str(trial.number),
            trial.state.name.lower(),
            f"{trial.score:.4f}" if trial.has_score else "-",
            "-" if trial.final_mean is None else f"{trial.final_mean:.4f}",
            "-" if trial.fidelity is None else str(trial.fidelity),
            "-" if not isinstance(params, (int, float)) or math.isnan(params) else f"{params:g}",
            "-" if trial.wall_time is None else f"{trial.wall_time:.1f}s",
            trial.device or "-",
            trial.key[:12],
            describe_graph(trial.graph, max_chars=cut),
            note if len(note) <= NOTE_CHARS else note[: NOTE_CHARS - 1] + "…",
        ])  # fmt: skip
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    if top and len(result.trials) > top:
        lines.append(f"... {len(result.trials) - top} more (--top 0 shows all)")
    if result.verdict is not None:
        lines += ["", *_format_verdict(result.verdict)]
    failed = [t for t in result.trials if t.state.name == "FAILED"]
    shown = {t.number for t in result.trials[: top or None]}
    if errors and failed:
        lines += ["", "errors:"]
        for t in sorted(failed, key=lambda t: t.number):
            lines.append(f"  trial {t.number}: {t.error or '(no reason recorded)'}")
    elif any(t.number not in shown or len(t.error or "") > NOTE_CHARS for t in failed):
        lines += ["", "(--errors prints every failed trial's error in full)"]
    if result.failures:  # each kind of failure with its count and first error, not cut
        lines += ["", "failures (the first of each kind in full):"]
        for k in result.failures:
            lines.append(f"  {k.count} x {k.kind}, first trial {k.first}: {k.error}")
    return "\n".join(lines)


def _format_verdict(verdict: Any) -> list[str]:
    """The final stage as a table (per-seed scores, mean, 95% interval) and its sentence."""
    seeds = max((len(e.scores) for e in verdict.entries), default=0)
    header = ["rank", "entry", *[f"seed {i}" for i in range(seeds)], "mean", "95% CI"]
    rows = []
    ranks = verdict.ranks()
    for e in verdict.entries:
        cells = [("-" if s is None else f"{s:.3f}") for s in e.scores]
        cells += [""] * (seeds - len(cells))
        ci = f"[{e.low:.3f}, {e.high:.3f}]" if math.isfinite(e.low) else "-"
        mean = f"{e.mean:.3f}" if math.isfinite(e.mean) else "-"
        mark = " *" if verdict.winner is not None and e.label == verdict.winner.label else ""
        rank = str(ranks[e.label]) if e.label in ranks else "-"
        rows.append([rank, e.label + mark, *cells, mean, ci])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    state = "" if verdict.complete else " (not finished: `autometa resume` completes it)"
    lines = [
        f"final stage: fresh seeds, the same for every entry{state}; rank: finalists by final "
        "mean (* the winner)"
    ]
    for row in [header, *rows]:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    lines += _format_confirmation(verdict.confirmation)
    lines.append("")
    lines.append(verdict.sentence())
    return lines


def _format_confirmation(confirmation: Any) -> list[str]:
    """The winner and its rival on the confirmation seeds, one row each."""
    if confirmation is None:
        return []
    header = ["entry", *[f"seed {i}" for i in range(len(confirmation.seeds))], "mean"]
    rows = []
    for label, scores in ((confirmation.winner, confirmation.winner_scores),
                          (confirmation.rival, confirmation.rival_scores)):  # fmt: skip
        done = [s for s in scores if s is not None]
        mean = f"{sum(done) / len(done):.3f}" if done else "-"
        rows.append([label, *[("-" if s is None else f"{s:.3f}") for s in scores], mean])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "",
        f"confirmation: {len(confirmation.seeds)} further fresh seeds, not used to choose the "
        "winner (they do not re-choose it)",
    ]
    for row in [header, *rows]:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return lines


def _evaluator_label(study: Any) -> str:
    """``'name' (module:Class)``, or the class alone for an unregistered evaluator."""
    name, target = evaluator_name(study.evaluator), study.evaluator.get("target", "?")
    return f"{target} (not registered)" if name is None else f"{name!r} ({target})"


def _holder(store: Any) -> list[str]:
    """A line naming the live search working on the study, if any."""
    session = store.live_session()
    if session is None:
        return []
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(session.started))
    return [f"  running: pid {session.pid} on {session.host or '?'} since {since}"]
