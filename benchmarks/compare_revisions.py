"""Speed of one MAML-TRPO meta-iteration at two git revisions of autometa, measured alternately.

Checks that a change to the evaluator leaves its speed where it was, and how far each revision
is from the arithmetic floor of the CPU. Each revision is checked out as a temporary detached
git worktree (under a fresh temporary folder; both worktrees and the folder are removed at the
end, nothing else is touched), and every measurement runs in a fresh Python process that
imports that worktree's ``autometa`` (``PYTHONPATH`` and the working folder set to it; the
process checks that the copy it imported is the worktree's).

One measurement uses only public names that both revisions have with the same signatures:
navigation2d, the 2x64 tanh policy (``autometa.graph.mlp_graph((64, 64))`` built by
``autometa.policy.build_policy``), the configuration ``MAMLEvaluator(...).config_for_graph``
gives it, and ``autometa.meta.meta_train``. A warm-up call with the timed call's own
configuration (which traces and caches the TRPO program: a revision may key its cache on the
whole configuration, the iteration count included) is not timed; the next call, of
``--iterations`` meta-iterations, is, and its wall and CPU seconds are divided by
``--iterations``. TRPO is traced by default
(``--traced on``, what the evaluator does at these sizes for a whole evaluation; ``auto``
leaves the choice to ``meta_train``, which then decides by the call's own, small, number of
iterations). Where the revision has ``autometa.meta.allocator.tune_cpu_allocator``, the
CPU allocator is tuned as the evaluator tunes it. Sizes:

- ``paper``: 20 tasks x 20 episodes, horizon 100 (the paper's 2D-navigation size);
- ``quick``: 10 tasks x 10 episodes, horizon 50;
- ``tiny``: 4 tasks x 4 episodes, horizon 20 (a smoke test of the script, seconds per run).

Why alternation: on a machine whose speed drifts (other work, clock changes, thermal state), timing
all of A and then all of B would credit the drift to one revision. Each round runs A then B for
every size and every thread count in ``--threads``, so both revisions sample the same stretch
of time; the per-round ratios show how much of the difference is noise.

Arithmetic floor: before the rounds, one more process per revision and size runs one
meta-iteration (after the warm-up) under ``_floor.MatmulCounter``, which counts every matrix
product it executes by shape (rollouts, inner step, the traced TRPO program's once-per-step part,
its conjugate-gradient products and the line search). The GEMM rate of each main shape is
measured in this process at every thread count, before and after the rounds (the better of
the two is used). The floor of a meta-iteration is the sum over shapes of its FLOPs over that
shape's rate: no implementation doing these products can be faster on this CPU.

The table gives, per revision, size and thread count, the median, min and max seconds per
meta-iteration over the rounds, the ratio of the medians (after / before) and the range of the
per-round ratios, the median CPU seconds per meta-iteration and their ratio, the matrix GFLOP
of one meta-iteration, the floor and the median time over the floor. CPU time leaves out
the time the process waited for a core; where it is close to the wall time, the process was
not kept waiting (with 2 threads it also counts threads spinning while they wait).

``--env-after NAME=VALUE`` sets an environment variable in revision B's timed processes only
(not in the counting ones): ``HEAD HEAD --env-after AUTOMETA_COMPILE=1`` measures the traced
TRPO program against the opt-in compiled one, alternately, against the same floor. Each run
records how many TRPO steps a compiled program took (``compiled_steps``).

Usage: ``python benchmarks/compare_revisions.py [BEFORE] [AFTER] [--repeats 3]
[--iterations 2] [--threads 1 2] [--sizes paper quick | --quick | --tiny] [--traced on]
[--env-after NAME=VALUE]``
(defaults: ``14368e5`` and ``HEAD``; only committed code is measured). Writes
``benchmarks/results/compare_revisions[_quick|_tiny|_<sizes>].json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, save  # noqa: E402
from _floor import floor_seconds, gemm_rates, main_shapes, shape_flops  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
SIZES: dict[str, dict[str, int]] = {
    "paper": {"num_tasks": 20, "episodes_per_task": 20, "horizon": 100},
    "quick": {"num_tasks": 10, "episodes_per_task": 10, "horizon": 50},
    "tiny": {"num_tasks": 4, "episodes_per_task": 4, "horizon": 20},
}
TRACED = {"on": True, "off": False, "auto": None}

# Run in a fresh interpreter inside one revision's worktree; uses only public names that exist
# with the same signatures at both revisions. Prints one JSON line.
DRIVER = """
import json, sys, time
from pathlib import Path
import torch
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
import autometa
from autometa.graph import mlp_graph
from autometa.meta import MAMLEvaluator, meta_train
from autometa.policy import build_policy
where = Path(autometa.__file__).resolve()
if Path(args["root"]).resolve() not in where.parents:
    sys.exit(f"imported autometa from {where}, not from {args['root']}")
