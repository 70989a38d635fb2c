"""Multi-objective search with NSGA-II: a good score for as few parameters as possible.

Small policies are cheaper to run and to adapt; large ones may meta-learn better. Instead of
one best architecture, NSGA-II (``strategy="nsga2"``) looks for the *Pareto front*: the
architectures that no other one beats on both score and size. This script shows

1. how the second objective reaches the strategy: every evaluator reports
   ``EvalResult.objectives["params"]`` (the policy's parameter count), and the search tells a
   two-objective strategy the pair ``(score, -log10(params))``, both to be maximised;
2. a search with ``strategy="nsga2"`` and its options (population size);
3. the Pareto front of the stored trials, computed with :func:`autometa.export.pareto_front`;
4. the plots of the study (progress, score against size with the front, the best graph),
   written with :func:`autometa.export.plot`.

Quick mode scores candidates with :class:`autometa.SyntheticObjective`, a cheap stand-in for
MAML whose score peaks at a medium size (about 8,000 parameters): it runs in seconds and shows
the mechanics, but says nothing about how well an architecture meta-learns. Full mode uses
:class:`autometa.MAMLEvaluator` on ``navigation2d``.

Run it from the repository root:

    python examples/multi_objective.py --quick   # synthetic objective, 32 trials: a minute or two
    python examples/multi_objective.py           # MAML, 48 trials of 30 meta-iterations
                                                 # (several hours on one CPU core; use
                                                 # --workers or a GPU)

It writes ``search.db`` and ``plots/`` (``progress.png``, ``pareto.png``, ``best_graph.png``,
``trials.csv``) under ``--out`` (default ``runs/examples/multi_objective`` or
``runs/examples/multi_objective-quick``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import autometa
from autometa.export import pareto_front, plot


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="synthetic objective: a minute or two on 2 CPU cores"
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for search.db and plots/")
    parser.add_argument("--trials", type=int, default=None, help="trial budget (quick: 32)")
    parser.add_argument("--workers", type=int, default=1, help="parallel MAML evaluations")
    parser.add_argument("--seed", type=int, default=0, help="search seed")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    out = args.out or Path("runs/examples") / (
        "multi_objective-quick" if args.quick else "multi_objective"
    )
    out.mkdir(parents=True, exist_ok=True)

    # The space: 1-4 dense layers of 32-128 units, so sizes range over two orders of magnitude.
    space = autometa.load_space("chain_mlp")

    # The evaluator. Both report objectives={"params": ...} next to the score, which is what
    # a two-objective strategy is told about besides the score.
    if args.quick:
        evaluator = autometa.SyntheticObjective()  # obs_dim=2, act_dim=2: navigation2d's sizes
        trials, population, workers = args.trials or 32, 8, 0  # milliseconds: no workers
    else:
        evaluator = autometa.MAMLEvaluator("navigation2d", meta_iterations=30)
        trials, population, workers = args.trials or 48, 12, args.workers

    # NSGA-II keeps a population of `population_size`; each generation is chosen from parents
    # and children by non-dominated sorting and crowding distance on (score, -log10(params)).
    result = autometa.search(
        space,
        strategy="nsga2",
        strategy_options={"population_size": population},
        evaluator=evaluator,
        budget=autometa.Budget(trials=trials),
        storage=out / "search.db",
        workers=workers,
        seed=args.seed,
    )
    done = [t for t in result.trials if t.has_score and "params" in t.objectives]
    print(
        f"nsga2 on {space.name!r}: {len(result.trials)} trials, {len(done)} scored, "
        f"population {population}"
    )

    # The Pareto front: points (params, score, trial number); a point is on the front when
    # every trial with at most as many parameters scores lower.
    front = pareto_front([(t.objectives["params"], t.score, t.number) for t in done])
    by_number = {t.number: t for t in done}
    print()
    print(f"Pareto front ({len(front)} of {len(done)} trials): fewer parameters or a higher score")
    print(f"{'trial':>5}  {'params':>7}  {'score':>8}  architecture")
    for params, score, number in front:
        values = by_number[number].values
        layers = [
            f"{values[f'l{i}.width']}{values[f'l{i}.activation'][0]}"
            + ("+r" if values.get(f"l{i}.residual") else "")
            for i in range(values["layers"])
        ]
        print(f"{number:>5}  {int(params):>7}  {score:8.4f}  {'-'.join(layers)}")
    print("(architecture: layer widths with t=tanh, r=relu, e=elu activation; +r = residual)")

    # The plots: progress, score vs parameters with the front, the best graph, and a CSV.
    written = plot(result.storage, out / "plots")
    print()
    print(f"plots written to {out / 'plots'}: {', '.join(sorted(p.name for p in written))}")


if __name__ == "__main__":  # worker processes import this module: keep the guard
    main()
