"""Speed of one MAML-TRPO meta-iteration at two git revisions of autometa, measured alternately.

Checks that a change to the evaluator leaves its speed where it was. Each revision is checked
out as a temporary detached git worktree (under a fresh temporary folder; both worktrees and the
folder are removed at the end, nothing else is touched), and every measurement runs in a fresh
Python process that imports that worktree's ``autometa`` (``PYTHONPATH`` and the working folder
set to it; the process checks that the copy it imported is the worktree's).

One measurement: navigation2d, the 2x64 tanh policy (``autometa.graph.mlp_graph((64, 64))``),
MAML-TRPO with the preset's settings, meta-iterations run exactly as ``meta_train`` runs them
(``autometa.meta.outer.meta_iteration`` then ``check_finite``, the one host read per
iteration), with the evaluator's default TRPO tracing decision (``traced=None``: by the size of
a full evaluation) and the CPU allocator tuned as the evaluator tunes it. One warm-up
iteration (which traces the TRPO program) is not timed; the next ``--iterations`` are. Sizes:

- ``paper``: 20 tasks x 20 episodes, horizon 100 (the paper's 2D-navigation size);
- ``quick``: 10 tasks x 10 episodes, horizon 50 (``--quick`` runs only this one).

Why alternation: on a machine whose speed drifts (other work, clock changes, thermal state), timing
all of A and then all of B would credit the drift to one revision. Each round runs A then B for
every size, so both revisions sample the same stretch of time; the per-round ratios show how
much of the difference is noise.

The table gives, per revision and size, the median, min and max seconds per meta-iteration over
all timed iterations of all rounds, the ratio of the medians (after / before) and the range of
the per-round ratios (each round's B median over its A median), and the median CPU seconds
of the process per meta-iteration with their ratio. CPU time leaves out the time the process
waited for a core (it still counts the slowdown from sharing a core's caches, and, with more
than one thread, threads spinning while they wait for each other); where it is close to the
wall time, the process was not kept waiting.

Usage: ``python benchmarks/compare_revisions.py [BEFORE] [AFTER] [--repeats 3]
[--iterations 2] [--threads 2] [--quick]`` (defaults: ``93b1c74`` and ``HEAD``; only committed
code is measured). Writes ``benchmarks/results/compare_revisions[_quick].json``.
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

REPO = Path(__file__).resolve().parent.parent
SIZES: dict[str, dict[str, int]] = {
    "paper": {"num_tasks": 20, "episodes_per_task": 20, "horizon": 100},
    "quick": {"num_tasks": 10, "episodes_per_task": 10, "horizon": 50},
}

# Run in a fresh interpreter inside one revision's worktree; uses only names that exist with
# the same signatures before and after the evaluator refactor. Prints one JSON line.
DRIVER = """
import json, sys, time
from pathlib import Path
import torch
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
import autometa
from autometa.graph import mlp_graph
from autometa.meta import config_for
from autometa.meta.allocator import tune_cpu_allocator
from autometa.meta.maml import derive_seed, init_meta_params
from autometa.meta.outer import check_finite, meta_iteration
from autometa.meta.trpo import TRACE_MIN_STEPS
from autometa.policy import build_policy
from autometa.tasks import make_task
where = Path(autometa.__file__).resolve()
if Path(args["root"]).resolve() not in where.parents:
    sys.exit(f"imported autometa from {where}, not from {args['root']}")
tuned = tune_cpu_allocator()
family = make_task("navigation2d", horizon=args["horizon"])
cfg = config_for(
    "navigation2d", num_tasks=args["num_tasks"], episodes_per_task=args["episodes_per_task"]
)
policy = build_policy(
    mlp_graph((64, 64), "linear_tanh"),
    family.single_observation_space,
    family.single_action_space,
    seed=0,
    init_std=cfg.init_std,
    device=family.device,
)
meta = init_meta_params(policy, cfg)
generator = torch.Generator(device=family.device).manual_seed(derive_seed(0, 0))
valid_steps = cfg.num_tasks * cfg.episodes_per_task * family.horizon
times, cpu, steps = [], [], 0
for it in range(args["warmup"] + args["iterations"]):
    start, start_cpu = time.perf_counter(), time.process_time()
    meta, stats, steps = meta_iteration(policy, meta, family, cfg, generator, 0, it, None)
    check_finite(stats, it)
    if it >= args["warmup"]:
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
print(json.dumps({
    "seconds": times,
    "cpu_seconds": cpu,
    "env_steps_per_iteration": steps,
    "traced": valid_steps * cfg.meta_iterations >= TRACE_MIN_STEPS,
    "malloc_tuned": tuned,
    "threads": torch.get_num_threads(),
    "post_return": float(stats["post_return"]),
}))
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


def measure(root: Path, size: str, iterations: int, threads: int) -> dict[str, Any]:
    """One fresh process timing ``iterations`` meta-iterations of ``size`` at worktree ``root``."""
    args = {**SIZES[size], "root": str(root), "iterations": iterations, "warmup": 1}
    args["threads"] = threads
    env = {**os.environ, "PYTHONPATH": str(root)}
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


