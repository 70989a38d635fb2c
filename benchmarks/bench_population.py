"""Candidates per second: one population program against one-by-one and a process pool.

For each population size P, P members of one architecture (a 2x64 tanh policy, each member
with its own seed and its own ``fast_lr``) are scored three ways, timed in alternation in
every round so that clock and load changes hit all three alike:

- ``one process``: ``MAMLEvaluator(graph, seed=...)`` for each member in turn (what a search
  with ``workers=0`` does; the TRPO products traced when the size calls for it);
- ``process pool``: the same calls spread over ``--workers`` processes, each with
  ``torch threads / workers`` threads (what ``--workers N`` does);
- ``population``: ``MAMLEvaluator.evaluate_population`` on all P pairs: one batched program
  (what ``--batch N`` and ``--seeds S`` do).

Also reported, at each size: the seeds path against one after another, alternated in each
round (``evaluate_seeds(graph, 4 seeds)``, what ``--seeds 4`` runs, against the four
evaluations in turn; both the same candidate and seeds), and the fixed cost of a candidate
(build, held-out test, no meta-iteration) alone and as a population member.

Sizes: ``default`` is the paper's 2D navigation evaluation (20 tasks x 20 episodes x 100
steps, test on 40 tasks x 40 episodes), ``quick`` a reduced one (10 x 10 x 50, test 10 x 10).
``--quick`` runs the quick size only (P = 1, 4, 8; 3 meta-iterations); ``--cpu`` runs both
sizes at 3 meta-iterations, P = 1 and 4 (about 10 minutes on 2 cores); with neither, the
default size at ``--meta-iterations`` (default 100), P = 1, 4, 16, 64, for a GPU.

``--members`` (CPU) compares population programs with one-by-one evaluation in one process
at the default size, 2 meta-iterations, P = 1, 4, 8, at 1 and 2 torch threads: seeds of the
2x64 tanh candidate and eight different candidates sampled from the ``dag_cell`` space, with
member 0's batch invariance (see ``_population_members.py``). ``--tiny`` runs any mode at
4 tasks x 4 episodes x 20 steps, test 4 x 4, 2 meta-iterations and P = 1, 2 (unless
``--sizes`` says otherwise): a smoke test of the script in about a minute.

Usage: python benchmarks/bench_population.py [--quick | --cpu | --members] [--tiny]
       [--sizes 1 4 16 64] [--meta-iterations 100] [--repeats 2] [--workers 2]
       [--threads 1 2] [--space-seed 0] [--device cpu]
Writes benchmarks/results/bench_population[_quick|_cpu_both][_tiny]_<device>.json, or with
--members bench_population_members[_tiny]_cpu.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import QUICK, TINY, print_table, save  # noqa: E402
from _population_members import run_members  # noqa: E402

from autometa.graph import mlp_graph  # noqa: E402
from autometa.meta import MAMLEvaluator  # noqa: E402

_POOL_EVALUATOR: MAMLEvaluator | None = None


def member(i: int):
    """Member ``i``: the 2x64 tanh policy with its own step size (seed ``i`` is its own)."""
    return mlp_graph((64, 64), "linear_tanh", {"fast_lr": 0.05 + 0.01 * i}, name="bench")


def _pool_init(evaluator: MAMLEvaluator, threads: int) -> None:
    global _POOL_EVALUATOR
    torch.set_num_threads(threads)
    _POOL_EVALUATOR = evaluator


def _pool_eval(args: tuple[int, str]) -> float:
    i, device = args
    assert _POOL_EVALUATOR is not None
    return float(_POOL_EVALUATOR(member(i), seed=i, device=device).score)


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def measure(args, label: str, options: dict, sizes: list[int], iterations: int) -> dict:
    """The candidates-per-second table and the seeds check at one evaluation size."""
    evaluator = MAMLEvaluator("navigation2d", iterations, keep_state_dict=False, **options)
    threads = torch.get_num_threads()
    pool = ProcessPoolExecutor(
        args.workers, initializer=_pool_init,
        initargs=(evaluator, max(1, threads // args.workers)),
    )  # fmt: skip
    list(pool.map(_pool_eval, [(0, args.device)] * args.workers))  # start the workers
    evaluator(member(0), seed=0, device=args.device)  # warm-up (and the trace, if any)

    def one(p: int):
        return [evaluator(member(i), seed=i, device=args.device).score for i in range(p)]

    def pooled(p: int):
        return list(pool.map(_pool_eval, [(i, args.device) for i in range(p)]))

    def population(p: int):
        pairs = [(member(i), i) for i in range(p)]
        return [r.score for r in evaluator.evaluate_population(pairs, device=args.device)]

    methods = {"one process": one, "process pool": pooled, "population": population}
    times: dict[tuple[str, int], list[float]] = {}
    agree: dict[int, float] = {}
    for _ in range(args.repeats):
        for p in sizes:
            scores = {}
            for name, fn in methods.items():  # alternate the three in every round
                seconds, scores[name] = timed(lambda fn=fn, p=p: fn(p))
                times.setdefault((name, p), []).append(seconds)
            agree[p] = max(abs(a - b) for a, b in zip(scores["population"], scores["one process"]))
    pool.shutdown()
    rows, records = [], []
    for p in sizes:
        base = statistics.median(times[("one process", p)])
        for name in methods:
            wall = statistics.median(times[(name, p)])
            rows.append([p, name, wall, p / wall, base / wall])
            records.append(dict(size=p, method=name, seconds=times[(name, p)],
                                candidates_per_s=p / wall, speedup=base / wall))  # fmt: skip
    print(
        f"\nnavigation2d {label}, {iterations} meta-iterations, {args.device}, {threads} threads"
    )
    print_table(["P", "method", "wall s", "candidates/s", "x one process"], rows)
    print(
        "largest |score difference| population vs alone:",
        {p: f"{d:.2g}" for p, d in agree.items()},
    )

    graph = member(0)
    seeds = [1, 2, 3, 4]
    seed_times: dict[str, list[float]] = {"one after another": [], "seeds path": []}
    fixed: dict[str, list[float]] = {"alone": [], "member of 4": []}
    for _ in range(args.repeats):
        seed_times["one after another"].append(timed(
            lambda: [evaluator(graph, seed=s, device=args.device) for s in seeds]
        )[0])  # fmt: skip
        seed_times["seeds path"].append(timed(
            lambda: evaluator.evaluate_seeds(graph, seeds=seeds, device=args.device)
        )[0])  # fmt: skip
        fixed["alone"].append(timed(
            lambda: evaluator(graph, seed=1, device=args.device, meta_iterations=0)
        )[0])  # fmt: skip
        fixed["member of 4"].append(timed(lambda: evaluator.evaluate_seeds(
            graph, seeds=seeds, device=args.device, meta_iterations=0
        ))[0] / 4)  # fmt: skip
    alone, path = (statistics.median(seed_times[k]) for k in seed_times)
    f1, f4 = (statistics.median(fixed[k]) for k in ("alone", "member of 4"))
    print()
    print_table(
        ["what", "wall s", "ratio"],
        [["4 seeds one after another", alone, 1.0], ["4 seeds, seeds path", path, path / alone],
         ["fixed cost, alone", f1, 1.0], ["fixed cost, per member of 4", f4, f4 / f1]],
    )  # fmt: skip
    return {
        "size": label, "meta_iterations": iterations, "options": dict(options),
        "rows": records, "max_score_difference": agree, "seeds": seed_times,
        "seeds_path_over_one_after_another": path / alone, "fixed_cost": fixed,
        "fixed_member_over_alone": f4 / f1,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true")
    mode.add_argument("--cpu", action="store_true")
    mode.add_argument("--members", action="store_true", help="population vs one-by-one")
    parser.add_argument("--tiny", action="store_true", help="smoke-test size for any mode")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="--members")
    parser.add_argument("--space-seed", type=int, default=0, help="--members: dag_cell draws")
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--meta-iterations", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default=None, help="default: cuda when available")
    args = parser.parse_args()
    if args.members:
        if args.device not in (None, "cpu"):
            sys.exit(f"--device: --members measures on the CPU only, got {args.device!r}")
        if min(args.threads) < 1:
            sys.exit(f"--threads: expected positive integers, got {args.threads}")
        run_members(args, *(("tiny", TINY) if args.tiny else ("20x20x100", {})))
        return
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.tiny:
        iterations = args.meta_iterations or 2
        runs = [("tiny", TINY, args.sizes or [1, 2], iterations)]
        name = "bench_population_tiny"
    elif args.quick:
        runs = [("10x10x50", QUICK, args.sizes or [1, 4, 8], args.meta_iterations or 3)]
        name = "bench_population_quick"
    elif args.cpu:
        sizes, iterations = args.sizes or [1, 4], args.meta_iterations or 3
        runs = [("10x10x50", QUICK, sizes, iterations), ("20x20x100", {}, sizes, iterations)]
        name = "bench_population_cpu_both"
    else:
        runs = [("20x20x100", {}, args.sizes or [1, 4, 16, 64], args.meta_iterations or 100)]
        name = "bench_population"
    results = [measure(args, *run) for run in runs]
    save(f"{name}_{args.device.split(':')[0]}", {
        "workers": args.workers, "threads": torch.get_num_threads(), "runs": results,
    })  # fmt: skip


if __name__ == "__main__":
    main()