try:
    from autometa.meta.allocator import tune_cpu_allocator
except ImportError:
    tuned = None
else:
    tuned = tune_cpu_allocator()
evaluator = MAMLEvaluator(
    "navigation2d", num_tasks=args["num_tasks"], episodes_per_task=args["episodes_per_task"],
    family_options={"horizon": args["horizon"]},
)
family = evaluator.family("cpu")
graph = mlp_graph((64, 64), "linear_tanh")
cfg = evaluator.config_for_graph(graph)
policy = build_policy(
    graph, family.single_observation_space, family.single_action_space, seed=0,
    init_std=cfg.init_std, device=family.device,
)
def train(k):
    start, start_cpu = time.perf_counter(), time.process_time()
    _, post, _, steps = meta_train(
        policy, family, cfg.replace(meta_iterations=k), 0, traced=args["traced"]
    )
    return time.perf_counter() - start, time.process_time() - start_cpu, steps, post
warm = train(1 if args["count"] else args["iterations"])  # the timed run's own config
out = {"warmup_seconds": warm[0], "malloc_tuned": tuned, "threads": torch.get_num_threads()}
if args["count"]:
    sys.path.insert(0, args["bench"])
    from _floor import MatmulCounter
    with MatmulCounter() as counter:
        train(1)
    out["matmul_calls"] = counter.counts
else:
    k = args["iterations"]
    wall, cpu, steps, post = train(k)
    out.update(seconds=wall / k, cpu_seconds=cpu / k, env_steps_per_iteration=steps // k,
               post_return=post[-1])
try:  # TRPO steps taken by the opt-in compiled program, where the revision has one
    from autometa.meta.backend import compiled_steps
except ImportError:
    compiled_steps = None
out["compiled_steps"] = compiled_steps() if compiled_steps else None
print(json.dumps(out))
"""


def git(*args: str) -> str:
    """Run git in the repository and return its stripped stdout (raises on failure)."""
    done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip() or f"git {' '.join(args)} failed")
    return done.stdout.strip()


def resolve(rev: str) -> str | None:
    """The full commit hash of ``rev``, or None when it names no commit."""
    try:
        return git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except RuntimeError:
        return None


def measure(
    root: Path,
    size: str,
    threads: int,
    *,
    iterations: int,
    traced: bool | None,
    count: bool,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One fresh process at worktree ``root``: time ``iterations`` meta-iterations of ``size``
    after the warm-up, or (``count``) count one meta-iteration's matrix products.
    ``extra_env`` is set in the process's environment (``--env-after``)."""
    args = {**SIZES[size], "root": str(root), "iterations": iterations, "threads": threads}
    args.update(traced=traced, count=count, bench=str(BENCH))
    env = {**os.environ, "PYTHONPATH": str(root), **(extra_env or {})}
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(args)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"the measurement at {root} ({size}) failed:\n{tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def count_flops(roots: list[Path], sizes: list[str], traced: bool | None) -> dict[str, list]:
    """``{size: [FLOPs per shape of A, of B]}``: one counted meta-iteration per revision."""
    flops: dict[str, list] = {}
    for size in sizes:
        flops[size] = []
        for label, root in zip("AB", roots):
            run = measure(root, size, 1, iterations=1, traced=traced, count=True)
            per_shape = {k: n * shape_flops(k) for k, n in run["matmul_calls"].items()}
            flops[size].append(dict(sorted(per_shape.items(), key=lambda kv: -kv[1])))
            total = sum(per_shape.values())
            print(f"count {size:5} {label}: {total / 1e9:.3f} GFLOP of matrix products")
    return flops


def measure_rates(shapes: list[str], threads: list[int], seconds: float) -> dict[int, dict]:
    """``{threads: {shape: FLOP/s}}`` measured in this process."""
    rates = {}
    for n in threads:
        torch.set_num_threads(n)
        rates[n] = gemm_rates(shapes, seconds)
    return rates


