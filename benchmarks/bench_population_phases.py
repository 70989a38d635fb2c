"""Where a population program spends its time, phase by phase, against one-by-one evaluation.

For each population size P, P seeds of one candidate (the 2x64 tanh policy) are scored twice,
in alternation: one after another (``MAMLEvaluator.__call__``, what ``--seeds`` does when the
evaluator runs members alone) and as one population program (the batched path that
``evaluate_population`` may choose). The functions of each phase are wrapped with timers for
the run, so every phase's seconds are summed over the P members (one by one) or counted once
(population):

- rollouts (meta-training), advantages (baseline fits), inner step (inner gradients and update),
- direction (meta-loss, meta-gradient, Fisher-vector products and CG; the traced program where
  the single path traces), line search (the surrogate and KL tests), the rest of the TRPO step,
- held-out test (rollouts and inner steps on the test tasks), and what remains (building the
  policy, bookkeeping).

The size is the paper's 2D navigation evaluation (20 tasks x 20 episodes x 100 steps, test
on 40 tasks x 40 episodes) unless ``--quick`` (10 x 10 x 50, test 10 x 10).

Usage: ``python benchmarks/bench_population_phases.py [--quick] [--sizes 1 2 4]
[--meta-iterations 3] [--threads 1] [--repeats 1]`` (with repeats, the two ways alternate in
every round and the median round is shown). Writes
``benchmarks/results/bench_population_phases[_quick]_cpu.json``.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import importlib  # noqa: E402

from _common import print_table, save  # noqa: E402

from autometa.graph import mlp_graph  # noqa: E402
from autometa.meta import (  # noqa: E402
    MAMLEvaluator,
    _population_eval,
    _population_step,
    inner,
    maml,
    outer,
    population,
    trpo,
)

evaluator_module = importlib.import_module("autometa.meta.evaluator")

QUICK = dict(
    num_tasks=10,
    episodes_per_task=10,
    test_tasks=10,
    test_episodes=10,
    family_options={"horizon": 50},
)
PHASES = (
    "rollouts",
    "advantages",
    "inner step",
    "direction",
    "line search",
    "trpo rest",
    "held-out test",
    "other",
)


class Timers:
    """Exclusive seconds per phase: a wrapped call's time minus that of wrapped calls inside."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._stack: list[list[float]] = []
        self._test = 0

    def wrap(self, label: str, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            self._stack.append([0.0])
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = time.perf_counter() - start
                inner_spent = self._stack.pop()[0]
                name = "held-out test" if self._test else label
                self.seconds[name] += spent - inner_spent
                if self._stack:
                    self._stack[-1][0] += spent

        return timed

    def test_phase(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            self._test += 1
            try:
                return self.wrap("held-out test", fn)(*args, **kwargs)
            finally:
                self._test -= 1

        return timed


@contextmanager
def instrumented(timers: Timers) -> Iterator[None]:
    """Wrap the phase functions of both paths for the duration of the block."""
    patches = [
        (inner, "rollout", timers.wrap("rollouts", inner.rollout)),
        (inner, "batch_advantages", timers.wrap("advantages", inner.batch_advantages)),
        (maml, "sample_inner_loop", timers.wrap("inner step", maml.sample_inner_loop)),
        (outer, "trpo_step", timers.wrap("trpo rest", outer.trpo_step)),
        (trpo, "line_search_values", timers.wrap("line search", trpo.line_search_values)),
        (population, "population_rollout", timers.wrap("rollouts", population.population_rollout)),
        (population, "_advantages", timers.wrap("advantages", population._advantages)),
        (
            population,
            "sample_population_batch",
            timers.wrap("inner step", population.sample_population_batch),
        ),
        (_population_step, "_direction", timers.wrap("direction", _population_step._direction)),
        (
            _population_step,
            "_line_values",
            timers.wrap("line search", _population_step._line_values),
        ),
        (
            population,
            "population_trpo_step",
            timers.wrap("trpo rest", population.population_trpo_step),
        ),
        (
            _population_eval,
            "adapt_population",
            timers.test_phase(_population_eval.adapt_population),
        ),
        (
            evaluator_module,
            "adapt_to_tasks",
            timers.test_phase(evaluator_module.adapt_to_tasks),
        ),
        (
            _population_eval,
            "adapt_to_tasks",
            timers.test_phase(_population_eval.adapt_to_tasks),
        ),
    ]
    backends = dict(trpo.BACKENDS._entries)
    for name in list(backends):
        trpo.BACKENDS._entries[name] = timers.wrap("direction", trpo.BACKENDS.get(name))
    saved = [(module, name, getattr(module, name)) for module, name, _ in patches]
    for module, name, fn in patches:
        setattr(module, name, fn)
    try:
        yield
    finally:
        for module, name, fn in saved:
            setattr(module, name, fn)
        trpo.BACKENDS._entries.update(backends)


def run(fn: Callable[[], object]) -> tuple[float, dict[str, float]]:
    timers = Timers()
    with instrumented(timers):
        start = time.perf_counter()
        fn()
        wall = time.perf_counter() - start
    phases = dict(timers.seconds)
    phases["other"] = wall - sum(phases.values())
    return wall, phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--meta-iterations", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    options = QUICK if args.quick else {}
    evaluator = MAMLEvaluator(
        "navigation2d", args.meta_iterations, keep_state_dict=False, **options
    )
    graph = mlp_graph((64, 64), "linear_tanh", name="bench")
    evaluator(graph, seed=0, device="cpu")  # warm-up

    def one_by_one(p: int):
        return [evaluator(graph, seed=s, device="cpu") for s in range(p)]

    def program(p: int):
        pairs = [(graph, s) for s in range(p)]
        return _population_eval.run_population(evaluator, pairs)

    rows, records = [], []
    for p in args.sizes:
        runs: dict[str, list[tuple[float, dict[str, float]]]] = {}
        for _ in range(args.repeats):  # the two ways alternate in every round
            for name, fn in (("one by one", one_by_one), ("population", program)):
                runs.setdefault(name, []).append(run(lambda fn=fn, p=p: fn(p)))
        walls = {}
        for name, timed in runs.items():
            wall, phases = sorted(timed, key=lambda t: t[0])[len(timed) // 2]  # the median run
            walls[name] = wall
            records.append(dict(size=p, method=name, wall=wall, phases=phases,
                                walls=[t[0] for t in timed]))  # fmt: skip
            rows.append([p, name, wall] + [phases.get(k, 0.0) for k in PHASES])
        rows.append([p, "ratio", walls["population"] / walls["one by one"]] + [""] * len(PHASES))
    size = "10x10x50" if args.quick else "20x20x100"
    print(f"\nnavigation2d {size}, {args.meta_iterations} meta-iterations, "
          f"cpu, {args.threads} thread(s)")  # fmt: skip
    print_table(["P", "method", "wall s", *PHASES], rows)
    name = "bench_population_phases_quick" if args.quick else "bench_population_phases"
    save(f"{name}_cpu", {
        "meta_iterations": args.meta_iterations, "threads": args.threads,
        "options": dict(options), "records": records,
    })  # fmt: skip


if __name__ == "__main__":
    main()
