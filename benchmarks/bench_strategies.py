"""Compare every registered strategy on the synthetic objective: best-so-far against trials.

Each strategy runs ``--trials`` sequential trials (ask one, tell one) against
``SyntheticObjective`` for each of ``--seeds`` seeds; the table gives the median over seeds
of the best score after 10, 25 and all trials, and whether that final median beats random
search's. Results go to ``benchmarks/results/bench_strategies_<space>.json`` and a plot of
the median best-so-far curves to the matching ``.png``.

    python benchmarks/bench_strategies.py                    # chain_mlp, 50 trials, 5 seeds
    python benchmarks/bench_strategies.py --space dag_cell
    python benchmarks/bench_strategies.py --quick            # 20 trials, 2 seeds, a few strategies
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import RESULTS, print_table, save  # noqa: E402

from autometa.meta import SyntheticObjective  # noqa: E402
from autometa.space import load_space  # noqa: E402
from autometa.strategies import STRATEGIES, make_strategy  # noqa: E402

MODEL_BASED = ("bo-", "nni-tpe", "nni-gp", "nni-anneal")
QUICK = ["random", "ga", "regularized-evolution", "bo-et", "nni-tpe"]


def run(name: str, space_name: str, seed: int, trials: int) -> dict:
    """One run: the best-so-far curve (NaN before the first success) and the wall time."""
    space = load_space(space_name)
    objective = SyntheticObjective()
    try:
        strategy = make_strategy(name, space, seed=seed)
    except (RuntimeError, ValueError) as exc:
        return {"error": str(exc)}
    best, curve = -math.inf, []
    start = time.perf_counter()
    while len(curve) < trials:
        batch = strategy.ask(1)
        if not batch:
            break
        result = objective(batch[0].graph, seed=seed)
        value = result.score if result.ok else None
        if strategy.n_objectives > 1 and value is not None:
            value = (value, -math.log10(max(result.objectives["params"], 1.0)))
        strategy.tell(batch[0], value)
        if result.ok:
            best = max(best, result.score)
        curve.append(best if math.isfinite(best) else math.nan)
    return {"curve": curve, "seconds": time.perf_counter() - start}


def median_curve(curves: list[list[float]], trials: int) -> list[float]:
    """Median over runs at each trial (a run that stopped early keeps its last best)."""
    padded = [c + [c[-1]] * (trials - len(c)) if c else [math.nan] * trials for c in curves]
    return [statistics.median(c[t] for c in padded) for t in range(trials)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="chain_mlp", help="a shipped space (file stem)")
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="processes running the runs")
    parser.add_argument("--strategies", nargs="*", help="names (default: all registered)")
    parser.add_argument("--quick", action="store_true", help="20 trials, 2 seeds, 5 strategies")
    parser.add_argument("--replot", action="store_true", help="redraw the plot from the JSON")
    args = parser.parse_args()
    if args.replot:
        stem = f"bench_strategies_{args.space}{'_quick' if args.quick else ''}"
        saved = json.loads((RESULTS / f"{stem}.json").read_text())
        args.trials, args.seeds = saved["trials"], saved["seeds"]
        plot(saved["strategies"], args, RESULTS / f"{stem}.png")
        return
    if args.quick:
        args.trials, args.seeds = 20, 2
        args.strategies = args.strategies or QUICK
    names = args.strategies or STRATEGIES.names()
    if "random" not in names:
        names = ["random", *names]

    jobs = {(n, s): None for n in names for s in range(args.seeds)}
    with ProcessPoolExecutor(args.workers) as pool:
        futures = {k: pool.submit(run, k[0], args.space, k[1], args.trials) for k in jobs}
        runs = {k: f.result() for k, f in futures.items()}

    marks = [m for m in (10, 25, args.trials) if m <= args.trials]
    summary, rows, notes = {}, [], []
    for name in names:
        results = [runs[name, s] for s in range(args.seeds)]
        if "error" in results[0]:
            summary[name] = {"error": results[0]["error"]}
            notes.append(f"{name}: not run: {results[0]['error']}")
            continue
        curve = median_curve([r["curve"] for r in results], args.trials)
        summary[name] = {
            "median_best": curve,
            "curves": [r["curve"] for r in results],
            "seconds_per_trial": statistics.median(
                r["seconds"] / max(len(r["curve"]), 1) for r in results
            ),
        }
    random_final = summary["random"]["median_best"][-1]
    for name in names:
        if "error" in summary[name]:
            continue
        curve = summary[name]["median_best"]
        beats = curve[-1] > random_final if name != "random" else None
        summary[name]["beats_random"] = beats
        row = [name, *(curve[m - 1] for m in marks)]
        row += ["-" if beats is None else ("yes" if beats else "NO")]
        row += [summary[name]["seconds_per_trial"]]
        rows.append(row)
        if name.startswith(MODEL_BASED) and beats is False:
            notes.append(
                f"{name}: median best at {args.trials} trials ({curve[-1]:.4f}) does not beat "
                f"random search ({random_final:.4f}) on {args.space}"
            )

    print(f"space {args.space}: median over {args.seeds} seeds of the best score so far")
    headers = ["strategy", *(f"best@{m}" for m in marks), "beats random", "s/trial"]
    print_table(headers, rows)
    for note in notes:
        print("note:", note)
    suffix = "_quick" if args.quick else ""
    stem = f"bench_strategies_{args.space}{suffix}"
    save(
        stem,
        {
            "space": args.space,
            "trials": args.trials,
            "seeds": args.seeds,
            "strategies": summary,
            "notes": notes,
        },
    )
    plot(summary, args, RESULTS / f"{stem}.png")


def plot(summary: dict, args: argparse.Namespace, path: Path) -> None:
    """Median best-so-far curves, one line per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6))
    styles = ["-", "-.", ":"]
    for i, (name, entry) in enumerate(summary.items()):
        if "median_best" in entry:
            style = "--" if name == "random" else styles[i % len(styles)]
            ax.plot(range(1, args.trials + 1), entry["median_best"], style, label=name, lw=1.5)
    finals = sorted(e["median_best"][-1] for e in summary.values() if "median_best" in e)
    start = summary["random"]["median_best"][0]
    ax.set_ylim(min(start, finals[len(finals) // 4]) - 0.1, finals[-1] + 0.05)
    ax.set_xlabel("trials")
    ax.set_ylabel("best score so far (median over seeds)")
    ax.set_title(
        f"strategies on {args.space} (synthetic objective, {args.seeds} seeds; "
        "curves far below random are cut off)"
    )
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
