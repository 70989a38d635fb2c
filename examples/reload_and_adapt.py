"""Reload an exported architecture and adapt it to a new task, as MAML does at test time.

An export folder holds an architecture and its *meta-learned initial weights*: a starting
point that is meant to become good at any task of its family after a few policy-gradient
steps. This script

1. makes an export to work with: a small search on ``navigation2d`` exported with
   :func:`autometa.export`, or an existing folder given with ``--export DIR``;
2. rebuilds the policy with :func:`autometa.load` (which checks the folder's hashes first);
3. adapts it to one held-out goal with :func:`autometa.adapt`, the evaluator's own inner loop,
   and prints the mean return before adaptation and after each step;
4. compares what the exported and the adapted policy do on a few positions, checks that the
   exported policy itself was not changed, and that the TorchScript copy in the folder gives
   the same outputs as the reloaded policy.

Run it from the repository root:

    python examples/reload_and_adapt.py --quick   # a 2-trial search at tiny sizes, 3 steps
    python examples/reload_and_adapt.py           # 4 trials at the paper's 100 meta-iterations
                                                  # (about half an hour on one CPU core)
    python examples/reload_and_adapt.py --export runs/examples/first_search/best

It writes ``search.db`` and ``best/`` under ``--out`` (default ``runs/examples/reload_and_adapt``
or ``runs/examples/reload_and_adapt-quick``) unless ``--export`` is given.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import autometa

FAMILY = "navigation2d"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes: a minute or two on 2 CPU cores"
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for search.db and best/")
    parser.add_argument("--export", type=Path, default=None, help="reuse this export folder")
    parser.add_argument("--task", type=int, default=0, help="index of the held-out test task")
    parser.add_argument("--steps", type=int, default=3, help="adaptation steps")
    parser.add_argument("--seed", type=int, default=0, help="search and adaptation seed")
    return parser.parse_args()


def make_export(out: Path, quick: bool, seed: int) -> Path:
    """Run a small search on navigation2d and export its best trial to ``out / "best"``."""
    if quick:
        evaluator = autometa.MAMLEvaluator(
            FAMILY,
            meta_iterations=2,
            num_tasks=4,
            episodes_per_task=4,
            test_tasks=4,
            test_episodes=4,
        )
    else:
        evaluator = autometa.MAMLEvaluator(FAMILY)  # the paper's preset
    result = autometa.search(
        "tiny",
        strategy="random",
        evaluator=evaluator,
        budget=autometa.Budget(trials=2 if quick else 4),
        storage=out / "search.db",
        workers=0 if quick else 1,  # quick: evaluate in this process, no worker start-up
        seed=seed,
    )
    if result.best is None:
        raise SystemExit("no trial succeeded; nothing to export")
    print(
        f"searched {len(result.trials)} trials; best: trial {result.best.number}, "
        f"score {result.best.score:.2f}"
    )
    return autometa.export(result, out / "best", overwrite=True)


def main() -> None:
    args = parse_args()
    if args.export is not None:
        folder = args.export
    else:
        default = "reload_and_adapt-quick" if args.quick else "reload_and_adapt"
        out = args.out or Path("runs/examples") / default
        out.mkdir(parents=True, exist_ok=True)
        folder = make_export(out, args.quick, args.seed)

    # Rebuild the policy. `export_info` is the verified content of model.json: the spaces,
    # the score, the task family and the adaptation settings the evaluator used.
    policy = autometa.load(folder)
    info = policy.export_info
    print(
        f"loaded {folder}: {info['num_params']} parameters, {info['head']} head, "
        f"trained on {info['task_family']['name']}, score {info['score']:.2f}"
    )
    settings = info["adaptation"]
    print(
        f"adaptation settings: fast_lr {settings['fast_lr']}, "
        f"{settings['test_episodes']} episodes per step, later steps x{settings['test_lr_scale']}"
    )

    # The task: held-out test task `--task`, the goal the evaluator also scored on.
    family = autometa.make_task(FAMILY)
    goals = family.test_tasks(max(settings["test_tasks"], args.task + 1), settings["test_seed"])
    goal = goals["goal"][args.task]
    print(f"task {args.task}: goal at ({goal[0].item():+.3f}, {goal[1].item():+.3f})")

    # Adapt. `adapted` is a new policy; `returns` holds the mean return before adaptation
    # (index 0) and after each of the `steps` steps.
    adapted, returns = autometa.adapt(
        policy, FAMILY, task=args.task, steps=args.steps, seed=args.seed
    )
    print()
    print("mean return on the task (higher is better):")
    print(f"  before adaptation: {returns[0]:9.3f}")
    for k, value in enumerate(returns[1:], start=1):
        print(f"  after step {k}:      {value:9.3f}  ({value - returns[0]:+.3f})")

    # Compare the two policies: the mean action at a few positions, and the direction to the
    # goal from there (the policy acts in [-1, 1]; the robot moves by 0.1 * action).
    positions = torch.tensor([[0.0, 0.0], [0.25, 0.0], [0.0, -0.25], [-0.25, 0.25]])
    with torch.no_grad():
        before, _ = policy(positions)
        after, _ = adapted(positions)
    print()
    print(
        f"{'position':>16}  {'goal direction':>16}  {'exported action':>16}  "
        f"{'adapted action':>16}"
    )
    for pos, b, a in zip(positions, before, after):
        direction = (goal - pos) / (goal - pos).norm()
        print(f"{fmt(pos):>16}  {fmt(direction):>16}  {fmt(b):>16}  {fmt(a):>16}")
    change = max(
        (p - q).abs().max().item() for p, q in zip(policy.parameters(), adapted.parameters())
    )
    print(f"largest weight change after {args.steps} steps: {change:.4g}")

    # adapt() works on a copy: the exported policy is what was loaded, and the TorchScript
    # copy in the folder computes the same function.
    fresh = autometa.load(folder)
    unchanged = all(torch.equal(p, q) for p, q in zip(policy.parameters(), fresh.parameters()))
    print(f"exported policy unchanged by adapt: {unchanged}")
    script = folder / "policy.torchscript.pt"
    if script.exists():
        with torch.no_grad():
            traced, _ = torch.jit.load(str(script))(positions)
        error = (traced - before).abs().max().item()
        print(f"TorchScript copy matches the reloaded policy: max difference {error:.2g}")


def fmt(vector: torch.Tensor) -> str:
    """``(+0.123, -0.456)``."""
    return "(" + ", ".join(f"{v:+.3f}" for v in vector.tolist()) + ")"


if __name__ == "__main__":
    main()
