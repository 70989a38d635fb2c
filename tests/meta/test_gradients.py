"""Second order is right: batched torch.func meta-gradients and TRPO products vs plain autograd.

The traced TRPO program (``autometa.meta.traced``) is checked against the eager products.
"""

from __future__ import annotations

import pytest
import torch
from meta_fixtures import float64_policy, synthetic_meta_batch
from torch.func import grad
from torch.utils._pytree import tree_map

from autometa.meta import MAMLConfig
from autometa.meta.linalg import conjugate_gradient, fisher_vector_product, flatten, unflatten
from autometa.meta.maml import MetaBatch, MetaObjective, init_meta_params, loss_and_grad
from autometa.meta.members import Member, member_knobs, stack_members
from autometa.meta.reference import loop_kl_hvp, loop_meta_gradient
from autometa.meta.traced import TRPOProgram, split_graph, trpo_program
from autometa.meta.trpo import trpo_step


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

    from autometa.meta.reference import LoopMAML
    from autometa.policy import build_policy
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


@pytest.mark.parametrize(
    "discrete,meta_sgd,inner_steps,first_order",
    [(False, False, 1, False), (True, True, 2, False), (False, True, 1, True)],
)
def test_traced_program_equals_eager_loss_gradient_and_product(
    discrete, meta_sgd, inner_steps, first_order
):
    policy = float64_policy(discrete=discrete)
    cfg = MAMLConfig(
        fast_lr=0.5, meta_sgd=meta_sgd, inner_steps=inner_steps, first_order=first_order
    )
    mb = synthetic_meta_batch(policy, cfg, discrete=discrete)
    meta = init_meta_params(policy, cfg)
    obj = MetaObjective(policy, mb, cfg)
    loss, g, old, vjp_fn = loss_and_grad(obj, meta)
    eager = fisher_vector_product(obj, meta, old, vjp_fn, cfg.cg_damping)
    program, state = _program_of_one(policy, cfg, mb, meta)
    gen = torch.Generator().manual_seed(2)
    for _ in range(2):  # the state is reused across products
        v = torch.randn(flatten(meta).shape, generator=gen, dtype=torch.float64)
        assert torch.allclose(program.product(state, v[None])[0], eager(v), rtol=1e-10, atol=1e-12)
    t_loss, t_g, t_old = state.head
    assert torch.allclose(t_loss[0], loss) and torch.allclose(t_g[0], flatten(g))
    assert all(torch.equal(a[0], b) for a, b in zip(t_old, old))
    # the same trace serves a new meta-batch of the same shapes (data are graph inputs)
    mb2 = synthetic_meta_batch(policy, cfg, seed=5, discrete=discrete)
    obj2 = MetaObjective(policy, mb2, cfg)
    program2, state2 = _program_of_one(policy, cfg, mb2, meta)
    assert program2 is program
    _, g2, old2, vjp2 = loss_and_grad(obj2, meta)
    assert torch.allclose(state2.head[1][0], flatten(g2))
    eager2 = fisher_vector_product(obj2, meta, old2, vjp2, cfg.cg_damping)
    assert torch.allclose(program.product(state2, v[None])[0], eager2(v), rtol=1e-10, atol=1e-12)


class _State(list):
    """The static part's state, with the loss, gradient and old outputs it also returned."""

    head: tuple


def _program_of_one(policy, cfg, mb, meta):
    """The traced program of a program of one member, and its static part's state at ``meta``."""
    one, stacked = _member(mb), stack_members([meta])
    knobs = [
        torch.full((1,), value, dtype=torch.float64) for value in (cfg.fast_lr, cfg.cg_damping)
    ]
    program = trpo_program(policy, cfg, (stacked, one, *knobs, flatten(stacked, start=1)))
    assert program is not None
    loss, g, old, state = program.run_static(TRPOProgram.static_inputs(stacked, one, *knobs))
    state = _State(state)
    state.head = (loss, g, old)
    return program, state


def test_traced_product_matches_double_backprop_and_trpo_step_is_unchanged():
    policy, cfg, mb, meta, obj, _, _, v = _kl_setup()
    program, state = _program_of_one(policy, cfg, mb, meta)
    exact = flatten(loop_kl_hvp(policy, meta, mb, cfg, unflatten(v, meta)))
    product = program.product(state, v[None])[0]
    assert torch.allclose(product, exact + cfg.cg_damping * v, rtol=1e-8)
    members = [Member(0, cfg)]
    knobs = {k: t.double() for k, t in member_knobs(members, torch.device("cpu")).items()}
    one = (policy, _member(mb), stack_members([meta]), cfg, knobs, torch.ones(1, dtype=bool))
    new_t, loss_t, _ = trpo_step(*one, traced=True)
    new_e, loss_e, _ = trpo_step(*one, traced=False)
    new_t, new_e = {n: t[0] for n, t in new_t.items()}, {n: t[0] for n, t in new_e.items()}
    assert torch.allclose(flatten(new_t), flatten(new_e), rtol=1e-10, atol=1e-12)
    assert torch.allclose(loss_t, loss_e) and not torch.equal(flatten(new_t), flatten(meta))


def _member(mb):
    """``mb`` as the meta-batch of a program of one (a member axis of length 1)."""
    return MetaBatch(*tree_map(lambda t: t[None], (mb.train, mb.grads, mb.valid, mb.valid_adv)))


def test_split_graph_separates_the_part_independent_of_the_dynamic_input():
    from torch.fx.experimental.proxy_tensor import make_fx

    def f(a, v):
        s = torch.tanh(a) * 2.0
        return s.sum(), (s * v).sum() + v.sum()

    a, v = torch.randn(5), torch.randn(5)
    gm = make_fx(f)(a, v)
    static, product = split_graph(gm, [n for n in gm.graph.nodes if n.op == "placeholder"][-1])
    total, *state = static(a)
    assert torch.allclose(total, torch.tanh(a).sum() * 2.0)
    assert torch.allclose(product(*state, v), f(a, v)[1])
    assert not any(n.target == torch.ops.aten.tanh.default for n in product.graph.nodes)
