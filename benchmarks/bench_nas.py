"""Real searches through the final stage: what a NAS result on navigation2d looks like.

For each space (``dag_cell``, ``chain_mlp``), strategy (``ga``, ``random``) and search seed,
runs ``autometa.search`` with the MAML evaluator on ``navigation2d`` and the default final
stage (top 3 distinct candidates on 3 fresh seeds) plus the built-in baselines
``maml-relu-2x100`` and ``tanh-2x64`` and the two ablation cells. The table gives, per
search: the winner's final mean and 95% interval, each baseline's and ablation cell's mean,
the winner's paired margin over the best baseline, candidates evaluated, failures and wall
time. Results go to ``benchmarks/results/bench_nas[_quick].json`` with the machine, device
and versions.

    python benchmarks/bench_nas.py              # paper-size evaluation (hours on a CPU)
    python benchmarks/bench_nas.py --quick      # reduced evaluation: minutes on a 2-core CPU
    python benchmarks/bench_nas.py --device cuda --workers 4
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import print_table, save  # noqa: E402

import autometa  # noqa: E402
from autometa.experiment import Budget, Final  # noqa: E402
from autometa.meta import MAMLEvaluator  # noqa: E402

BASELINES = ("maml-relu-2x100", "tanh-2x64")
QUICK_EVAL = dict(
    meta_iterations=3,
    num_tasks=5,
    episodes_per_task=5,
    test_tasks=5,
    test_episodes=5,
    family_options={"horizon": 30},
)
"""The reduced evaluation of ``--quick``: every stage runs, at a size that fits minutes."""


def one_search(space: str, strategy: str, seed: int, args: argparse.Namespace) -> dict:
    """One search with its final stage; returns the row's numbers."""
    options = QUICK_EVAL if args.quick else {}
    evaluator = MAMLEvaluator("navigation2d", **options)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = autometa.search(
            space,
            strategy=strategy,
            evaluator=evaluator,
            budget=Budget(trials=args.trials),
            storage=Path(tmp) / "study.db",
            workers=args.workers,
            seed=seed,
            progress=False,
            final=Final(args.final_top, args.final_seeds, BASELINES),
        )
        wall = time.perf_counter() - start
        verdict = result.verdict
        entries = {e.label: e for e in verdict.entries} if verdict else {}
        row = {
            "space": space,
            "strategy": strategy,
            "seed": seed,
            "candidates": len(result.trials),
            "failed": result.counts.get("FAILED", 0),
            "failures": sorted({t.error for t in result.trials if t.error}),
            "wall_time": wall,
            "sentence": verdict.sentence() if verdict else "",
            "entries": [e.to_dict() for e in verdict.entries] if verdict else [],
            "margins": [m.to_dict() for m in verdict.margins] if verdict else [],
        }
        winner = verdict.winner if verdict else None
        row["winner"] = winner.to_dict() if winner else None
        for name in BASELINES:
            e = entries.get(f"baseline {name}")
            row[name] = e.mean if e else math.nan
        ablations = [e for e in entries.values() if e.kind == "ablation"]
        row["ablation"] = [(e.label, e.mean) for e in ablations]
        best_base = max(
            (m for m in (verdict.margins if verdict else []) if m.kind == "baseline"),
            key=lambda m: -m.difference,
            default=None,
        )
        row["margin_vs_best_baseline"] = best_base.to_dict() if best_base else None
    return row


def _ci(entry: dict | None) -> str:
    if not entry or entry.get("mean") is None:
        return "-"
    if entry.get("low") is None:
        return f"{entry['mean']:.2f}"
    return f"{entry['mean']:.2f} [{entry['low']:.2f}, {entry['high']:.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced evaluation, minutes")
    parser.add_argument("--spaces", nargs="+", default=["dag_cell", "chain_mlp"])
    parser.add_argument("--strategies", nargs="+", default=["ga", "random"])
    parser.add_argument("--seeds", type=int, default=3, help="search seeds per configuration")
    parser.add_argument("--trials", type=int, default=None, help="default 24, quick 6")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--final-top", type=int, default=3)
    parser.add_argument("--final-seeds", type=int, default=3)
    args = parser.parse_args()
    if args.trials is None:
        args.trials = 6 if args.quick else 24
    rows = []
    for space in args.spaces:
        for strategy in args.strategies:
            for seed in range(args.seeds):
                row = one_search(space, strategy, seed, args)
                rows.append(row)
                print(f"{space} {strategy} seed {seed}: {row['sentence']}", flush=True)
    print()
    headers = [
        "space", "strategy", "seed", "winner (final mean [95% CI])", *BASELINES,
        "margin vs best baseline", "ablation cells", "candidates", "failed", "wall s",
    ]  # fmt: skip
    table = []
    for r in rows:
        margin = r["margin_vs_best_baseline"]
        table.append([
            r["space"], r["strategy"], r["seed"],
            (r["winner"]["label"] + " " + _ci(r["winner"])) if r["winner"] else "-",
            *(f"{r[name]:.2f}" for name in BASELINES),
            "-" if not margin or margin["difference"] is None else
            f"{margin['difference']:+.2f} [{margin['low'] or math.nan:+.2f}, "
            f"{margin['high'] or math.nan:+.2f}]",
            "; ".join(f"{label.split(' ', 1)[1]}: {mean:.2f}" for label, mean in r["ablation"]),
            r["candidates"], r["failed"], f"{r['wall_time']:.0f}",
        ])  # fmt: skip
    print_table(headers, table)
    failures = sorted({f for r in rows for f in r["failures"]})
    print(f"\nfailure reasons: {failures or 'none'}")
    save(
        "bench_nas_quick" if args.quick else "bench_nas",
        {
            "settings": {**vars(args), "evaluation": QUICK_EVAL if args.quick else "default"},
            "versions": autometa.meta.runtime_versions(),
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