def run_rounds(
    roots: list[Path], sizes: list[str], repeats: int, iterations: int, threads: int
) -> dict[str, list[list[dict[str, Any]]]]:
    """``{size: [[run of A, run of B] for each round]}``, A and B alternating within rounds."""
    runs: dict[str, list[list[dict[str, Any]]]] = {size: [] for size in sizes}
    for r in range(repeats):
        for size in sizes:
            pair = []
            for label, root in zip("AB", roots):
                run = measure(root, size, iterations, threads)
                pair.append(run)
                secs = ", ".join(f"{s:.3f}" for s in run["seconds"])
                print(f"round {r + 1}/{repeats} {size:5} {label}: {secs} s", flush=True)
            runs[size].append(pair)
    return runs


def summarise(
    runs: dict[str, list[list[dict[str, Any]]]], labels: list[str]
) -> tuple[list[list[Any]], dict[str, Any]]:
    """Table rows and the JSON summary of each size."""
    rows, summary = [], {}
    for size, rounds in runs.items():
        pooled = [[s for pair in rounds for s in pair[i]["seconds"]] for i in range(2)]
        medians = [statistics.median(p) for p in pooled]
        ratio = medians[1] / medians[0]
        per_round = [
            statistics.median(b["seconds"]) / statistics.median(a["seconds"]) for a, b in rounds
        ]
        spread = f"{min(per_round):.3f}-{max(per_round):.3f}"
        cpu = [
            statistics.median([s for pair in rounds for s in pair[i]["cpu_seconds"]])
            for i in range(2)
        ]
        for i, label in enumerate(labels):
            rows.append(
                [
                    label,
                    size,
                    medians[i],
                    min(pooled[i]),
                    max(pooled[i]),
                    f"{ratio:.3f}" if i else "1",
                    spread if i else "",
                    cpu[i],
                    f"{cpu[1] / cpu[0]:.3f}" if i else "1",
                ]
            )
        first = rounds[0][0]
        summary[size] = {
            **SIZES[size],
            "env_steps_per_iteration": first["env_steps_per_iteration"],
            "traced": [rounds[0][i]["traced"] for i in range(2)],
            "malloc_tuned": [rounds[0][i]["malloc_tuned"] for i in range(2)],
            "median_seconds": medians,
            "min_seconds": [min(p) for p in pooled],
            "max_seconds": [max(p) for p in pooled],
            "ratio_after_before": ratio,
            "per_round_ratios": per_round,
            "median_cpu_seconds": cpu,
            "cpu_ratio_after_before": cpu[1] / cpu[0],
            "rounds": rounds,
        }
    return rows, summary


def bad_input(message: str) -> None:
    """Print ``message`` as one line and exit with status 2 (bad command-line input)."""
    print(message, file=sys.stderr)
    sys.exit(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", nargs="?", default="93b1c74", help="revision A (before)")
    parser.add_argument("after", nargs="?", default="HEAD", help="revision B (after)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of A then B")
    parser.add_argument("--iterations", type=int, default=2, help="timed iterations per run")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per process")
    parser.add_argument("--quick", action="store_true", help="only the reduced size")
    args = parser.parse_args()
    for name in ("repeats", "iterations", "threads"):
        if getattr(args, name) < 1:
            bad_input(f"--{name}: expected a positive integer, got {getattr(args, name)}")
    commits = []
    for option, rev in (("before", args.before), ("after", args.after)):
        commit = resolve(rev)
        if commit is None:
            bad_input(f"{option}: expected a git revision of this repository, got {rev!r}")
        commits.append(commit)
    torch.set_num_threads(args.threads)  # so that the saved machine record names them
    sizes = ["quick"] if args.quick else ["paper", "quick"]
    labels = [f"before {c[:8]}" for c in commits[:1]] + [f"after {commits[1][:8]}"]
    load_before = os.getloadavg()

    temp = Path(tempfile.mkdtemp(prefix="autometa-compare-"))
    added: list[Path] = []
    try:
        for name, commit in zip(("before", "after"), commits):
            path = temp / name
            git("worktree", "add", "--detach", str(path), commit)
            added.append(path)
        runs = run_rounds(added, sizes, args.repeats, args.iterations, args.threads)
    finally:
        for path in added:
            git("worktree", "remove", "--force", str(path))
        temp.rmdir()  # empty once its worktrees are gone; never removes anything else

    rows, summary = summarise(runs, labels)
    print(
        f"\none MAML-TRPO meta-iteration, navigation2d, 2x64 tanh, {args.threads} torch "
        f"threads, {args.repeats} rounds x {args.iterations} timed iterations per revision"
    )
    print_table(
        [
            "revision",
            "size",
            "median s / iteration",
            "min s",
            "max s",
            "ratio after / before",
            "per-round ratios",
            "median CPU s",
            "CPU ratio",
        ],
        rows,
    )
    save(
        "compare_revisions_quick" if args.quick else "compare_revisions",
        {
            "revisions": {
                "before": {"rev": args.before, "commit": commits[0]},
                "after": {"rev": args.after, "commit": commits[1]},
            },
            "threads": args.threads,
            "repeats": args.repeats,
            "iterations_per_run": args.iterations,
            "warmup_iterations_per_run": 1,
            "load_average": {"start": load_before, "end": os.getloadavg()},
            "sizes": summary,
        },
    )


if __name__ == "__main__":
    main()
