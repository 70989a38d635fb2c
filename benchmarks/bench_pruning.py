"""What pruning and continued ASHA rungs save, and what they cost in the answer.

For each space and search seed, runs the same search (strategy, space, seed, candidate count,
workers) three ways, each followed by the same final stage (top ``--final-top`` distinct
DONE candidates on ``--final-seeds`` fresh seeds, the fresh seeds derived from the search seed
so every way scores its finalists on the same seeds):

- ``full``: every candidate meta-trained for all ``T`` meta-iterations;
- ``median``: the same, with ``pruner="median"`` (Optuna's defaults: 5 startup trials);
- ``asha``: ``ASHA(T // 9, T, eta=3)`` with rungs that continue (rungs T/9, T/3, T).

The table gives, per search: meta-iterations the search spent (summed over its candidates,
rungs included; the final stage is reported apart), wall time, failed and pruned counts, the
final-stage winner's mean with its 95% interval, and whether a pruned search's winner is
within the full search's winner's interval (its mean at least the full winner's lower bound).

From the full searches' DONE trials it also computes the rank correlation (Spearman) between
the training curve at 10%, 25% and 50% of the meta-iterations (the value at that iteration and
the best so far, which is what the pruners compare) and the candidate's search score (the
held-out post-adaptation return), per space.

    python benchmarks/bench_pruning.py --quick     # chain_mlp, 16 candidates, 2 seeds: < 30 min
    python benchmarks/bench_pruning.py             # both shipped spaces, 3 seeds (hours)

Results go to ``benchmarks/results/bench_pruning[_quick].json`` with the machine and versions.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import print_table, save  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

import autometa  # noqa: E402
from autometa.experiment import ASHA, Budget, Final  # noqa: E402
from autometa.meta import MAMLEvaluator  # noqa: E402

EVAL = dict(
    meta_iterations=27,
    num_tasks=8,
    episodes_per_task=4,
    test_tasks=20,
    test_episodes=10,
    family_options={"horizon": 30},
)
"""The evaluation of both sizes: 27 meta-iterations (ASHA rungs of 3, 9 and 27) at 8 tasks x 4
episodes of 30 steps of navigation2d, a held-out test on 20 tasks x 10 episodes. Reduced from
the default (100 meta-iterations, 20 tasks x 20 episodes of 100 steps, test 40 x 40) so that
a search of 16 candidates takes minutes on a 2-core CPU."""

MODES = ("full", "median", "asha")
FRACTIONS = (0.10, 0.25, 0.50)


def _search_iterations(trials: list[Any]) -> int:
    """Meta-iterations the search's candidates ran (rungs counted once each)."""
    total = 0
    for t in trials:
        spent = t.metrics.get("meta_iterations_spent") if isinstance(t.metrics, dict) else None
        if isinstance(spent, int):
            total += spent
    return total


