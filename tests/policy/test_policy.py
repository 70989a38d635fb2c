import gymnasium as gym
import pytest
import torch
from helpers import chain_graph, diamond_graph
from torch import nn
from torch.func import functional_call, grad, vmap

from autometa.errors import BuildError, UnknownNameError
from autometa.policy import (
    OPS,
    GraphPolicy,
    build_policy,
    count_macs,
    count_params,
    register_op,
)

OBS = gym.spaces.Box(-1.0, 1.0, (3,))
ACT = gym.spaces.Box(-1.0, 1.0, (2,))


def test_chain_matches_a_hand_written_mlp():
    policy = build_policy(chain_graph((8, 4)), OBS, ACT, seed=0)
    ref = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 4), nn.Tanh(), nn.Linear(4, 2))
    ref[0].load_state_dict(policy.layers[0].linear.state_dict())
    ref[2].load_state_dict(policy.layers[1].linear.state_dict())
    ref[4].load_state_dict(policy.head.state_dict())
    obs = torch.randn(7, 3)
    mean, log_std = policy(obs)
    torch.testing.assert_close(mean, ref(obs))
    assert log_std.shape == (7, 2) and torch.all(log_std == 0.0)
    assert policy.num_params == (3 * 8 + 8) + (8 * 4 + 4) + (4 * 2 + 2) + 2
    assert policy.macs == 3 * 8 + 8 * 4 + 4 * 2


def test_discrete_head_and_distributions():
    policy = build_policy(diamond_graph(), OBS, gym.spaces.Discrete(5), seed=0)
    (logits,) = policy(torch.randn(4, 6, 3))
    assert logits.shape == (4, 6, 5)
    dist = policy.distribution(torch.randn(4, 3))
    assert dist.sample().shape == (4,)
    gauss = build_policy(diamond_graph(), OBS, ACT).distribution(torch.randn(4, 3))
    assert gauss.log_prob(torch.zeros(4, 2)).shape == (4,)


def test_merges_and_residual_compute_what_the_docs_say():
    policy = build_policy(diamond_graph("sum", residual=True), OBS, ACT, seed=1)
    obs = torch.randn(5, 3)
    a = policy.layers[0](obs)
    b = policy.layers[1](obs)
    merged = a + torch.nn.functional.pad(b, (0, 3))
    c = policy.layers[2](merged) + merged[:, :6]
    torch.testing.assert_close(policy.features(obs), torch.cat([c, b], dim=-1))


def test_counts_without_allocating_match_the_built_policy():
    for graph in (chain_graph(), diamond_graph(), diamond_graph("sum", True)):
        policy = build_policy(graph, OBS, ACT)
        assert count_params(graph, 3, 2) == policy.num_params
        assert count_macs(graph, 3, 2) == policy.macs
    assert (
        count_params(diamond_graph(), 3, 5, discrete=True)
        == build_policy(diamond_graph(), OBS, gym.spaces.Discrete(5)).num_params
    )


def test_seeded_init_is_reproducible_and_xavier():
    a = build_policy(diamond_graph(), OBS, ACT, seed=3).state_dict()
    b = build_policy(diamond_graph(), OBS, ACT, seed=3).state_dict()
    c = build_policy(diamond_graph(), OBS, ACT, seed=4).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert all(torch.all(v == 0) for k, v in a.items() if k.endswith("bias"))


def test_vmap_over_parameter_sets_equals_a_loop():
    policy = build_policy(diamond_graph("sum", residual=True), OBS, ACT, seed=0)
    base = {k: v.detach() for k, v in policy.named_parameters()}
    gen = torch.Generator().manual_seed(0)
    stacked = {
        k: torch.stack([v + 0.1 * torch.randn(v.shape, generator=gen) for _ in range(4)])
        for k, v in base.items()
    }
    obs = torch.randn(4, 9, 3)

    def mean(params, o):
        return functional_call(policy, params, (o,))[0]

    batched = vmap(mean)(stacked, obs)
    looped = torch.stack([mean({k: v[i] for k, v in stacked.items()}, obs[i]) for i in range(4)])
    torch.testing.assert_close(batched, looped, rtol=1e-5, atol=1e-6)

    def loss(params, o):
        return functional_call(policy, params, (o,))[0].pow(2).mean()

    grads = vmap(grad(loss))(stacked, obs)
    for i in range(4):
        single = grad(loss)({k: v[i] for k, v in stacked.items()}, obs[i])
        for k in single:
            torch.testing.assert_close(grads[k][i], single[k], rtol=1e-5, atol=1e-6)


def test_unsupported_spaces_and_failing_ops_raise_build_errors():
    with pytest.raises(BuildError, match="flat Box observations"):
        build_policy(chain_graph(), gym.spaces.Discrete(3), ACT)
    with pytest.raises(BuildError, match="flat Box or a Discrete"):
        build_policy(chain_graph(), OBS, gym.spaces.MultiBinary(2))

    def broken(i, o):
        raise RuntimeError("no such kernel")

    register_op("test_broken", broken, overwrite=True)
    graph = chain_graph()
    graph.nodes["l0"]["op"] = "test_broken"
    try:
        with pytest.raises(BuildError, match="op 'test_broken' of node 'l0': no such kernel"):
            build_policy(graph, OBS, ACT)
    finally:
        OPS.unregister("test_broken")  # other tests list the registered ops


def test_user_ops_are_registered_by_name():
    register_op("test_linear_sin", lambda i, o: _Sin(i, o), overwrite=True)
    graph = chain_graph((4,), op="test_linear_sin")
    try:
        policy = build_policy(graph, OBS, ACT)
    finally:
        OPS.unregister("test_linear_sin")  # other tests list the registered ops
    assert isinstance(policy, GraphPolicy) and policy(torch.zeros(1, 3))[0].shape == (1, 2)
    with pytest.raises(UnknownNameError, match="unknown op 'nope'"):
        from autometa.policy import get_op

        get_op("nope")


class _Sin(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.linear = nn.Linear(i, o)

    def forward(self, x):
        return torch.sin(self.linear(x))