def run_rounds(
    roots: list[Path], sizes: list[str], threads: list[int], args: argparse.Namespace
) -> dict[tuple[str, int], list[list[dict[str, Any]]]]:
    """``{(size, threads): [[run of A, run of B] for each round]}``, alternating within rounds."""
    runs: dict[tuple[str, int], list[list[dict[str, Any]]]] = {}
    for r in range(args.repeats):
        for size in sizes:
            for n in threads:
                pair = []
                for label, root in zip("AB", roots):
                    run = measure(
                        root, size, n, iterations=args.iterations,
                        traced=TRACED[args.traced], count=False,
                        extra_env=args.env_after if label == "B" else None,
                    )  # fmt: skip
                    pair.append(run)
                    print(
                        f"round {r + 1}/{args.repeats} {size:5} {n} threads {label}: "
                        f"{run['seconds']:.3f} s / iteration (CPU {run['cpu_seconds']:.3f} s)",
                        flush=True,
                    )
                runs.setdefault((size, n), []).append(pair)
    return runs


def summarise(
    runs: dict[tuple[str, int], list[list[dict[str, Any]]]],
    flops: dict[str, list],
    rates: dict[int, dict],
    labels: list[str],
) -> tuple[list[list[Any]], list[dict[str, Any]]]:
    """Table rows and the JSON summary of each size and thread count."""
    rows, summary = [], []
    for (size, n), rounds in runs.items():
        walls = [[pair[i]["seconds"] for pair in rounds] for i in range(2)]
        cpus = [[pair[i]["cpu_seconds"] for pair in rounds] for i in range(2)]
        medians = [statistics.median(w) for w in walls]
        cpu = [statistics.median(c) for c in cpus]
        ratio = medians[1] / medians[0]
        per_round = [b["seconds"] / a["seconds"] for a, b in rounds]
        spread = f"{min(per_round):.3f}-{max(per_round):.3f}"
        floors = [floor_seconds(flops[size][i], rates[n]) for i in range(2)]
        for i, label in enumerate(labels):
            rows.append([
                label, size, n, medians[i], min(walls[i]), max(walls[i]),
                f"{ratio:.3f}" if i else "1", spread if i else "", cpu[i],
                f"{cpu[1] / cpu[0]:.3f}" if i else "1",
                sum(flops[size][i].values()) / 1e9, floors[i], medians[i] / floors[i],
            ])  # fmt: skip
        summary.append({
            "size": size, **SIZES[size], "threads": n,
            "env_steps_per_iteration": [rounds[0][i]["env_steps_per_iteration"] for i in (0, 1)],
            "malloc_tuned": [rounds[0][i]["malloc_tuned"] for i in (0, 1)],
            "median_seconds": medians, "min_seconds": [min(w) for w in walls],
            "max_seconds": [max(w) for w in walls], "ratio_after_before": ratio,
            "per_round_ratios": per_round, "median_cpu_seconds": cpu,
            "cpu_ratio_after_before": cpu[1] / cpu[0],
            "matmul_flops_per_iteration": [sum(flops[size][i].values()) for i in (0, 1)],
            "floor_seconds": floors, "median_over_floor": [m / f for m, f in zip(medians, floors)],
            "rounds": rounds,
        })  # fmt: skip
    return rows, summary


def bad_input(message: str) -> None:
    """Print ``message`` as one line and exit with status 2 (bad command-line input)."""
    print(message, file=sys.stderr)
    sys.exit(2)


