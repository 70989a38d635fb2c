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

from autometa.meta import MAMLConfig, MAMLEvaluator, cuda_graphs
from autometa.meta.backend import traced_solve
from autometa.meta.linalg import conjugate_gradient, fisher_vector_product, flatten
from autometa.meta.maml import (
    MetaBatch,
    MetaObjective,
    init_meta_params,
    loss_and_grad,
    sample_meta_batch,
)
from autometa.meta.reference import loop_meta_gradient
from autometa.meta.rollout import Batch, rollout
from autometa.meta.traced import trpo_program
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


def _to(mb: MetaBatch, device: str) -> MetaBatch:
    move = lambda b: Batch(*(x.to(device) for x in b))  # noqa: E731
    return MetaBatch(
        [(move(b), a.to(device)) for b, a in mb.train],
        [{n: g.to(device) for n, g in grads.items()} for grads in mb.grads],
        move(mb.valid),
        mb.valid_adv.to(device),
    )


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

    policy_cuda = policy.to("cuda")
    meta_cuda = {n: p.to("cuda") for n, p in meta.items()}
    obj = MetaObjective(policy_cuda, _to(mb, "cuda"), cfg)
    _, g, old, vjp_fn = loss_and_grad(obj, meta_cuda)
    product = fisher_vector_product(obj, meta_cuda, old, vjp_fn, 0.0)(v.cuda())
    assert (flatten(g).cpu() - looped).abs().max() < 1e-5
    assert torch.allclose(product.cpu(), cpu_product, rtol=1e-8, atol=1e-10)
    program = trpo_program(obj, meta_cuda, flatten(meta_cuda))
    assert program is not None
    _, t_g, _, state = program.prepare(meta_cuda, obj.mb, flatten(meta_cuda))
    traced = program.product(state, v.cuda()) - cfg.cg_damping * v.cuda()
    assert torch.allclose(t_g, flatten(g)) and torch.allclose(traced, product, rtol=1e-8)


def test_an_iteration_up_to_the_line_search_never_waits_for_the_host():
    family = make_task("navigation2d", device="cuda", horizon=20)
    cfg = MAMLConfig(num_tasks=4, episodes_per_task=5)
    policy = build_policy(
        chain_graph((16, 16)),
        family.single_observation_space,
        family.single_action_space,
        seed=0,
        device="cuda",
    )
    meta = init_meta_params(policy, cfg)
    generator = torch.Generator(device="cuda").manual_seed(0)
    tasks = family.sample_tasks(cfg.num_tasks, 1)

    def iteration(seed: int) -> torch.Tensor:
        mb = sample_meta_batch(policy, meta, family, tasks, cfg, generator, seed)
        obj = MetaObjective(policy, mb, cfg)
        _, g, old, vjp_fn = loss_and_grad(obj, meta)
        fvp = fisher_vector_product(obj, meta, old, vjp_fn, cfg.cg_damping)
        program = trpo_program(obj, meta, flatten(meta))
        _, _, _, state = program.prepare(meta, mb, flatten(meta))
        x, _ = conjugate_gradient(fvp, flatten(g), cfg.cg_iters)
        return x + program.product(state, x)

    iteration(0)  # warm-up: library handles, the trace
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = iteration(1)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert bool(torch.isfinite(out).all())


def test_evaluation_on_cuda_is_reproducible_and_returns_cpu_weights():
    evaluator = MAMLEvaluator("navigation2d", meta_iterations=3, **SMALL)
    graph = chain_graph((16, 16))
    a, b = (evaluator(graph, seed=4, device="cuda") for _ in range(2))
    assert a.ok, a.error
    assert a.metrics["device"].startswith("cuda")
    assert a.score == b.score and a.metrics["learning_curve"] == b.metrics["learning_curve"]
    assert all(t.device.type == "cpu" for t in a.state_dict.values())
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)


@pytest.mark.parametrize("name", NATIVE)
def test_native_families_step_the_same_on_cpu_and_cuda(name):
    cpu, gpu = make_task(name, device="cpu"), make_task(name, device="cuda")
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
        state_g, obs_g, rew_g, term_g, _, _ = gpu.step(state_g, action.to("cuda"))
        assert torch.allclose(obs_c.double(), obs_g.cpu().double(), atol=1e-4)
        assert torch.allclose(rew_c.double(), rew_g.cpu().double(), atol=1e-4)
        assert torch.equal(term_c, term_g.cpu())


def _small_policy(family, seed=0):
    return build_policy(
        chain_graph((16, 16)),
        family.single_observation_space,
        family.single_action_space,
        seed=seed,
        device="cuda",
    )


