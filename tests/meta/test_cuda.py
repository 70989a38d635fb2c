"""The evaluator on a CUDA device: same results as the CPU code, no host sync, same seed.

Skipped where no CUDA device is present (CI has none); run on a GPU machine with
``python -m pytest -q tests/meta/test_cuda.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import chain_graph
from meta_fixtures import SMALL, float64_policy, synthetic_meta_batch
from torch.utils._pytree import tree_map

from autometa.meta import MAMLConfig, MAMLEvaluator, cuda_graphs
from autometa.meta._compiled import COMPILE_ENV
from autometa.meta.backend import direction, traced_solve
from autometa.meta.linalg import fisher_vector_product, flatten
from autometa.meta.maml import (
    MetaBatch,
    MetaObjective,
    init_meta_params,
    loss_and_grad,
    sample_meta_batch,
)
from autometa.meta.members import PER_MEMBER, Cohort, stack_members
from autometa.meta.reference import loop_meta_gradient
from autometa.meta.rollout import Batch, cat_tasks, rollout
from autometa.meta.traced import TRPOProgram, trpo_program
from autometa.meta.trpo import trpo_step
from autometa.policy import build_policy, register_op
from autometa.tasks import make_task


class _HostSyncLayer(torch.nn.Module):
    """A linear layer whose forward waits for the device: it cannot be captured."""

    def __init__(self, in_features: int, width: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(in_features, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        return self.linear(x)


register_op("test_host_sync", _HostSyncLayer, overwrite=True)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

NATIVE = ["navigation2d", "navigation2d-sparse", "cartpole", "pendulum", "bandit", "tabular-mdp"]
DEVICE = "cuda"


def _to(mb: MetaBatch, device: str) -> MetaBatch:
    """``mb`` with every tensor on ``device``."""
    parts = (mb.train, mb.grads, mb.valid, mb.valid_adv)
    return MetaBatch(*tree_map(lambda t: t.to(device), parts))


def _member(mb: MetaBatch) -> MetaBatch:
    """``mb`` as the meta-batch of a program of one (a member axis of length 1)."""
    parts = (mb.train, mb.grads, mb.valid, mb.valid_adv)
    return MetaBatch(*tree_map(lambda t: t[None], parts))


def _knobs(cfg: MAMLConfig, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """The per-member settings of a program of one member with ``cfg`` on the device, as
    ``member_knobs`` makes them but in ``dtype`` (float64 for the float64 policies)."""
    return {
        name: torch.tensor([float(getattr(cfg, name))], dtype=dtype, device=DEVICE)
        for name in PER_MEMBER
    }


def test_meta_gradient_and_trpo_products_on_cuda_match_the_cpu():
    policy = float64_policy()
    cfg = MAMLConfig(fast_lr=0.5)
    mb = synthetic_meta_batch(policy, cfg)
    meta = init_meta_params(policy, cfg)
    looped = flatten(loop_meta_gradient(policy, meta, mb, cfg))
    cpu_obj = MetaObjective(policy, mb, cfg)
    _, _, cpu_old, cpu_vjp = loss_and_grad(cpu_obj, meta)
    v = torch.randn(looped.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    cpu_product = fisher_vector_product(cpu_obj, meta, cpu_old, cpu_vjp, 0.0)(v)

    policy = policy.to(DEVICE)
    meta = {n: p.to(DEVICE) for n, p in meta.items()}
    mb, v = _to(mb, DEVICE), v.to(DEVICE)
    obj = MetaObjective(policy, mb, cfg)
    _, g, old, vjp_fn = loss_and_grad(obj, meta)
    product = fisher_vector_product(obj, meta, old, vjp_fn, 0.0)(v)
    assert (flatten(g).cpu() - looped).abs().max() < 1e-5
    assert torch.allclose(product.cpu(), cpu_product, rtol=1e-8, atol=1e-10)

    # the traced program of a program of one, on the device: the same loss, gradient, product
    stacked, one, knobs = stack_members([meta]), _member(mb), _knobs(cfg, torch.float64)
    lr, damping = knobs["fast_lr"], knobs["cg_damping"]
    program = trpo_program(policy, cfg, (stacked, one, lr, damping, flatten(stacked, start=1)))
    assert program is not None
    t_loss, t_g, t_old, state = program.run_static(
        TRPOProgram.static_inputs(stacked, one, lr, damping)
    )
    traced = program.product(state, v[None])[0] - cfg.cg_damping * v
    assert torch.allclose(t_g[0], flatten(g)) and torch.allclose(traced, product, rtol=1e-8)
    assert all(torch.allclose(a[0], b) for a, b in zip(t_old, old))

    # the eager and the traced backends give the same TRPO direction on the device
    args = (policy, cfg, stacked, one, lr, damping)
    eager, traced_dir = direction("eager", *args), direction("traced", *args)
    assert torch.allclose(eager.loss, t_loss) and torch.allclose(eager.grad, t_g)
    for x, y in [
        (eager.direction, traced_dir.direction),
        (eager.h_direction, traced_dir.h_direction),
    ]:
        assert torch.allclose(x, y, rtol=1e-6, atol=1e-9)


def _small_policy(family, seed=0, widths=(16, 16)):
    return build_policy(
        chain_graph(widths),
        family.single_observation_space,
        family.single_action_space,
        seed=seed,
        device=DEVICE,
    )


def test_an_iteration_up_to_the_line_search_never_waits_for_the_host():
    family = make_task("navigation2d", device=DEVICE, horizon=20)
    cfg = MAMLConfig(num_tasks=4, episodes_per_task=5)
    policy = _small_policy(family)
    meta = stack_members([init_meta_params(policy, cfg)])
    knobs = _knobs(cfg)
    generators = [torch.Generator(device=DEVICE).manual_seed(0)]
    tasks = family.sample_tasks(cfg.num_tasks, 1)

    def iteration(seed: int) -> torch.Tensor:
        (mb,) = sample_meta_batch(
            [Cohort(policy, 1)], [meta], family, tasks, cfg, knobs["fast_lr"], generators, [seed]
        )
        args = (policy, cfg, meta, mb, knobs["fast_lr"], knobs["cg_damping"])
        eager, traced = direction("eager", *args), direction("traced", *args)
        return eager.direction + traced.h_direction

    iteration(0)  # warm-up: library handles, the trace, the captures
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = iteration(1)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert out.shape == (1, flatten(meta, start=1).shape[1])
    assert bool(torch.isfinite(out).all())


def test_evaluation_on_cuda_is_reproducible_and_returns_cpu_weights():
    evaluator = MAMLEvaluator("navigation2d", meta_iterations=3, **SMALL)
    graph = chain_graph((16, 16))
    a, b = (evaluator(graph, seed=4, device=DEVICE) for _ in range(2))
    assert a.ok, a.error
    assert a.metrics["device"].startswith(DEVICE)
    assert a.score == b.score and a.metrics["learning_curve"] == b.metrics["learning_curve"]
    assert all(t.device.type == "cpu" for t in a.state_dict.values())
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)


@pytest.mark.parametrize("name", NATIVE)
def test_native_families_step_the_same_on_cpu_and_cuda(name):
    cpu, gpu = make_task(name, device="cpu"), make_task(name, device=DEVICE)
    tasks = cpu.sample_tasks(3, 7)
    tasks_gpu = gpu.sample_tasks(3, 7)
    for key in tasks:
        assert torch.allclose(tasks[key].double(), tasks_gpu[key].cpu().double(), atol=1e-6)
    state_c, obs_c = cpu.reset(tasks, num_episodes=4, seed=3)
    state_g, obs_g = gpu.reset(tasks_gpu, num_episodes=4, seed=3)
    assert torch.allclose(obs_c.double(), obs_g.cpu().double(), atol=1e-5)
    space = cpu.single_action_space
    space.seed(0)
    for _ in range(10):
        action = torch.as_tensor(np.array([[space.sample() for _ in range(4)] for _ in range(3)]))
        state_c, obs_c, rew_c, term_c, _, _ = cpu.step(state_c, action)
        state_g, obs_g, rew_g, term_g, _, _ = gpu.step(state_g, action.to(DEVICE))
        assert torch.allclose(obs_c.double(), obs_g.cpu().double(), atol=1e-4)
        assert torch.allclose(rew_c.double(), rew_g.cpu().double(), atol=1e-4)
        assert torch.equal(term_c, term_g.cpu())


def _params(policy) -> dict[str, torch.Tensor]:
    return {n: p.detach() for n, p in policy.named_parameters()}


@pytest.mark.parametrize("name", NATIVE)
def test_rollouts_replayed_from_a_cuda_graph_equal_eager_rollouts(name, monkeypatch):
    family = make_task(name, device=DEVICE)
    first, second = _small_policy(family, seed=0), _small_policy(family, seed=1)
    narrow = _small_policy(family, seed=2, widths=(8,))
    programs = [  # a program of one; two cohorts, the first of two members
        ([Cohort(first, 1)], [stack_members([_params(first)])]),
        (
            [Cohort(first, 2), Cohort(narrow, 1)],
            [stack_members([_params(first), _params(second)]), stack_members([_params(narrow)])],
        ),
    ]
    tasks = family.sample_tasks(3, 1)

    def run(program, seed: int) -> Batch:
        cohorts, params = program
        seeds = [seed + 10 * p for p in range(sum(c.size for c in cohorts))]
        return rollout(
            cohorts,
            params,
            family,
            cat_tasks([tasks] * len(seeds)),
            4,
            stacked=False,
            generators=[torch.Generator(device=DEVICE).manual_seed(s) for s in seeds],
            seeds=seeds,
        )

    monkeypatch.setenv("AUTOMETA_CUDA_GRAPHS", "0")
    eager = [[run(program, 1), run(program, 2)] for program in programs]
    monkeypatch.setenv("AUTOMETA_CUDA_GRAPHS", "1")
    # the first call of each layout captures, the second only replays
    replayed = [[run(program, 1), run(program, 2)] for program in programs]
    # one graph per layout, on the first cohort's policy
    assert len(cuda_graphs.graphs_of(first)) == 2
    assert cuda_graphs.graphs_of(second) == [] and cuda_graphs.graphs_of(narrow) == []
    for (cohorts, _), eager_runs, replayed_runs in zip(programs, eager, replayed):
        members = sum(c.size for c in cohorts)
        for a, b in zip(eager_runs, replayed_runs):
            assert b.rewards.shape == (members, 3, 4, family.horizon)
            for x, y in zip(a, b):
                assert torch.allclose(x.double(), y.double(), atol=1e-6), name
        assert any(not torch.equal(x, y) for x, y in zip(*replayed_runs))  # new inputs


def test_cg_solve_and_trpo_step_replayed_from_cuda_graphs_equal_eager(monkeypatch):
    monkeypatch.delenv(COMPILE_ENV, raising=False)  # the traced backend, not the compiled one
    monkeypatch.setenv("AUTOMETA_CUDA_GRAPHS", "1")
    family = make_task("navigation2d", device=DEVICE, horizon=20)
    cfg = MAMLConfig(num_tasks=4, episodes_per_task=5)
    policy = _small_policy(family)
    meta = stack_members([init_meta_params(policy, cfg)])
    knobs = _knobs(cfg)
    lr, damping = knobs["fast_lr"], knobs["cg_damping"]
    generators = [torch.Generator(device=DEVICE).manual_seed(0)]
    batches = [
        sample_meta_batch(
            [Cohort(policy, 1)],
            [meta],
            family,
            family.sample_tasks(4, s),
            cfg,
            lr,
            generators,
            [s],
        )[0]
        for s in (1, 2)
    ]
    program = trpo_program(policy, cfg, (meta, batches[0], lr, damping, flatten(meta, start=1)))
    assert program is not None
    active = torch.ones(1, dtype=torch.bool, device=DEVICE)
    solves, steps = {}, {}
    for flag in ("0", "1"):
        monkeypatch.setenv("AUTOMETA_CUDA_GRAPHS", flag)
        solves[flag], steps[flag] = [], []
        for mb in batches:  # the first solve captures, the second only replays
            _, g, _, state = program.run_static(TRPOProgram.static_inputs(meta, mb, lr, damping))
            solves[flag].append(traced_solve(program, state, g, cfg.cg_iters))
            new, _, _ = trpo_step(policy, mb, meta, cfg, knobs, active, traced=True)
            steps[flag].append(flatten(new, start=1))
    # the step's traced direction is this program: its static part ("static",), the CG solve
    assert len(cuda_graphs.graphs_of(program)) == 2
    # rollouts before and after adaptation (not stacked, stacked), the line-search test
    assert len(cuda_graphs.graphs_of(policy)) == 3
    for eager, replayed in zip(solves["0"], solves["1"]):
        for x, y in zip(eager, replayed):  # direction and its product, (1, N)
            assert x.shape == g.shape
            assert torch.allclose(x, y, rtol=1e-5, atol=1e-7)
    assert not torch.equal(solves["1"][0][0], solves["1"][1][0])
    for eager, replayed in zip(steps["0"], steps["1"]):
        assert torch.allclose(eager, replayed, rtol=1e-5, atol=1e-7)
    assert not torch.equal(steps["1"][0], flatten(meta, start=1))  # the step moved


def test_evaluation_with_and_without_cuda_graphs_agree(monkeypatch):
    evaluator = MAMLEvaluator("navigation2d", meta_iterations=2, **SMALL)
    scores = {}
    for flag in ("0", "1"):
        monkeypatch.setenv("AUTOMETA_CUDA_GRAPHS", flag)
        result = evaluator(chain_graph((16, 16)), seed=2, device=DEVICE)
        assert result.ok, result.error
        scores[flag] = result.metrics["returns_by_step"]
    assert scores["1"] == pytest.approx(scores["0"], rel=1e-4, abs=1e-4)


def test_a_policy_that_cannot_be_captured_runs_eagerly(monkeypatch, caplog):
    evaluator = MAMLEvaluator("navigation2d", meta_iterations=2, **SMALL)
    graph = chain_graph((16,), op="test_host_sync")
    monkeypatch.setenv("AUTOMETA_CUDA_GRAPHS", "0")
    eager = evaluator(graph, seed=1, device=DEVICE)
    monkeypatch.setenv("AUTOMETA_CUDA_GRAPHS", "1")
    with caplog.at_level("WARNING", logger="autometa.meta.cuda_graphs"):
        fallback = evaluator(graph, seed=1, device=DEVICE)
    assert eager.ok and fallback.ok, (eager.error, fallback.error)
    assert fallback.metrics["returns_by_step"] == eager.metrics["returns_by_step"]
    # the rollout's time loop and the line-search test both fall back, each with its key
    assert "CUDA-graph capture of ('rollout', " in caplog.text
    assert "CUDA-graph capture of ('line-search', " in caplog.text
    assert "failed, running it eagerly" in caplog.text
    assert evaluator(chain_graph((16,)), seed=1, device=DEVICE).ok  # the device is still fine
