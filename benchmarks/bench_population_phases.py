"""Where a program of P members spends its time, phase by phase, against P programs of one.

There is one algorithm, with a leading member axis on every tensor (``autometa.meta.members``);
a candidate evaluated alone is a program of one. For each size P, P seeds of one candidate
(the 2x64 tanh policy) are scored twice, in alternation: as P programs of one, one after
another (``MAMLEvaluator.__call__``, what the search does with ``--seeds`` when it evaluates
pairs alone) and as one program of P members (``MAMLEvaluator.evaluate_seeds``, what
``evaluate_population`` runs for pairs of one architecture). The functions of each phase are
wrapped with timers for the run, so every phase's seconds are summed over the P programs (one
by one) or counted once (one program):

- rollouts (``inner.rollout``), advantages (``inner.member_advantages``: the baseline fits),
  inner step (the rest of ``inner.sample_inner_loop``: inner gradients and update),
- direction (meta-loss, meta-gradient, Fisher-vector products and CG: ``trpo``'s direction
  function), line search (``trpo.line_search_values``: the surrogate and KL tests), the rest
  of the TRPO step (``outer.trpo_step``: trust-region scale, kernel grouping, bookkeeping),
- held-out test (``_evaluate.adapt_members``: rollouts and inner steps on the test tasks),
  and what remains (building the policies, scoring, bookkeeping).

A phase function that the installed version does not have is left unwrapped (its time goes
to the phase that calls it) and named on the first line of output.

The size is the paper's 2D navigation evaluation (20 tasks x 20 episodes x 100 steps, test
on 40 tasks x 40 episodes) unless ``--quick`` (10 x 10 x 50, test 10 x 10) or ``--tiny``
(4 x 4 x 20, test 4 x 4, one meta-iteration: seconds, to check that the script runs).

Usage: ``python benchmarks/bench_population_phases.py [--quick | --tiny] [--sizes 1 2 4]
[--meta-iterations 3] [--threads 1] [--repeats 1]`` (with repeats, the two ways alternate in
every round and the median round is shown). Writes
``benchmarks/results/bench_population_phases[_quick|_tiny]_cpu.json``.
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
from _common import QUICK, TINY, print_table, save  # noqa: E402

from autometa.graph import mlp_graph  # noqa: E402
from autometa.meta import MAMLEvaluator, _evaluate, inner, maml, outer, trpo  # noqa: E402

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
#: (module, function, phase); a name the module lacks is reported and left unwrapped.
WRAPPED = (
    (inner, "rollout", "rollouts"),
    (inner, "member_advantages", "advantages"),
    (maml, "sample_inner_loop", "inner step"),
    (trpo, "member_direction", "direction"),
    (trpo, "line_search_values", "line search"),
    (outer, "trpo_step", "trpo rest"),
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


def missing() -> list[str]:
    """The phase functions this version does not have."""
    names = [(m, n) for m, n, _ in WRAPPED] + [(_evaluate, "adapt_members")]
    return [f"{m.__name__}.{n}" for m, n in names if not hasattr(m, n)]


@contextmanager
def instrumented(timers: Timers) -> Iterator[None]:
    """Wrap the phase functions where their callers look them up, for the block."""
    patches = [
        (module, name, timers.wrap(label, getattr(module, name)))
        for module, name, label in WRAPPED
        if hasattr(module, name)
    ]
    if hasattr(_evaluate, "adapt_members"):
        patches.append((_evaluate, "adapt_members", timers.test_phase(_evaluate.adapt_members)))
    saved = [(module, name, getattr(module, name)) for module, name, _ in patches]
    for module, name, fn in patches:
        setattr(module, name, fn)
    try:
        yield
    finally:
        for module, name, fn in saved:
            setattr(module, name, fn)


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
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="10 x 10 x 50, test 10 x 10")
    size.add_argument("--tiny", action="store_true", help="4 x 4 x 20, seconds")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--meta-iterations", type=int, default=None, help="3 (--tiny: 1)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.meta_iterations is None:
        args.meta_iterations = 1 if args.tiny else 3
    options = QUICK if args.quick else TINY if args.tiny else {}
    if missing():
        print(f"not wrapped (absent in this version): {', '.join(missing())}")
    evaluator = MAMLEvaluator(
        "navigation2d", args.meta_iterations, keep_state_dict=False, **options
    )
    graph = mlp_graph((64, 64), "linear_tanh", name="bench")
    evaluator(graph, seed=0, device="cpu")  # warm-up

    def one_by_one(p: int):
        return [evaluator(graph, seed=s, device="cpu") for s in range(p)]

    def program(p: int):
        return evaluator.evaluate_seeds(graph, seeds=list(range(p)), device="cpu")

    rows, records = [], []
    for p in args.sizes:
        runs: dict[str, list[tuple[float, dict[str, float]]]] = {}
        for _ in range(args.repeats):  # the two ways alternate in every round
            for name, fn in (("one by one", one_by_one), ("one program", program)):
                runs.setdefault(name, []).append(run(lambda fn=fn, p=p: fn(p)))
        walls = {}
        for name, timed in runs.items():
            wall, phases = sorted(timed, key=lambda t: t[0])[len(timed) // 2]  # the median run
            walls[name] = wall
            records.append(dict(size=p, method=name, wall=wall, phases=phases,
                                walls=[t[0] for t in timed]))  # fmt: skip
            rows.append([p, name, wall] + [phases.get(k, 0.0) for k in PHASES])
        rows.append([p, "ratio", walls["one program"] / walls["one by one"]] + [""] * len(PHASES))
    size = "10x10x50" if args.quick else "4x4x20" if args.tiny else "20x20x100"
    print(f"\nnavigation2d {size}, {args.meta_iterations} meta-iterations, "
          f"cpu, {args.threads} thread(s)")  # fmt: skip
    print_table(["P", "method", "wall s", *PHASES], rows)
    name = "bench_population_phases" + ("_quick" if args.quick else "_tiny" if args.tiny else "")
    save(f"{name}_cpu", {
        "meta_iterations": args.meta_iterations, "threads": args.threads,
        "options": dict(options), "records": records,
    })  # fmt: skip


if __name__ == "__main__":
    main()
