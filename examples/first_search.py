"""A first architecture search: policies for 2D navigation, scored by MAML.

This script walks through the whole pipeline once:

1. load a search space shipped with autometa (``chain_mlp``, or ``tiny`` in quick mode; both
   are YAML files, see ``autometa spaces``): each point of it is a policy architecture;
2. score candidates with :class:`autometa.MAMLEvaluator`: every candidate's policy is
   meta-trained with MAML on the ``navigation2d`` task family (point robots that must find a
   goal), then adapted for a few policy-gradient steps on fixed held-out goals; the score is
   the mean return after one step of adaptation (higher is better);
3. run :func:`autometa.search` with a random strategy and a :class:`autometa.Budget`; every trial
   is written to a SQLite file as it happens, so the same call on the same file resumes;
4. print the leaderboard and export the best architecture with :func:`autometa.export`.

Run it from the repository root:

    python examples/first_search.py --quick   # tiny space, 3 small trials: a minute or two
    python examples/first_search.py           # chain_mlp.yaml, 20 trials at the paper's
                                              # 100 meta-iterations (several minutes per trial
                                              # on one CPU core; add --workers or a GPU)

It writes ``search.db`` (the study) and ``best/`` (the exported policy) under ``--out``
(default ``runs/examples/first_search`` or ``runs/examples/first_search-quick``). Running it
again with the same ``--out`` resumes the stored study instead of starting over.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import autometa


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes: a minute or two on 2 CPU cores"
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for search.db and best/")
    parser.add_argument("--trials", type=int, default=None, help="trial budget (quick: 3)")
    parser.add_argument("--workers", type=int, default=1, help="parallel evaluations (0: inline)")
    parser.add_argument("--seed", type=int, default=0, help="search seed")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    out = args.out or Path("runs/examples") / (
        "first_search-quick" if args.quick else "first_search"
    )
    out.mkdir(parents=True, exist_ok=True)

    # 1. The search space: a YAML file describing a family of policy graphs.
    space = autometa.load_space("tiny" if args.quick else "chain_mlp")
    print(f"space {space.name!r}: {space.description}")

    # 2. The evaluator. MAMLEvaluator starts from the paper's preset for the task family
    #    (20 tasks x 20 episodes per meta-iteration, 100 meta-iterations, TRPO outer step, 40
    #    held-out test tasks) and any MAMLConfig field can be overridden by keyword. Quick mode
    #    shrinks everything so that one evaluation takes a second or two on a CPU; its scores
    #    are only a smoke test, not a meaningful ranking.
    if args.quick:
        evaluator = autometa.MAMLEvaluator(
            "navigation2d",
            meta_iterations=2,
            num_tasks=4,
            episodes_per_task=4,
            test_tasks=4,
            test_episodes=4,
        )
    else:
        evaluator = autometa.MAMLEvaluator("navigation2d")  # the preset: 100 meta-iterations
    print(
        f"evaluator: navigation2d, {evaluator.config.meta_iterations} meta-iterations of "
        f"{evaluator.config.num_tasks} tasks x {evaluator.config.episodes_per_task} episodes"
    )

    # 3. The search. The budget stops it at whichever limit comes first; the SQLite file is
    #    the source of truth (trials, the strategy's state, the meta-learned weights).
    trials = args.trials or (3 if args.quick else 20)
    result = autometa.search(
        space,
        strategy="random",
        evaluator=evaluator,
        budget=autometa.Budget(trials=trials),
        storage=out / "search.db",
        workers=args.workers,
        seed=args.seed,
    )
    counts = ", ".join(f"{n} {state.lower()}" for state, n in result.counts.items() if n)
    print(f"search stopped: {result.stop_reason}; {counts}")

    # 4. The leaderboard: result.trials is every trial, best first.
    print()
    print(f"{'trial':>5}  {'state':<6}  {'score':>9}  {'before':>9}  {'params':>7}  architecture")
    for trial in result.trials:
        metrics = trial.metrics
        score = f"{trial.score:9.2f}" if trial.has_score else f"{'-':>9}"
        before = metrics.get("pre_return")
        before = f"{before:9.2f}" if isinstance(before, float) else f"{'-':>9}"
        params = metrics.get("params", "-")
        print(
            f"{trial.number:>5}  {trial.state.name:<6}  {score}  {before}  {params:>7}  "
            f"{describe(space, trial.values)}"
        )
        if trial.error:
            print(f"{'':>7}error: {trial.error}")
    print(
        "(score: mean return on the held-out goals after one adaptation step; "
        "before: the same without adaptation)"
    )

    # 5. Export the best trial: graph, meta-learned weights, TorchScript/ONNX copies, a card.
    if result.best is None:
        raise SystemExit("no trial succeeded; nothing to export")
    folder = autometa.export(result, out / "best", overwrite=True)
    print()
    by_step = result.best.metrics["returns_by_step"]
    print(
        f"best: trial {result.best.number}, score {result.best.score:.2f}; held-out return "
        "after k adaptation steps: " + ", ".join(f"{r:.2f}" for r in by_step)
    )
    print(f"exported to {folder}: {', '.join(sorted(p.name for p in folder.iterdir()))}")
    print(f"study: {out / 'search.db'} (autometa show {out / 'search.db'})")


def describe(space, values: dict) -> str:
    """A candidate's decision values in the space's order, e.g. ``layers=2 l0.width=32 ...``."""
    parts = []
    for dim in space.dimensions:
        if dim.name in values:  # inactive dimensions (l1.* when layers=1) are left out
            value = values[dim.name]
            parts.append(
                f"{dim.name}={value:.3g}" if isinstance(value, float) else f"{dim.name}={value}"
            )
    return " ".join(parts)


if __name__ == "__main__":  # worker processes import this module: keep the guard
    main()
