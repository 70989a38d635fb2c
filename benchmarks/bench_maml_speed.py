"""Speed of the batched MAML evaluator against a per-task-loop reference, at equal env steps.

Times, on navigation2d with a 2x64 tanh policy and the paper's sizes (20 tasks x 20 episodes,
horizon 100, one inner step, TRPO with 10 CG iterations):

- ``batched``: ``autometa.meta`` for one candidate, a program of one member (``torch.func``
  over tasks, one tensor program per step; ``trpo_step(..., traced=True)``: the TRPO
  direction from the traced backend of ``autometa.meta.backend`` where it has one for the
  member axis, else the eager products);
- ``batched, eager TRPO products``: the same with ``trpo_step(..., traced=False)``;
- ``loop (view)``: ``autometa.meta.reference.LoopMAML``, the way most public MAML-RL code is
  written: a Python loop over tasks, a gymnasium ``SyncVectorEnv`` of 20 copies of
  ``family.single_env(task)`` per task, ``create_graph=True`` inner steps and double-backprop
  Hessian-vector products;
- ``loop (numpy)``: the same loop over a plain NumPy single-instance env (``--numpy-env``),
  the fastest way to step one 2D-navigation env in Python.

Both do the same env steps per meta-iteration (80,000), so the time ratio is the ratio of env
steps per second. A whole default evaluation (``--eval``) is timed for the batched evaluator;
the reference's is extrapolated from its per-iteration time (it would take hours).

Usage: ``python benchmarks/bench_maml_speed.py [--iterations 3] [--ref-iterations 1]
[--threads N] [--ref-threads N] [--device cpu] [--eval] [--numpy-env] [--first-order]
[--default-malloc] [--quick]``; ``--quick`` runs a tiny size (4 tasks x 4 episodes, horizon 20,
one timed iteration, no reference loop) in seconds, to check that the script runs. Writes
``benchmarks/results/bench_maml_speed_<device>.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, save  # noqa: E402
from _members import build_program  # noqa: E402

from autometa.meta import MAMLEvaluator, config_for  # noqa: E402
from autometa.meta.allocator import tune_cpu_allocator  # noqa: E402
from autometa.meta.reference import LoopMAML  # noqa: E402
from autometa.meta.trpo import trpo_step  # noqa: E402
from autometa.policy import build_policy  # noqa: E402
from autometa.tasks import make_task  # noqa: E402


def mlp_graph(widths=(64, 64), op="linear_tanh"):
    """The 2x64 tanh policy of pytorch-maml-rl's configs as a candidate graph."""
    import networkx as nx

    graph = nx.DiGraph(hyperparameters={}, space="bench")
    graph.add_node("input", op="input")
    prev = "input"
    for i, width in enumerate(widths):
        graph.add_node(f"h{i}", op=op, width=width, merge="sum", residual=False)
        graph.add_edge(prev, f"h{i}", order=0)
        prev = f"h{i}"
    graph.add_node("output", op="output", merge="concat")
    graph.add_edge(prev, "output", order=0)
    return graph


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_batched(
    family, cfg, graph, iterations: int, traced: bool = True
) -> tuple[list[dict], int, float]:
    """Seconds of each batched meta-iteration (after one warm-up), split into sampling
    (rollouts, baselines, inner steps) and the outer TRPO step; env steps per iteration; the
    warm-up iteration's seconds (which include tracing the TRPO program when ``traced``)."""
    program = build_program(graph, family, cfg, [0])
    times, steps = [], 0
    for it in range(iterations + 1):
        _sync(family.device)
        start = time.perf_counter()
        mb = program.meta_batch(it)
        _sync(family.device)
        sampled = time.perf_counter()
        program.meta, loss, finite = trpo_step(
            program.policy, mb, program.meta, cfg, program.knobs, program.active, traced=traced
        )
        bool(finite.all())
        _sync(family.device)
        end, steps = time.perf_counter(), mb.env_steps
        if it > 0:
            times.append({"total": end - start, "sample": sampled - start, "outer": end - sampled})
        else:
            warm_up = end - start
    return times, steps, warm_up


