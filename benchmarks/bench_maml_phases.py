"""Where a meta-iteration's time goes, and the arithmetic floor of the exact TRPO step.

Times each phase of one paper-sized navigation2d meta-iteration (2x64 tanh, 20 tasks x 20
episodes, horizon 100) of a program of ``--members`` members (default one: a candidate
evaluated alone) on one device: sampling (rollouts, baselines, inner steps:
``sample_meta_batch``), the once-per-step part of the TRPO direction (meta-loss, gradient and
post-adaptation outputs: ``loss_and_grad`` under ``vmap`` over the members), the direction
with its ``cg_iters`` Fisher-vector products, one product (the difference, divided by
``cg_iters``), one line-search evaluation (``line_search_values``) and the whole TRPO step
(``trpo_step``, eager products). The direction is computed here with the eager functions of
``autometa.meta.maml`` and ``autometa.meta.linalg``, written once for one member and run
under ``vmap``, as the algorithm writes it. On CUDA it also times the direction captured as a
CUDA graph and replayed.

It then counts the matrix-product FLOPs (``torch.utils.flop_counter``) of the once-per-step
part and of one product, and divides them by the device's measured rate on the dominant
product shape (one member's 40,000 x 64 x 64): a floor for the TRPO step that no
implementation of the exact second-order update can beat on that device, whatever it does
about element-wise work. An eager product redoes the forward pass through the inner step (the
primal half of its ``jvp``); the floor counts a product without it (the eager product's FLOPs
minus those of one forward pass), as a program that keeps the forward's values does.

Usage: ``python benchmarks/bench_maml_phases.py [--device cpu] [--threads N] [--repeats 5]
[--members P] [--quick]``; ``--quick`` runs a tiny size (4 tasks x 4 episodes, horizon 20) in
seconds, to check that the script runs. Writes
``benchmarks/results/bench_maml_phases_<device>[_quick].json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from torch.func import vmap
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, save  # noqa: E402
from _members import build_program  # noqa: E402

from autometa.graph import mlp_graph  # noqa: E402
from autometa.meta import config_for  # noqa: E402
from autometa.meta.allocator import tune_cpu_allocator  # noqa: E402
from autometa.meta.linalg import conjugate_gradient, fisher_vector_product, flatten  # noqa: E402
from autometa.meta.maml import MetaBatch, MetaObjective, loss_and_grad  # noqa: E402
from autometa.meta.trpo import line_search_values, trpo_step  # noqa: E402
from autometa.tasks import make_task  # noqa: E402


def _once(policy, cfg, meta, data, lr):
    """One member's meta-loss, flat gradient and post-adaptation outputs."""
    loss, g, old, _ = loss_and_grad(MetaObjective(policy, MetaBatch(*data), cfg, lr), meta)
    return loss, flatten(g), old


def _direction(policy, cfg, iters, meta, data, lr, damping):
    """One member's CG direction with ``iters`` Fisher-vector products (eager functions)."""
    obj = MetaObjective(policy, MetaBatch(*data), cfg, lr)
    loss, g, old, vjp_fn = loss_and_grad(obj, meta)
    fvp = fisher_vector_product(obj, meta, old, vjp_fn, damping)
    return conjugate_gradient(fvp, flatten(g), iters)


def _outputs(policy, cfg, meta, data, lr):
    """One member's post-adaptation outputs: the forward pass through the inner step."""
    return MetaObjective(policy, MetaBatch(*data), cfg, lr).outputs(meta)


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> list[float]:
    """Seconds of ``repeats`` calls after one warm-up, synchronising CUDA around each."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def matmul_flops(fn: Callable[[], object]) -> int:
    """FLOPs of the matrix products (``mm``, ``bmm``, ``addmm``, convolutions) ``fn`` runs."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())