def one_search(space: str, mode: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """One search and its final stage; returns its row (and the DONE trials' curves)."""
    evaluator = MAMLEvaluator("navigation2d", **EVAL, traced=False)
    total = EVAL["meta_iterations"]
    extra: dict[str, Any] = {}
    if mode == "median":
        extra["pruner"] = "median"
    elif mode == "asha":
        extra["fidelity"] = ASHA(total // 9, total, eta=3)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = autometa.search(
            space,
            strategy=args.strategy,
            evaluator=evaluator,
            budget=Budget(trials=args.trials),
            storage=Path(tmp) / "study.db",
            workers=args.workers,
            seed=seed,
            progress=False,
            final=Final(args.final_top, args.final_seeds, ablation=False),
            **extra,
        )
        wall = time.perf_counter() - start
        trials = [t for t in result.trials]
        verdict = result.verdict
        winner = verdict.winner if verdict else None
        curves = [
            {"curve": list(t.metrics.get("learning_curve", [])), "score": t.score}
            for t in trials
            if t.state.name == "DONE" and t.duplicate_of is None and t.fidelity == total
        ]
        return {
            "space": space,
            "mode": mode,
            "seed": seed,
            "candidates": len(trials),
            "meta_iterations": _search_iterations(trials),
            "final_stage_meta_iterations": total * len(result.storage.get_final_runs()),
            "failed": result.counts.get("FAILED", 0),
            "pruned": result.counts.get("PRUNED", 0),
            "failures": sorted({t.error for t in trials if t.error}),
            "wall_time": wall,
            "winner": winner.to_dict() if winner else None,
            "sentence": verdict.sentence() if verdict else "",
            "curves": curves,
        }


def rank_correlations(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Spearman's rho between the curve early on and the search score, per space."""
    out = []
    total = EVAL["meta_iterations"]
    for space in dict.fromkeys(r["space"] for r in rows):
        points = [c for r in rows if r["space"] == space and r["mode"] == "full"
                  for c in r["curves"] if len(c["curve"]) == total]  # fmt: skip
        scores = [p["score"] for p in points]
        for fraction in FRACTIONS:
            step = max(1, round(fraction * total))
            at = [p["curve"][step - 1] for p in points]
            best = [max(p["curve"][:step]) for p in points]
            rho_at = spearmanr(at, scores).statistic if len(points) > 2 else math.nan
            rho_best = spearmanr(best, scores).statistic if len(points) > 2 else math.nan
            out.append({"space": space, "fraction": fraction, "step": step,
                        "candidates": len(points), "rho_value": float(rho_at),
                        "rho_best_so_far": float(rho_best)})  # fmt: skip
        last = [p["curve"][-1] for p in points]
        rho_end = spearmanr(last, scores).statistic if len(points) > 2 else math.nan
        out.append({"space": space, "fraction": 1.0, "step": total, "candidates": len(points),
                    "rho_value": float(rho_end),
                    "rho_best_so_far": float(spearmanr([max(p["curve"]) for p in points],
                                                       scores).statistic)
                    if len(points) > 2 else math.nan})  # fmt: skip
    return out


def _ci(winner: dict[str, Any] | None) -> str:
    if not winner or winner.get("mean") is None:
        return "-"
    low, high = winner.get("low"), winner.get("high")
    if low is None or high is None:
        return f"{winner['label']} {winner['mean']:.2f}"
    return f"{winner['label']} {winner['mean']:.2f} [{low:.2f}, {high:.2f}]"


def _within(row: dict[str, Any], full: dict[str, Any] | None) -> str:
    if row["mode"] == "full" or not full or not full["winner"] or not row["winner"]:
        return "-"
    low = full["winner"].get("low")
    mean = row["winner"].get("mean")
    if low is None or mean is None:
        return "?"
    return "yes" if mean >= low else "no"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="chain_mlp, 2 seeds: < 30 min")
    parser.add_argument("--spaces", nargs="+", default=None)
    parser.add_argument("--seeds", type=int, default=None, help="search seeds (3, quick 2)")
    parser.add_argument("--trials", type=int, default=16, help="candidates per search")
    parser.add_argument("--strategy", default="random")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--final-top", type=int, default=2)
    parser.add_argument("--final-seeds", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    args = parser.parse_args()
    if args.spaces is None:
        args.spaces = ["chain_mlp"] if args.quick else ["chain_mlp", "dag_cell"]
    if args.seeds is None:
        args.seeds = 2 if args.quick else 3
    rows = []
    for seed in range(args.seeds):  # seed-major: a run cut short has every space
        for space in args.spaces:
            for mode in args.modes:
                row = one_search(space, mode, seed, args)
                rows.append(row)
                print(f"{space} seed {seed} {mode}: {row['meta_iterations']} meta-iterations, "
                      f"{row['wall_time']:.0f} s, pruned {row['pruned']}, failed "
                      f"{row['failed']}; {row['sentence']}", flush=True)  # fmt: skip
                _save(args, rows, complete=False)
    full = {(r["space"], r["seed"]): r for r in rows if r["mode"] == "full"}
    print()
    headers = ["space", "seed", "mode", "meta-iterations", "vs full", "wall s", "pruned",
               "failed", "winner final mean [95% CI]", "within full's CI"]  # fmt: skip
    table = []
    for r in rows:
        ref = full.get((r["space"], r["seed"]))
        ratio = (ref["meta_iterations"] / r["meta_iterations"]
                 if ref and r["meta_iterations"] else math.nan)  # fmt: skip
        table.append([r["space"], r["seed"], r["mode"], r["meta_iterations"],
                      f"{ratio:.2f}x fewer", f"{r['wall_time']:.0f}", r["pruned"], r["failed"],
                      _ci(r["winner"]), _within(r, ref)])  # fmt: skip
    print_table(headers, table)
    correlations = rank_correlations(rows)
    if correlations:
        print("\nSpearman rank correlation of the training curve with the search score")
        print_table(
            ["space", "at", "step", "candidates", "value at step", "best so far"],
            [[c["space"], f"{c['fraction']:.0%}", c["step"], c["candidates"],
              f"{c['rho_value']:.2f}", f"{c['rho_best_so_far']:.2f}"]
             for c in correlations],
        )  # fmt: skip
    failures = sorted({f for r in rows for f in r["failures"]})
    print(f"\nfailure reasons: {failures or 'none'}")
    _save(args, rows, complete=True)


def _save(args: argparse.Namespace, rows: list[dict[str, Any]], *, complete: bool) -> None:
    """Write the rows so far (after every search, so a long run killed part-way keeps them)."""
    save(
        "bench_pruning_quick" if args.quick else "bench_pruning",
        {
            "settings": {**vars(args), "evaluation": EVAL},
            "versions": autometa.meta.runtime_versions(),
            "complete": complete,
            "rows": rows,
            "rank_correlation": rank_correlations(rows),
        },
    )


if __name__ == "__main__":
    main()
