"""``bench_population.py --members``: population programs against one-by-one at P = 1, 4, 8.

Two kinds of population, each scored two ways in one process, alternated in every round (the
order flips from round to round) so that clock and load changes hit both alike:

- ``seeds``: P seeds of one candidate (the 2x64 tanh policy, ``mlp_graph((64, 64))``):
  ``MAMLEvaluator.evaluate_seeds(graph, seeds=[0..P-1])`` against ``evaluator(graph, seed=s)``
  for each seed in turn;
- ``dag_cell``: the first P of eight candidates sampled from the shipped ``dag_cell`` space
  (``load_space("dag_cell").sample(rng)``, each with its own architecture, ``fast_lr`` and
  ``inner_steps``), seed 0 each: ``evaluate_population(pairs)`` against one call per pair.

Each at every torch thread count in ``--threads`` (``torch.set_num_threads``; launch under
``taskset -c 1`` to hold the 1-thread numbers to one core). Candidates per second are P over
the median wall time; the ratio is population over one-by-one (above 1: the population is
faster).

Batch invariance: member 0's result from the population of P = 1 and from the largest P are
compared bitwise (``score.hex()`` and ``metrics["learning_curve"]``); where they differ the
largest absolute differences are recorded. Member 0 alone against member 0 one-by-one is
recorded the same way.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from typing import Any

import networkx as nx
import numpy as np
import torch
from _common import print_table, save

from autometa.graph import mlp_graph
from autometa.meta import MAMLEvaluator
from autometa.space import load_space

DAG_CANDIDATES = 8


def candidates(kind: str, count: int, space_seed: int) -> list[tuple[nx.DiGraph, int]]:
    """The ``(graph, seed)`` pairs of a population of ``kind``."""
    if kind == "seeds":
        graph = mlp_graph((64, 64), "linear_tanh")
        return [(graph, s) for s in range(count)]
    space, rng = load_space("dag_cell"), np.random.default_rng(space_seed)
    return [(space.sample(rng), 0) for _ in range(count)]


def compare(a: Any, b: Any) -> dict[str, Any]:
    """Whether two results' scores and learning curves are bitwise equal, and how far apart."""
    curve_a = [float(v) for v in a.metrics.get("learning_curve", [])]
    curve_b = [float(v) for v in b.metrics.get("learning_curve", [])]
    score_a, score_b = float(a.score), float(b.score)
    curve_diff = max((abs(x - y) for x, y in zip(curve_a, curve_b)), default=0.0)
    return {
        "bitwise_equal": score_a.hex() == score_b.hex() and curve_a == curve_b,
        "scores_hex": [score_a.hex(), score_b.hex()],
        "score_difference": abs(score_a - score_b) if math.isfinite(score_a - score_b) else None,
        "learning_curve_max_difference": curve_diff if len(curve_a) == len(curve_b) else None,
        "statuses": [a.status, b.status],
    }


def measure_kind(
    evaluator: MAMLEvaluator, kind: str, sizes: list[int], repeats: int, space_seed: int
) -> dict[str, Any]:
    """Times of both ways at every P for one kind, and member 0's invariance checks."""
    pool = candidates(kind, max(sizes), space_seed)

    def one_by_one(p: int) -> list:
        return [evaluator(g, seed=s, device="cpu") for g, s in pool[:p]]

    def population(p: int) -> list:
        if kind == "seeds":
            seeds = [s for _, s in pool[:p]]
            return evaluator.evaluate_seeds(pool[0][0], seeds=seeds, device="cpu")
        return evaluator.evaluate_population(pool[:p], device="cpu")

    ways = {"one-by-one": one_by_one, "population": population}
    times: dict[tuple[str, int], list[float]] = {}
    first: dict[tuple[str, int], Any] = {}
    for r in range(repeats):
        for p in sizes:
            order = list(ways) if r % 2 == 0 else list(reversed(ways))
            for name in order:
                start = time.perf_counter()
                results = ways[name](p)
                times.setdefault((name, p), []).append(time.perf_counter() - start)
                first.setdefault((name, p), results[0])
                failed = [i for i, res in enumerate(results) if res.status != "ok"]
                print(
                    f"round {r + 1}/{repeats} {kind} P={p} {name}: "
                    f"{times[(name, p)][-1]:.2f} s" + (f", failed {failed}" if failed else ""),
                    flush=True,
                )
    rows = []
    for p in sizes:
        walls = {name: statistics.median(times[(name, p)]) for name in ways}
        rows.append({
            "P": p, "seconds": {name: times[(name, p)] for name in ways},
            "candidates_per_s": {name: p / w for name, w in walls.items()},
            "population_over_one_by_one": walls["one-by-one"] / walls["population"],
        })  # fmt: skip
    small, large = min(sizes), max(sizes)
    invariance = {
        f"population P={small} vs P={large}": compare(
            first[("population", small)], first[("population", large)]
        ),
        f"population P={small} vs one-by-one": compare(
            first[("population", small)], first[("one-by-one", small)]
        ),
    }
    described = [
        {"nodes": g.number_of_nodes(), "hyperparameters": g.graph.get("hyperparameters")}
        for g, _ in pool
    ]
    return {"kind": kind, "rows": rows, "member_0": invariance, "candidates": described}


def run_members(args: argparse.Namespace, label: str, options: dict[str, Any]) -> None:
    """The whole ``--members`` mode: every kind at every thread count; table and JSON."""
    iterations = args.meta_iterations or 2
    sizes = args.sizes or ([1, 2] if label == "tiny" else [1, 4, DAG_CANDIDATES])
    evaluator = MAMLEvaluator("navigation2d", iterations, keep_state_dict=False, **options)
    runs, table = [], []
    for threads in args.threads:
        torch.set_num_threads(threads)
        graph = mlp_graph((64, 64), "linear_tanh")
        evaluator(graph, seed=0, device="cpu")  # warm-up: imports, allocator, first trace
        evaluator.evaluate_seeds(graph, seeds=[0, 1], device="cpu")
        for kind in ("seeds", "dag_cell"):
            out = measure_kind(evaluator, kind, sizes, args.repeats, args.space_seed)
            runs.append({"threads": threads, **out})
            for row in out["rows"]:
                rate = row["candidates_per_s"]
                table.append([
                    threads, kind, row["P"], rate["one-by-one"], rate["population"],
                    row["population_over_one_by_one"],
                ])  # fmt: skip
    print(f"\nnavigation2d {label}, {iterations} meta-iterations, cpu, {args.repeats} rounds")
    print_table(
        ["threads", "population", "P", "one-by-one cand/s", "population cand/s", "ratio"], table
    )
    print("\nmember 0, bitwise equal (score and learning curve):")
    for run in runs:
        for what, check in run["member_0"].items():
            moved = "" if check["bitwise_equal"] else (
                f" (score moved {check['score_difference']}, learning curve at most "
                f"{check['learning_curve_max_difference']})"
            )  # fmt: skip
            print(f"  {run['threads']} threads, {run['kind']}, {what}: "
                  f"{check['bitwise_equal']}{moved}")  # fmt: skip
    suffix = "_tiny" if label == "tiny" else ""
    save(f"bench_population_members{suffix}_cpu", {
        "size": label, "options": options, "meta_iterations": iterations, "sizes": sizes,
        "repeats": args.repeats, "threads": args.threads, "space_seed": args.space_seed,
        "runs": runs,
    })  # fmt: skip
