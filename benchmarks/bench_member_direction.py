"""The TRPO direction per step at the paper's size: single-candidate program vs member axis.

At the paper's 2D navigation size (20 tasks x 20 episodes x 100 steps, a 2x64 tanh policy, one
inner step, 10 CG iterations) times one TRPO direction (loss, gradient, old outputs, CG
solve) five ways, alternated in every round so that load changes hit all alike:

- ``single traced``: ``backend.traced_direction(obj, meta, cfg)``, the single-candidate
  traced program;
- ``member traced P=1`` / ``member eager P=1``: ``backend.member_direction`` on a population of
  one (the member-axis program traced under ``vmap``, or the eager code under ``vmap``);
- ``member compiled P=1``: the member program's two parts compiled by inductor (opt-in);
- ``member traced P=4``: four members (seeds) in one program; also per member.

The tracing itself (once per signature) is timed separately. Each member's meta-batch is
sampled once with ``sample_meta_batch`` and the members are stacked.

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
from torch.utils._pytree import tree_map

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, save  # noqa: E402

from autometa.graph import mlp_graph  # noqa: E402
from autometa.meta import backend, config_for  # noqa: E402
from autometa.meta.maml import (  # noqa: E402
    MetaBatch,
    MetaObjective,
    init_meta_params,
    sample_meta_batch,
)
from autometa.policy import build_policy  # noqa: E402
from autometa.tasks import make_task  # noqa: E402


def _stack(*trees):
    return tree_map(lambda *t: torch.stack(t), *trees)


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
    graph = mlp_graph((64, 64), "linear_tanh")
    space = (family.single_observation_space, family.single_action_space)
    policies = [build_policy(graph, *space, seed=s) for s in range(args.members)]
    policy = policies[0]
    metas = [init_meta_params(p, cfg) for p in policies]
    tasks = family.sample_tasks(cfg.num_tasks, 1)
    batches = [
        sample_meta_batch(p, m, family, tasks, cfg, torch.Generator().manual_seed(s), 100 + s)
        for s, (p, m) in enumerate(zip(policies, metas))
    ]
    meta = _stack(*metas)
    mb = MetaBatch(*_stack(*((b.train, b.grads, b.valid, b.valid_adv) for b in batches)))
    lr = torch.full((args.members,), cfg.fast_lr)
    damping = torch.full((args.members,), cfg.cg_damping)
    data = tree_map(lambda t: t[:1], (mb.train, mb.grads, mb.valid, mb.valid_adv))
    one = (*tree_map(lambda t: t[:1], (meta,)), MetaBatch(*data), lr[:1], damping[:1])
    obj = MetaObjective(policy, batches[0], cfg)

    ways = {
        "single traced": lambda: backend.traced_direction(obj, metas[0], cfg),
        "member traced P=1": lambda: backend.member_direction("traced", policy, cfg, *one),
        "member eager P=1": lambda: backend.member_direction("eager", policy, cfg, *one),
        "member compiled P=1": lambda: backend.member_direction("compiled", policy, cfg, *one),
        f"member traced P={args.members}": lambda: backend.member_direction(
            "traced", policy, cfg, meta, mb, lr, damping
        ),
    }
    trace_seconds = {name: _timed(fn) for name, fn in ways.items()}  # first call: traces
    results = {name: fn() for name, fn in ways.items()}
    samples: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.repeats):
        for name, fn in ways.items():
            samples[name].append(_timed(fn))
    median = {name: statistics.median(s) for name, s in samples.items()}

    single = results["single traced"]
    member = results["member traced P=1"]
    agree = {
        "member traced P=1 == single traced (direction)": bool(
            torch.equal(member.direction[0], single.direction)
        ),
        "member traced P=1 vs single traced, max abs diff": float(
            (member.direction[0] - single.direction).abs().max()
        ),
        "member traced P=1 == member eager P=1": all(
            torch.equal(a, b)
            for a, b in zip(
                (member.loss, member.grad, member.direction, member.h_direction),
                (results["member eager P=1"][k] for k in (0, 1, 3, 4)),
            )
        ),
        "member compiled P=1 vs traced P=1, max relative diff (direction)": float(
            (results["member compiled P=1"].direction - member.direction).abs().max()
            / member.direction.abs().max()
        ),
        f"member 0 of P={args.members} == P=1 (traced)": bool(
            torch.equal(results[f"member traced P={args.members}"].direction[:1], member.direction)
        ),
    }
    base = median["single traced"]
    rows = [
        [name, median[name], median[name] / base, trace_seconds[name] - median[name]]
        for name in ways
    ]
    big = f"member traced P={args.members}"
    rows.append(
        [f"{big}, per member", median[big] / args.members, median[big] / args.members / base, ""]
    )
    print(f"TRPO direction per step, navigation2d paper size, {args.threads} torch thread(s)")
    print_table(["way", "seconds/step", "x single traced", "first-call extra s"], rows)
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
            "first_call_seconds": trace_seconds,
            "agreement": agree,
        },
    )


if __name__ == "__main__":
    main()