@pytest.mark.parametrize("name", NATIVE)
def test_rollouts_replayed_from_a_cuda_graph_equal_eager_rollouts(name, monkeypatch):
    family = make_task(name, device="cuda")
    policy = _small_policy(family)
    params = {n: p.detach() for n, p in policy.named_parameters()}
    tasks = family.sample_tasks(3, 1)

    def run(seed: int) -> Batch:
        generator = torch.Generator(device="cuda").manual_seed(seed)
        return rollout(
            policy, params, family, tasks, 4, stacked=False, generator=generator, seed=seed
        )

    monkeypatch.setenv("AUTOMETA_CUDA_GRAPHS", "0")
    eager = [run(1), run(2)]
    monkeypatch.setenv("AUTOMETA_CUDA_GRAPHS", "1")
    replayed = [run(1), run(2)]  # the first call captures, the second only replays
    assert len(cuda_graphs.graphs_of(policy)) == 1
    for a, b in zip(eager, replayed):
        for x, y in zip(a, b):
            assert torch.allclose(x.double(), y.double(), atol=1e-6), name
    assert any(not torch.equal(x, y) for x, y in zip(*replayed))  # new inputs, new rollout


def test_cg_solve_replayed_from_a_cuda_graph_equals_eager(monkeypatch):
    family = make_task("navigation2d", device="cuda", horizon=20)
    cfg = MAMLConfig(num_tasks=4, episodes_per_task=5)
    policy = _small_policy(family)
    meta = init_meta_params(policy, cfg)
    generator = torch.Generator(device="cuda").manual_seed(0)
    batches = [
        sample_meta_batch(policy, meta, family, family.sample_tasks(4, s), cfg, generator, s)
        for s in (1, 2)
    ]
    program = trpo_program(MetaObjective(policy, batches[0], cfg), meta, flatten(meta))
    solves, steps = {}, {}
    for flag in ("0", "1"):
        monkeypatch.setenv("AUTOMETA_CUDA_GRAPHS", flag)
        solves[flag], steps[flag] = [], []
        for mb in batches:  # the first solve captures, the second only replays
            _, g, _, state = program.prepare(meta, mb, flatten(meta))
            solves[flag].append(traced_solve(program, state, g, cfg.cg_iters))
            new, _, _ = trpo_step(MetaObjective(policy, mb, cfg), meta, cfg, traced=True)
            steps[flag].append(flatten(new))
    assert len(cuda_graphs.graphs_of(program)) == 2  # the once-per-step part, the CG solve
    assert len(cuda_graphs.graphs_of(policy)) == 3  # two rollouts, the line-search test
    for eager, replayed in zip(solves["0"], solves["1"]):
        for x, y in zip(eager, replayed):  # direction and its product
            assert torch.allclose(x, y, rtol=1e-5, atol=1e-7)
    assert not torch.equal(solves["1"][0][0], solves["1"][1][0])
    for eager, replayed in zip(steps["0"], steps["1"]):
        assert torch.allclose(eager, replayed, rtol=1e-5, atol=1e-7)


def test_evaluation_with_and_without_cuda_graphs_agree(monkeypatch):
    evaluator = MAMLEvaluator("navigation2d", meta_iterations=2, **SMALL)
    scores = {}
    for flag in ("0", "1"):
        monkeypatch.setenv("AUTOMETA_CUDA_GRAPHS", flag)
        result = evaluator(chain_graph((16, 16)), seed=2, device="cuda")
        assert result.ok, result.error
        scores[flag] = result.metrics["returns_by_step"]
    assert scores["1"] == pytest.approx(scores["0"], rel=1e-4, abs=1e-4)


def test_a_policy_that_cannot_be_captured_runs_eagerly(monkeypatch, caplog):
    evaluator = MAMLEvaluator("navigation2d", meta_iterations=2, **SMALL)
    graph = chain_graph((16,), op="test_host_sync")
    monkeypatch.setenv("AUTOMETA_CUDA_GRAPHS", "0")
    eager = evaluator(graph, seed=1, device="cuda")
    monkeypatch.setenv("AUTOMETA_CUDA_GRAPHS", "1")
    with caplog.at_level("WARNING", logger="autometa.meta.cuda_graphs"):
        fallback = evaluator(graph, seed=1, device="cuda")
    assert eager.ok and fallback.ok, (eager.error, fallback.error)
    assert fallback.metrics["returns_by_step"] == eager.metrics["returns_by_step"]
    assert "CUDA-graph capture of ('rollout'" in caplog.text
    assert evaluator(chain_graph((16,)), seed=1, device="cuda").ok  # the device is still fine
