"""Second order is right: batched torch.func meta-gradients and TRPO products vs plain autograd."""

from __future__ import annotations

import pytest
import torch
from conftest import float64_policy, synthetic_meta_batch
from torch.func import grad

from autometa.meta.config import MAMLConfig
from autometa.meta.maml import MetaObjective, init_meta_params, loss_and_grad
from autometa.meta.reference import loop_kl_hvp, loop_meta_gradient
from autometa.meta.trpo import conjugate_gradient, fisher_vector_product, flatten, unflatten


def _max_diff(a: dict, b: dict) -> float:
    return max(float((a[n] - b[n]).abs().max()) for n in a)


@pytest.mark.parametrize("inner_steps", [1, 2])
@pytest.mark.parametrize("discrete", [False, True])
def test_batched_meta_gradient_matches_per_task_loop(inner_steps, discrete):
    policy = float64_policy(discrete=discrete)
    cfg = MAMLConfig(inner_steps=inner_steps, fast_lr=0.5)
    mb = synthetic_meta_batch(policy, cfg, discrete=discrete)
    meta = init_meta_params(policy, cfg)
    _, batched, _, _ = loss_and_grad(MetaObjective(policy, mb, cfg), meta)
    looped = loop_meta_gradient(policy, meta, mb, cfg)
    assert _max_diff(batched, looped) < 1e-5
    assert max(float(g.abs().max()) for g in batched.values()) > 1e-3  # not trivially zero


def test_first_order_matches_detached_loop_and_differs_from_second_order():
    policy = float64_policy()
    second = MAMLConfig(fast_lr=0.5)
    first = MAMLConfig(fast_lr=0.5, first_order=True)
    mb = synthetic_meta_batch(policy, second)
    meta = init_meta_params(policy, second)
    _, g1, _, _ = loss_and_grad(MetaObjective(policy, mb, first), meta)
    _, g2, _, _ = loss_and_grad(MetaObjective(policy, mb, second), meta)
    assert _max_diff(g1, loop_meta_gradient(policy, meta, mb, first)) < 1e-5
    assert _max_diff(g1, g2) > 1e-3


def _kl_setup(discrete=False, meta_sgd=False):
    policy = float64_policy(discrete=discrete)
    cfg = MAMLConfig(fast_lr=0.5, meta_sgd=meta_sgd)
    mb = synthetic_meta_batch(policy, cfg, discrete=discrete)
    meta = init_meta_params(policy, cfg)
    obj = MetaObjective(policy, mb, cfg)
    _, _, old, vjp_fn = loss_and_grad(obj, meta)
    fvp = fisher_vector_product(obj, meta, old, vjp_fn, damping=0.0)
    v = torch.randn(
        flatten(meta).shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    return policy, cfg, mb, meta, obj, old, fvp, v


@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("meta_sgd", [False, True])
def test_kl_hessian_vector_product_matches_finite_differences(discrete, meta_sgd):
    _, _, _, meta, obj, old, fvp, v = _kl_setup(discrete, meta_sgd)

    def kl_grad(flat):
        return flatten(grad(lambda m: obj.kl(obj.outputs(m), old))(unflatten(flat, meta)))

    eps, theta = 1e-5, flatten(meta)
    finite_diff = (kl_grad(theta + eps * v) - kl_grad(theta - eps * v)) / (2 * eps)
    product = fvp(v)
    assert torch.allclose(product, finite_diff, rtol=1e-5, atol=1e-7)
    assert float(product @ v) > 0  # positive curvature along v


def test_kl_hessian_vector_product_matches_double_backprop():
    policy, cfg, mb, meta, _, _, fvp, v = _kl_setup()
    exact = flatten(loop_kl_hvp(policy, meta, mb, cfg, unflatten(v, meta)))
    assert torch.allclose(fvp(v), exact, rtol=1e-8, atol=1e-10)


def test_conjugate_gradient_solves_spd_system_and_returns_product():
    gen = torch.Generator().manual_seed(0)
    m = torch.randn(12, 12, generator=gen, dtype=torch.float64)
    a = m @ m.T + 12 * torch.eye(12, dtype=torch.float64)
    b = torch.randn(12, generator=gen, dtype=torch.float64)
    x, ax = conjugate_gradient(lambda p: a @ p, b, iters=30, residual_tol=1e-24)
    assert torch.allclose(x, torch.linalg.solve(a, b), atol=1e-8)
    assert torch.allclose(ax, a @ x, atol=1e-8)


def test_loop_reference_iteration_runs_and_moves_the_weights():
    from helpers import chain_graph

    from autometa.build import build_policy
    from autometa.meta.reference import LoopMAML
    from autometa.tasks import make_task

    family = make_task("navigation2d", horizon=5)
    policy = build_policy(
        chain_graph((4,)), family.single_observation_space, family.single_action_space, seed=0
    )
    before = [p.detach().clone() for p in policy.parameters()]
    loop = LoopMAML(policy, family, MAMLConfig(num_tasks=2, episodes_per_task=3), seed=0)
    assert loop.iteration(0) < 0
    assert loop.env_steps == 2 * 2 * 3 * 5
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.parameters()))