def cuda_graph(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` (whose inputs stay where they are) captured once as a CUDA graph; its replay."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--members", type=int, default=1, help="members of the program (P)")
    parser.add_argument("--quick", action="store_true", help="a tiny size, to check it runs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tune_cpu_allocator()
    device = torch.device(args.device)
    sizes, horizon = {}, {}
    if args.quick:
        sizes, horizon = dict(num_tasks=4, episodes_per_task=4), {"horizon": 20}
    cfg = config_for("navigation2d", **sizes)
    family = make_task("navigation2d", device=device, **horizon)
    graph = mlp_graph((64, 64), "linear_tanh")
    program = build_program(graph, family, cfg, list(range(args.members)))
    policy, meta, knobs = program.policy, program.meta, program.knobs
    mb = program.meta_batch(0)
    data, lr, damping = (
        (mb.train, mb.grads, mb.valid, mb.valid_adv),
        knobs["fast_lr"],
        knobs["cg_damping"],
    )
    once = vmap(partial(_once, policy, cfg))
    direction = vmap(partial(_direction, policy, cfg, cfg.cg_iters))
    no_products = vmap(partial(_direction, policy, cfg, 0))
    outputs = vmap(partial(_outputs, policy, cfg))
    _, _, old = once(meta, data, lr)
    r = args.repeats

    phases = {
        "sampling (rollouts, baselines, inner steps)": timed(
            lambda: program.meta_batch(0), device, r
        ),
        "direction without products (loss, gradient)": timed(
            lambda: once(meta, data, lr), device, r
        ),
        f"direction ({cfg.cg_iters} CG products)": timed(
            lambda: direction(meta, data, lr, damping), device, r
        ),
        "one line-search evaluation": timed(
            lambda: line_search_values(policy, cfg, meta, mb, lr, old), device, r
        ),
        "whole TRPO step": timed(
            lambda: trpo_step(policy, mb, meta, cfg, knobs, program.active, traced=False),
            device,
            r,
        ),
    }
    medians = {name: statistics.median(t) for name, t in phases.items()}
    per_product = (
        medians[f"direction ({cfg.cg_iters} CG products)"]
        - medians["direction without products (loss, gradient)"]
    ) / max(cfg.cg_iters, 1)
    if device.type == "cuda":
        try:
            replay = cuda_graph(lambda: direction(meta, data, lr, damping))
            phases[f"direction as a CUDA graph ({cfg.cg_iters} products)"] = timed(
                replay, device, r
            )
        except RuntimeError as exc:  # not capturable: say so, time the rest
            print(f"the direction could not be captured as a CUDA graph: {exc}")

    static_flops = matmul_flops(lambda: once(meta, data, lr))
    eager_product_flops = (
        matmul_flops(lambda: direction(meta, data, lr, damping))
        - matmul_flops(lambda: no_products(meta, data, lr, damping))
    ) // max(cfg.cg_iters, 1)
    forward_flops = matmul_flops(lambda: outputs(meta, data, lr))
    product_flops = eager_product_flops - forward_flops
    trpo_flops = static_flops + cfg.cg_iters * product_flops
    rows_of_member = cfg.num_tasks * cfg.episodes_per_task * family.horizon
    a = torch.randn(rows_of_member, 64, device=device)
    w = torch.randn(64, 64, device=device)
    gemm = statistics.median(timed(lambda: a @ w, device, 50))
    gemm_rate = 2 * a.shape[0] * 64 * 64 / gemm

    rows = [[name, 1e3 * statistics.median(t), 1e3 * min(t)] for name, t in phases.items()]
    rows.insert(3, ["one CG product (difference / cg_iters)", 1e3 * per_product, ""])
    print(
        f"navigation2d, 2x64 tanh, {args.members} member(s), {cfg.num_tasks} tasks x "
        f"{cfg.episodes_per_task} episodes x horizon {family.horizon}, {device}, torch threads "
        f"{args.threads}"
    )
    print_table(["phase", "median ms", "best ms"], rows)
    floor = trpo_flops / gemm_rate
    print(
        f"\nmatrix products of the exact TRPO step ({args.members} member(s)): "
        f"{static_flops / 1e9:.2f} GFLOP once + {cfg.cg_iters} x {product_flops / 1e9:.2f} "
        f"GFLOP = {trpo_flops / 1e9:.1f} GFLOP (an eager product: "
        f"{eager_product_flops / 1e9:.2f} GFLOP); measured rate on {rows_of_member}x64x64: "
        f"{gemm_rate / 1e9:.0f} GFLOP/s; floor of the TRPO step on this device: "
        f"{1e3 * floor:.0f} ms"
    )
    save(
        f"bench_maml_phases_{device.type}" + ("_quick" if args.quick else ""),
        {
            "config": cfg.to_dict(),
            "members": args.members,
            "horizon": family.horizon,
            "threads": args.threads,
            "phases_seconds": phases,
            "cg_product_seconds": per_product,
            "trpo_matmul_flops": {
                "once": static_flops,
                "per_product": product_flops,
                "per_eager_product": eager_product_flops,
            },
            "gemm_flops_per_second": gemm_rate,
            "trpo_floor_seconds": floor,
        },
    )


if __name__ == "__main__":
    main()