def time_loop(
    family, cfg, graph, iterations: int, make_env=None, threads: int | None = None
) -> tuple[list[float], int]:
    """Seconds of each reference meta-iteration and env steps per iteration (CPU), run with
    ``threads`` torch threads (default: as set)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or previous)
    try:
        return _time_loop(family, cfg, graph, iterations, make_env)
    finally:
        torch.set_num_threads(previous)


def _time_loop(family, cfg, graph, iterations: int, make_env) -> tuple[list[float], int]:
    policy = build_policy(
        graph, family.single_observation_space, family.single_action_space, seed=0
    )
    loop = LoopMAML(policy, family, cfg, seed=0, make_env=make_env)
    times = []
    for it in range(iterations):
        start = time.perf_counter()
        loop.iteration(it)
        times.append({"total": time.perf_counter() - start, **loop.timings})
    return times, loop.env_steps // max(iterations, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--ref-iterations", type=int, default=None, help="default 1 (--quick: 0)")
    parser.add_argument(
        "--ref-threads", type=int, default=None, help="torch threads of the loops (--threads)"
    )
    parser.add_argument(
        "--threads", type=int, default=torch.get_num_threads(), help="torch threads (all cores)"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--eval", action="store_true", help="time a whole default evaluation")
    parser.add_argument("--numpy-env", action="store_true", help="also time a NumPy-env loop")
    parser.add_argument("--first-order", action="store_true", help="first-order MAML (both)")
    parser.add_argument(
        "--default-malloc", action="store_true", help="leave glibc malloc at its defaults"
    )
    parser.add_argument("--quick", action="store_true", help="a tiny size, to check it runs")
    args = parser.parse_args()
    sizes, horizon = {}, {}
    if args.quick:
        sizes, horizon = dict(num_tasks=4, episodes_per_task=4, meta_iterations=2), {"horizon": 20}
        args.iterations = min(args.iterations, 1)
    if args.ref_iterations is None:
        args.ref_iterations = 0 if args.quick else 1
    torch.set_num_threads(args.threads)
    tuned = False if args.default_malloc else tune_cpu_allocator()
    cfg = config_for("navigation2d", first_order=args.first_order, **sizes)
    graph = mlp_graph()
    device = torch.device(args.device)
    cpu_family = make_task("navigation2d", device="cpu", **horizon)
    family = make_task("navigation2d", device=device, **horizon)

    rows, record = [], {"config": cfg.to_dict(), "device": str(device), "runs": {}}
    record["malloc_tuned"] = tuned
    record["threads"] = {"batched": args.threads, "loops": args.ref_threads or args.threads}
    b_times, b_steps, warm_up = time_batched(family, cfg, graph, args.iterations)
    e_times, e_steps, _ = time_batched(family, cfg, graph, args.iterations, traced=False)
    record["batched_warm_up_seconds"] = warm_up
    best = lambda times: min(times, key=lambda t: t["total"])  # noqa: E731
    b_best = best(b_times)
    runs = [
        ("batched", str(device), b_times, b_steps),
        ("batched, eager TRPO products", str(device), e_times, e_steps),
    ]
    if args.ref_iterations > 0:
        loop_args = (cpu_family, cfg, graph, args.ref_iterations)
        runs.append(("loop (view)", "cpu", *time_loop(*loop_args, threads=args.ref_threads)))
        if args.numpy_env:
            from bench_tasks import NumpyNavigation2D

            make = lambda task: NumpyNavigation2D(task["goal"].cpu().numpy())  # noqa: E731
            runs.append(
                (
                    "loop (numpy)",
                    "cpu",
                    *time_loop(*loop_args, make, threads=args.ref_threads),
                )
            )
    for name, dev, times, steps in runs:
        t = best(times)
        median = sorted(x["total"] for x in times)[len(times) // 2]
        rows.append(
            [
                name,
                dev,
                t["total"],
                median,
                t["sample"],
                t["outer"],
                steps,
                steps / t["total"],
                t["total"] / b_best["total"],
                t["sample"] / b_best["sample"],
            ]
        )
        record["runs"][name] = {
            "device": dev,
            "seconds_per_iteration": times,
            "env_steps_per_iteration": steps,
        }
    print(
        f"one meta-iteration, navigation2d, 2x64 tanh, {cfg.num_tasks} tasks x "
        f"{cfg.episodes_per_task} episodes x horizon {family.horizon}, torch threads "
        f"{args.threads} (loops {args.ref_threads or args.threads}), malloc "
        f"{'tuned' if tuned else 'default'}"
    )
    print_table(
        [
            "implementation",
            "device",
            "s / iteration",
            "median s",
            "sampling s",
            "outer step s",
            "env steps / iteration",
            "env steps / s",
            "x batched (iteration)",
            "x batched (sampling)",
        ],
        rows,
    )

    if args.eval:
        evaluator = MAMLEvaluator(
            "navigation2d", family_options=horizon, first_order=args.first_order, **sizes
        )
        _sync(device)
        start = time.perf_counter()
        result = evaluator(graph, seed=0, device=str(device))
        _sync(device)
        wall = time.perf_counter() - start
        eval_rows = [
            [
                "batched",
                str(device),
                cfg.meta_iterations,
                wall,
                result.metrics.get("env_steps"),
                result.score,
            ]
        ]
        for name, dev, times, _ in (r for r in runs if r[0].startswith("loop")):
            eval_rows.append(
                [
                    name + " (extrapolated)",
                    dev,
                    cfg.meta_iterations,
                    best(times)["total"] * cfg.meta_iterations,
                    "",
                    "",
                ]
            )
        size = "tiny" if args.quick else "default"
        print(f"\nwhole {size} evaluation (meta-training + held-out test)")
        print_table(
            ["implementation", "device", "meta-iterations", "wall s", "env steps", "score"],
            eval_rows,
        )
        record["evaluation"] = {
            "wall_time": wall,
            "status": result.status,
            "score": result.score,
            "env_steps": result.metrics.get("env_steps"),
            "error": result.error,
        }
    name = f"bench_maml_speed_{device.type}" + ("_first_order" if args.first_order else "")
    save(name + ("_quick" if args.quick else ""), record)


if __name__ == "__main__":
    main()
