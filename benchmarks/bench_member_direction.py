"""The TRPO direction per step at the paper's size: eager, traced and compiled, P = 1 and P.

At the paper's 2D navigation size (20 tasks x 20 episodes x 100 steps, a 2x64 tanh policy, one
inner step, 10 CG iterations) times one TRPO direction (loss, gradient, old outputs, CG
solve) four ways, alternated in every round so that load changes hit all alike:

- ``traced P=1`` / ``eager P=1``: ``backend.direction`` on a program of one member (the
  member program traced under ``vmap``, or the eager one-member code under ``vmap``);
- ``compiled P=1``: the traced program's two parts compiled by inductor (opt-in);
- ``traced P=M``: M members (seeds) in one program; also per member.

The first call of each way (which traces, or compiles) is timed separately. The members'
meta-batch is sampled once, as ``meta_iteration`` samples it (``benchmarks/_members.py``).
The program of one and member 0 of the program of M are checked to agree bitwise (batch
invariance of the traced program), and traced against eager.

Usage: python benchmarks/bench_member_direction.py [--repeats 3] [--threads 1] [--members 4]
Writes benchmarks/results/bench_member_direction.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, save  # noqa: E402
from _members import build_program  # noqa: E402

from autometa.graph import mlp_graph  # noqa: E402
from autometa.meta import backend, config_for  # noqa: E402
from autometa.meta.maml import MetaBatch  # noqa: E402
from autometa.meta.members import members_of  # noqa: E402
from autometa.tasks import make_task  # noqa: E402


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--members", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = config_for("navigation2d")
    family = make_task("navigation2d")
    program = build_program(
        mlp_graph((64, 64), "linear_tanh"), family, cfg, list(range(args.members))
    )
    mb = program.meta_batch(0)
    meta, lr, damping = program.meta, program.knobs["fast_lr"], program.knobs["cg_damping"]
    first = slice(0, 1)
    one = (
        members_of(meta, first),
        MetaBatch(*members_of((mb.train, mb.grads, mb.valid, mb.valid_adv), first)),
        lr[first],
        damping[first],
    )
    policy = program.policy
    big = f"traced P={args.members}"
    ways = {
        "traced P=1": lambda: backend.direction("traced", policy, cfg, *one),
        "eager P=1": lambda: backend.direction("eager", policy, cfg, *one),
        "compiled P=1": lambda: backend.direction("compiled", policy, cfg, *one),
        big: lambda: backend.direction("traced", policy, cfg, meta, mb, lr, damping),
    }
    first_call = {name: _timed(fn) for name, fn in ways.items()}  # traces or compiles
    results = {name: fn() for name, fn in ways.items()}
    samples: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.repeats):
        for name, fn in ways.items():
            samples[name].append(_timed(fn))
    median = {name: statistics.median(s) for name, s in samples.items()}

    traced, eager, compiled = (results[k] for k in ("traced P=1", "eager P=1", "compiled P=1"))
    fields = ("loss", "grad", "direction", "h_direction")
    agree = {
        "traced P=1 == eager P=1 (loss, grad, direction, h_direction)": all(
            torch.equal(getattr(traced, f), getattr(eager, f)) for f in fields
        ),
        f"member 0 of P={args.members} == P=1 (traced direction)": bool(
            torch.equal(results[big].direction[:1], traced.direction)
        ),
        "compiled vs traced P=1, max relative diff (direction)": float(
            (compiled.direction - traced.direction).abs().max() / traced.direction.abs().max()
        ),
    }
    base = median["traced P=1"]
    rows = [
        [name, median[name], median[name] / base, first_call[name] - median[name]] for name in ways
    ]
    rows.append(
        [f"{big}, per member", median[big] / args.members, median[big] / args.members / base, ""]
    )
    print(f"TRPO direction per step, navigation2d paper size, {args.threads} torch thread(s)")
    print_table(["way", "seconds/step", "x traced P=1", "first-call extra s"], rows)
    for key, value in agree.items():
        print(f"{key}: {value}")
    save(
        "bench_member_direction",
        {
            "config": cfg.to_dict(),
            "threads": args.threads,
            "repeats": args.repeats,
            "members": args.members,
            "seconds_per_step": samples,
            "median_seconds_per_step": median,
            "first_call_seconds": first_call,
            "agreement": agree,
        },
    )


if __name__ == "__main__":
    main()
