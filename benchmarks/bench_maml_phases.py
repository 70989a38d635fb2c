"""Where a meta-iteration's time goes, and the arithmetic floor of the exact TRPO step.

Times each phase of one paper-sized navigation2d meta-iteration (2x64 tanh, 20 tasks x 20
episodes, horizon 100) on one device: sampling (rollouts, baselines, inner steps), the traced
program's once-per-step part (loss, gradient), one CG product, the 10-product CG solve, one
line-search evaluation and the whole TRPO step. On CUDA it also times the CG solve captured
as a CUDA graph and replayed.

It then counts the matrix-product FLOPs of the traced TRPO program (the once-per-step part
plus ``cg_iters`` products) and divides them by the device's measured rate on the dominant
product shape (40,000 x 64 x 64): a floor for the TRPO step that no implementation of the
exact second-order update can beat on that device, whatever it does about element-wise work.

Usage: ``python benchmarks/bench_maml_phases.py [--device cpu] [--threads N] [--repeats 5]``.
Writes ``benchmarks/results/bench_maml_phases_<device>.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, save  # noqa: E402
from _floor import matmul_flops  # noqa: E402

from autometa.graph import mlp_graph  # noqa: E402
from autometa.meta import config_for  # noqa: E402
from autometa.meta.allocator import tune_cpu_allocator  # noqa: E402
from autometa.meta.linalg import conjugate_gradient, flatten  # noqa: E402
from autometa.meta.maml import MetaObjective, init_meta_params, sample_meta_batch  # noqa: E402
from autometa.meta.traced import trpo_program  # noqa: E402
from autometa.meta.trpo import trpo_step  # noqa: E402
from autometa.policy import build_policy  # noqa: E402
from autometa.tasks import make_task  # noqa: E402


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


def cuda_graph_cg(program, state, g, cg_iters: int) -> Callable[[], object]:
    """The CG solve captured once as a CUDA graph; returns its replay."""
    static_state, static_g = [s.clone() for s in state], g.clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            conjugate_gradient(lambda p: program.product(static_state, p), static_g, cg_iters)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        conjugate_gradient(lambda p: program.product(static_state, p), static_g, cg_iters)
    return graph.replay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tune_cpu_allocator()
    device = torch.device(args.device)
    cfg = config_for("navigation2d")
    family = make_task("navigation2d", device=device)
    policy = build_policy(
        mlp_graph((64, 64), "linear_tanh"),
        family.single_observation_space,
        family.single_action_space,
        seed=0,
        device=device,
    )
    meta = init_meta_params(policy, cfg)
    generator = torch.Generator(device=device).manual_seed(0)
    tasks = family.sample_tasks(cfg.num_tasks, 1)
    mb = sample_meta_batch(policy, meta, family, tasks, cfg, generator, 2)
    obj = MetaObjective(policy, mb, cfg)
    program = trpo_program(obj, meta, flatten(meta))
    loss, g, old, state = program.prepare(meta, mb, flatten(meta))
    r = args.repeats

    phases = {
        "sampling (2 rollouts, baselines, inner step)": timed(
            lambda: sample_meta_batch(policy, meta, family, tasks, cfg, generator, 2), device, r
        ),
        "TRPO once-per-step part (loss, gradient)": timed(
            lambda: program.prepare(meta, mb, flatten(meta)), device, r
        ),
        "one CG product": timed(lambda: program.product(state, g), device, 2 * r),
        f"CG solve ({cfg.cg_iters} products)": timed(
            lambda: conjugate_gradient(lambda p: program.product(state, p), g, cfg.cg_iters),
            device,
            r,
        ),
        "one line-search evaluation": timed(
            lambda: (obj.loss(obj.outputs(meta), old), obj.kl(obj.outputs(meta), old)), device, r
        ),
        "whole TRPO step": timed(lambda: trpo_step(obj, meta, cfg, True), device, r),
    }
    if device.type == "cuda":
        replay = cuda_graph_cg(program, state, g, cfg.cg_iters)
        phases[f"CG solve as a CUDA graph ({cfg.cg_iters} products)"] = timed(replay, device, r)

    static_flops = matmul_flops(program.static, *program.static_inputs(meta, mb))
    product_flops = matmul_flops(program.dynamic, *state, g)
    trpo_flops = static_flops + cfg.cg_iters * product_flops
    a = torch.randn(cfg.num_tasks * cfg.episodes_per_task * family.horizon, 64, device=device)
    w = torch.randn(64, 64, device=device)
    gemm = statistics.median(timed(lambda: a @ w, device, 50))
    gemm_rate = 2 * a.shape[0] * 64 * 64 / gemm

    rows = [[name, 1e3 * statistics.median(t), 1e3 * min(t)] for name, t in phases.items()]
    print(
        f"navigation2d, 2x64 tanh, {cfg.num_tasks} tasks x {cfg.episodes_per_task} episodes x "
        f"horizon {family.horizon}, {device}, torch threads {args.threads}"
    )
    print_table(["phase", "median ms", "best ms"], rows)
    floor = trpo_flops / gemm_rate
    print(
        f"\nmatrix products of the exact TRPO step: {static_flops / 1e9:.2f} GFLOP once + "
        f"{cfg.cg_iters} x {product_flops / 1e9:.2f} GFLOP = {trpo_flops / 1e9:.1f} GFLOP; "
        f"measured rate on 40000x64x64: {gemm_rate / 1e9:.0f} GFLOP/s; floor of the TRPO "
        f"step on this device: {1e3 * floor:.0f} ms"
    )
    save(
        f"bench_maml_phases_{device.type}",
        {
            "config": cfg.to_dict(),
            "threads": args.threads,
            "phases_seconds": phases,
            "trpo_matmul_flops": {"once": static_flops, "per_product": product_flops},
            "gemm_40000x64x64_flops_per_second": gemm_rate,
            "trpo_floor_seconds": floor,
        },
    )


if __name__ == "__main__":
    main()