def parse() -> argparse.Namespace:
    """The command line, checked (bad input exits with one line)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", nargs="?", default="14368e5", help="revision A (before)")
    parser.add_argument("after", nargs="?", default="HEAD", help="revision B (after)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of A then B")
    parser.add_argument("--iterations", type=int, default=2, help="timed iterations per run")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch threads")
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=["paper", "quick"])
    parser.add_argument("--quick", action="store_true", help="only the quick size")
    parser.add_argument("--tiny", action="store_true", help="only the tiny size (smoke test)")
    parser.add_argument("--traced", choices=list(TRACED), default="on", help="TRPO tracing")
    parser.add_argument(
        "--env-after", action="append", default=[], metavar="NAME=VALUE",
        help="an environment variable of revision B's timed runs (repeatable), e.g. "
        "AUTOMETA_COMPILE=1 with the same revision twice: traced against compiled",
    )  # fmt: skip
    args = parser.parse_args()
    env_after = {}
    for item in args.env_after:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            bad_input(f"--env-after: expected NAME=VALUE, got {item!r}")
        env_after[name] = value
    args.env_after = env_after
    for name in ("repeats", "iterations"):
        if getattr(args, name) < 1:
            bad_input(f"--{name}: expected a positive integer, got {getattr(args, name)}")
    if min(args.threads) < 1:
        bad_input(f"--threads: expected positive integers, got {args.threads}")
    if args.quick and args.tiny:
        bad_input("--quick, --tiny: expected at most one of them")
    if args.quick or args.tiny:
        args.sizes = ["quick" if args.quick else "tiny"]
    args.sizes = list(dict.fromkeys(args.sizes))
    args.threads = list(dict.fromkeys(args.threads))
    return args


def main() -> None:
    args = parse()
    commits = []
    for option, rev in (("before", args.before), ("after", args.after)):
        commit = resolve(rev)
        if commit is None:
            bad_input(f"{option}: expected a git revision of this repository, got {rev!r}")
        commits.append(commit)
    labels = [f"before {commits[0][:8]}", f"after {commits[1][:8]}"]
    load_before = os.getloadavg()
    gemm_seconds = 0.1 if args.sizes == ["tiny"] else 0.5

    temp = Path(tempfile.mkdtemp(prefix="autometa-compare-"))
    added: list[Path] = []
    try:
        for name, commit in zip(("before", "after"), commits):
            path = temp / name
            git("worktree", "add", "--detach", str(path), commit)
            added.append(path)
        flops = count_flops(added, args.sizes, TRACED[args.traced])
        shapes = sorted({k for pair in flops.values() for f in pair for k in main_shapes(f)})
        rates_before = measure_rates(shapes, args.threads, gemm_seconds)
        runs = run_rounds(added, args.sizes, args.threads, args)
        rates_after = measure_rates(shapes, args.threads, gemm_seconds)
    finally:
        for path in added:
            git("worktree", "remove", "--force", str(path))
        temp.rmdir()  # empty once its worktrees are gone; never removes anything else
    rates = {
        n: {k: max(rates_before[n][k], rates_after[n][k]) for k in rates_before[n]}
        for n in args.threads
    }
    torch.set_num_threads(max(args.threads))  # the machine record names the most used

    rows, summary = summarise(runs, flops, rates, labels)
    print(
        f"\none MAML-TRPO meta-iteration, navigation2d, 2x64 tanh, TRPO traced "
        f"{args.traced}, {args.repeats} rounds x 1 run of {args.iterations} timed iterations"
        + (f"; B's timed runs with {args.env_after}" if args.env_after else "")
    )
    print_table(
        [
            "revision", "size", "threads", "median s / it", "min s", "max s", "ratio B / A",
            "per-round ratios", "median CPU s", "CPU ratio", "GFLOP / it", "floor s",
            "x floor",
        ],
        rows,
    )  # fmt: skip
    print("\nGEMM rate, GFLOP/s (best of before and after the rounds):")
    print_table(
        ["shape", *[f"{n} threads" for n in args.threads]],
        [[k, *[rates[n][k] / 1e9 for n in args.threads]] for k in rates[args.threads[0]]],
    )
    name = "compare_revisions"
    if args.sizes != ["paper", "quick"]:
        name += "_" + "_".join(args.sizes)
    if args.env_after:
        name += "_" + "_".join(k.lower() for k in args.env_after)
    save(name, {
        "revisions": {
            "before": {"rev": args.before, "commit": commits[0]},
            "after": {"rev": args.after, "commit": commits[1]},
        },
        "threads": args.threads, "repeats": args.repeats, "traced": args.traced,
        "env_after": args.env_after,
        "iterations_per_run": args.iterations, "warmup_iterations_per_run": 1,
        "load_average": {"start": load_before, "end": os.getloadavg()},
        "matmul_flops_per_shape": flops,
        "gemm_flops_per_second": {"before_rounds": rates_before, "after_rounds": rates_after},
        "runs": summary,
    })  # fmt: skip


if __name__ == "__main__":
    main()
