"""Does it meta-learn? MAML vs random init vs multi-task pretraining on 2D navigation.

The ordering of the MAML paper's navigation figure (Finn et al. 2017, Fig. 4): after one (and
three) policy-gradient steps on held-out goals, the MAML initialisation should reach a clearly
higher return than (a) the same architecture from random initialisation and (b) the same
architecture pretrained on the task mixture without the MAML objective, all adapted the same
way (step ``fast_lr``, then ``fast_lr * test_lr_scale``).

- ``maml``: ``MAMLEvaluator`` with the paper's 2D-navigation preset (TRPO, second order);
- ``pretrained``: the same evaluator with ``inner_steps=0`` (TRPO on the task mixture) and
  twice the episodes per task, so it uses the same env steps as MAML;
- ``random``: no meta-training (``meta_iterations=0``).

Usage: ``python benchmarks/bench_maml_navigation.py [--quick] [--iterations N] [--seed S]``.
``--quick`` runs a reduced size in a few minutes on a CPU. Prints the table and writes
``benchmarks/results/bench_maml_navigation[_quick].json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, save  # noqa: E402
from bench_maml_speed import mlp_graph  # noqa: E402

from autometa.meta import MAMLEvaluator  # noqa: E402

PAPER = {  # Finn et al. 2017, Fig. 4 (cbfinn/maml_rl's icml/ data), 0..3 steps
    "maml": [-40.41, -11.68, -3.33, -3.23],
    "pretrained": [-40.81, -19.73, -11.72, -8.47],
    "random": [-82.66, -57.96, -53.84, -46.81],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced size, a few minutes")
    parser.add_argument("--iterations", type=int, default=None, help="meta-iterations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes: dict = {}
    if args.quick:
        sizes = dict(num_tasks=10, episodes_per_task=10, test_tasks=20, test_episodes=20)
    iterations = args.iterations or (30 if args.quick else 100)
    episodes = sizes.get("episodes_per_task", 20)
    methods = {
        "maml": dict(meta_iterations=iterations),
        "pretrained": dict(
            meta_iterations=iterations, inner_steps=0, episodes_per_task=2 * episodes
        ),
        "random": dict(meta_iterations=0),
    }
    graph = mlp_graph()
    rows, record = [], {"iterations": iterations, "sizes": sizes, "seed": args.seed, "runs": {}}
    for name, options in methods.items():
        start = time.perf_counter()
        result = MAMLEvaluator("navigation2d", **{**sizes, **options})(
            graph, seed=args.seed, device=args.device
        )
        wall = time.perf_counter() - start
        if not result.ok:
            raise SystemExit(f"{name} failed: {result.error}")
        m = result.metrics
        rows.append([name, *m["returns_by_step"], m["meta_iterations"], m["env_steps"], wall])
        record["runs"][name] = {
            k: m[k]
            for k in (
                "returns_by_step",
                "learning_curve",
                "meta_train_env_steps",
                "env_steps",
                "meta_iterations",
                "config",
            )
        }
        record["runs"][name]["wall_time"] = wall
        print(f"{name}: {m['returns_by_step']} ({wall:.0f} s)", flush=True)
    print(
        f"\nnavigation2d, 2x64 tanh, held-out test tasks, mean return after k steps "
        f"(seed {args.seed}, device {args.device})"
    )
    print_table(
        [
            "method",
            "0 steps",
            "1 step",
            "2 steps",
            "3 steps",
            "meta-iterations",
            "env steps",
            "wall s",
        ],
        rows,
    )
    print("\npaper (Fig. 4, 500 meta-iterations, step 0.5 then 0.25 in the original code)")
    print_table(
        ["method", "0 steps", "1 step", "2 steps", "3 steps"], [[k, *v] for k, v in PAPER.items()]
    )
    record["paper"] = PAPER
    save("bench_maml_navigation" + ("_quick" if args.quick else ""), record)


if __name__ == "__main__":
    main()
