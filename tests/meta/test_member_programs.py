"""The member-axis TRPO direction: the traced program gives the eager ``vmap`` numbers.

Meta-parameters and meta-batches carry a leading member axis ``P`` (a single candidate is
``P = 1``); each member has its own step size and CG damping. The traced member program
(``vmap`` of the one-member program, split once-per-step / per-product) must give exactly the
numbers of the eager one-member code under ``vmap``, and a member's numbers must not depend
on how many members share the kernels.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path

import gymnasium as gym
import pytest
import torch
from helpers import chain_graph, diamond_graph
from meta_fixtures import ACT, OBS, synthetic_meta_batch
from torch.func import vmap
from torch.utils._pytree import tree_map

from autometa._maml_config import MAMLConfig
from autometa.graph import from_json
from autometa.meta import MAMLEvaluator
from autometa.meta._compiled import COMPILE_ENV
from autometa.meta.backend import (
    TRACE_MIN_STEPS,
    backend_for,
    compiled_steps,
    direction,
)
from autometa.meta.linalg import conjugate_gradient, flatten, unflatten
from autometa.meta.maml import MetaBatch, init_meta_params
from autometa.meta.traced import TRPOProgram
from autometa.policy import build_policy, register_op

GRAPHS = Path(__file__).parent / "graphs"
LR = (0.1, 0.3, 0.05)
DAMPING = (1e-2, 1e-3, 1e-1)
SIZES = dict(tasks=2, episodes=3, horizon=5)
CFG = MAMLConfig(cg_iters=4)


class _EagerOnlyLayer(torch.nn.Module):
    """A linear layer that computes only on real tensors: tracing (fake tensors) fails."""

    def __init__(self, in_features: int, width: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(in_features, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch._subclasses.fake_tensor.is_fake(x):
            raise RuntimeError("this layer needs real tensors")
        return torch.tanh(self.linear(x))


register_op("test_eager_only", _EagerOnlyLayer, overwrite=True)


def _layernorm_chain():
    return chain_graph((6, 5), "layernorm_tanh")


def _dag_cell(name):
    return from_json(json.loads((GRAPHS / f"{name}.json").read_text()))


CASES = {
    "chain": lambda: chain_graph((6, 5)),
    "diamond-sum-residual": lambda: diamond_graph("sum", residual=True),
    "diamond-concat": lambda: diamond_graph("concat"),
    "layernorm-chain": _layernorm_chain,
}


@cache
def _case(case: str, cfg: MAMLConfig, members: int, discrete: bool = False):
    """:func:`_inputs` of a named graph, kept for the session so its traced programs are
    traced once (the program cache is per policy module and input signature)."""
    graph = CASES[case]() if case in CASES else _dag_cell(case)
    return _inputs(graph, cfg, members, discrete)


def _inputs(graph, cfg, members, discrete=False):
    """(policy, meta, mb, lr, damping) of ``members`` members, stacked on a leading axis."""
    act = gym.spaces.Discrete(3) if discrete else ACT
    policies = [build_policy(graph, OBS, act, seed=s).double() for s in range(members)]
    metas = [init_meta_params(p, cfg) for p in policies]
    batches = [
        synthetic_meta_batch(p, cfg, seed=s, discrete=discrete, **SIZES)
        for s, p in enumerate(policies)
    ]
    mb = MetaBatch(
        *(
            tree_map(lambda *t: torch.stack(t), *parts)
            for parts in zip(*((b.train, b.grads, b.valid, b.valid_adv) for b in batches))
        )
    )
    meta = tree_map(lambda *t: torch.stack(t), *metas)
    f64 = torch.float64
    return (
        policies[0],
        meta,
        mb,
        torch.tensor(LR[:members], dtype=f64),
        torch.tensor(DAMPING[:members], dtype=f64),
    )


def _assert_equal(a, b):
    for name in a._fields:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, tuple):
            assert all(torch.equal(u, w) for u, w in zip(x, y, strict=True)), name
        else:
            assert torch.equal(x, y), name


def _both(policy, cfg, meta, mb, lr, damping, caplog):
    with caplog.at_level(logging.WARNING, logger="autometa.meta"):
        traced = direction("traced", policy, cfg, meta, mb, lr, damping)
    assert not [r for r in caplog.records if "eager" in r.getMessage()]  # no fallback taken
    eager = direction("eager", policy, cfg, meta, mb, lr, damping)
    return traced, eager


@pytest.mark.parametrize(
    "case,members",
    [
        ("chain", 1),
        ("chain", 3),
        ("diamond-sum-residual", 1),
        ("diamond-sum-residual", 3),
        ("diamond-concat", 3),
        ("layernorm-chain", 3),
    ],
)
def test_traced_member_direction_equals_eager_bitwise(case, members, caplog):
    policy, meta, mb, lr, damping = _case(case, CFG, members)
    cfg = CFG
    traced, eager = _both(policy, cfg, meta, mb, lr, damping, caplog)
    p, n = members, flatten(meta, start=1).shape[1]
    assert traced.loss.shape == (p,) and traced.direction.shape == (p, n)
    assert traced.grad.shape == traced.h_direction.shape == (p, n)
    assert all(o.shape[0] == p for o in traced.old)
    _assert_equal(traced, eager)
    assert not torch.equal(eager.direction, eager.grad)  # the solve did something


def test_traced_member_direction_of_a_categorical_policy_equals_eager(caplog):
    policy, meta, mb, lr, damping = _case("chain", CFG, 3, discrete=True)
    _assert_equal(*_both(policy, CFG, meta, mb, lr, damping, caplog))


@pytest.mark.parametrize(
    "changes",
    [dict(first_order=True), dict(meta_sgd=True, inner_steps=2)],
    ids=["first-order", "meta-sgd-two-steps"],
)
def test_traced_member_direction_equals_eager_under_other_configs(changes, caplog):
    cfg = MAMLConfig(cg_iters=4, **changes)
    policy, meta, mb, lr, damping = _inputs(diamond_graph("sum", residual=True), cfg, 3)
    _assert_equal(*_both(policy, cfg, meta, mb, lr, damping, caplog))


@pytest.mark.parametrize("name", ["eager", "traced"])
def test_member_zero_of_three_equals_a_population_of_one(name):
    policy, meta, mb, lr, damping = _case("diamond-sum-residual", CFG, 3)
    three = direction(name, policy, CFG, meta, mb, lr, damping)
    _, *one = _case("diamond-sum-residual", CFG, 1)
    assert all(torch.equal(a, b[:1]) for a, b in zip(one[2:], (lr, damping)))
    alone = direction(name, policy, CFG, *one)
    _assert_equal(alone, tree_map(lambda t: t[:1], three))
    assert not torch.equal(three.direction[1], three.direction[0])


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("dag_cell_trial0", marks=pytest.mark.slow),
        "dag_cell_trial4",
        pytest.param("dag_cell_trial5", marks=pytest.mark.slow),
    ],
)
def test_candidates_that_broke_the_traced_layouts_trace_as_members(name, caplog):
    policy, meta, mb, lr, damping = _case(name, CFG, 2)
    _assert_equal(*_both(policy, CFG, meta, mb, lr, damping, caplog))


def test_the_same_inputs_trace_again():
    """Tracing reads copies of member 0: a second trace of the same tensors still works."""
    policy, meta, mb, lr, damping = _case("chain", CFG, 1)
    args = (meta, mb, lr, damping, flatten(meta, start=1))
    first = TRPOProgram(policy, CFG, args)
    second = TRPOProgram(policy, CFG, args)
    inputs = TRPOProgram.static_inputs(meta, mb, lr, damping)
    assert all(
        torch.equal(a, b)
        for a, b in zip(first.run_static(inputs)[3], second.run_static(inputs)[3])
    )


def test_an_untraceable_policy_falls_back_to_eager_with_one_warning(caplog):
    cfg = MAMLConfig(cg_iters=3)
    graph = chain_graph((5,), "test_eager_only")
    policy, meta, mb, lr, damping = _inputs(graph, cfg, 2)
    with caplog.at_level(logging.WARNING, logger="autometa.meta"):
        first = direction("traced", policy, cfg, meta, mb, lr, damping)
        second = direction("traced", policy, cfg, meta, mb, lr, damping)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "tracing the TRPO program failed, using the eager products: this layer needs real tensors"
    ]
    eager = direction("eager", policy, cfg, meta, mb, lr, damping)
    _assert_equal(first, eager)
    _assert_equal(second, eager)


def test_backend_choice_counts_one_members_transitions(monkeypatch):
    cfg = MAMLConfig()
    _, _, mb, _, _ = _case("chain", CFG, 3)
    per_member = SIZES["tasks"] * SIZES["episodes"] * SIZES["horizon"]
    exactly = cfg.replace(meta_iterations=-(-TRACE_MIN_STEPS // per_member))
    below = cfg.replace(meta_iterations=TRACE_MIN_STEPS // per_member - 1)
    assert backend_for(None, mb, exactly) == "traced"
    assert backend_for(None, mb, below) == "eager"  # not the three members' total
    assert backend_for(True, mb, below) == "traced"
    assert backend_for(False, mb, exactly) == "eager"
    assert backend_for(None, mb, exactly, compiled=True) == "compiled"  # the evaluator's setting
    assert backend_for(None, mb, below, compiled=True) == "eager"  # only where traced would run
    monkeypatch.setenv(COMPILE_ENV, "1")  # opt-in: compiled wherever traced would run
    assert backend_for(None, mb, exactly) == "compiled"
    assert backend_for(None, mb, below) == "eager"


@pytest.mark.slow  # inductor compiles both parts: tens of seconds
def test_compiled_member_direction_is_close_to_eager(caplog):
    policy, meta, mb, lr, damping = _case("chain", CFG, 3)
    before = compiled_steps()
    with caplog.at_level(logging.WARNING, logger="autometa.meta"):
        compiled = direction("compiled", policy, CFG, meta, mb, lr, damping)
    assert not caplog.records  # neither compiling nor tracing fell back
    assert compiled_steps() == before + 1  # what a record's "trpo_compiled" is read from
    eager = direction("eager", policy, CFG, meta, mb, lr, damping)
    for name in ("loss", "grad", "direction", "h_direction"):  # fused loops round differently
        a, b = getattr(compiled, name), getattr(eager, name)
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12), name


def test_conjugate_gradient_on_rows_equals_it_under_vmap_bitwise():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(4, 6, 6, generator=gen, dtype=torch.float64)
    a = a @ a.transpose(1, 2) + torch.eye(6, dtype=torch.float64)
    b = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    b[2] = 0.0  # converged from the start: its updates are masked
    rows = conjugate_gradient(lambda p: (a @ p[..., None])[..., 0], b, iters=8)
    one = vmap(lambda m, v: conjugate_gradient(lambda p: (m @ p[..., None])[..., 0], v, 8))(a, b)
    assert all(torch.equal(x, y) for x, y in zip(rows, one))
    x, ax = rows
    assert torch.equal(x[2], torch.zeros(6, dtype=torch.float64))
    exact = torch.linalg.solve(a, b)
    assert torch.allclose(x, exact, rtol=1e-6, atol=1e-8)
    assert torch.allclose(ax, (a @ x[..., None])[..., 0], rtol=1e-8, atol=1e-10)


def test_member_flatten_round_trips_and_keeps_plain_dicts():
    params = {"w": torch.arange(12.0).reshape(3, 2, 2), "b": torch.arange(3.0)}
    flat = flatten(params, start=1)
    assert flat.shape == (3, 5)
    assert torch.equal(flat[1], flatten({n: t[1] for n, t in params.items()}))
    back = unflatten(flat, params, start=1)
    assert all(torch.equal(back[n], params[n]) for n in params)
    assert torch.equal(flatten(params), torch.cat([params["w"].reshape(-1), params["b"]]))


def test_map_members_runs_each_member_through_its_own_code_on_a_cpu():
    """On a CPU ``map_members`` calls the one-member function once per member on that member's
    slices (no ``vmap``) and stacks what it returns, pytrees included."""
    from autometa.meta.members import map_members

    seen = []

    def one(x, knobs):
        seen.append((tuple(x.shape), torch._C._functorch.is_batchedtensor(x)))
        return x.sum() * knobs["scale"], {"twice": 2.0 * x}

    x = torch.randn(3, 5)
    knobs = {"scale": torch.tensor([1.0, 2.0, 3.0])}
    total, out = map_members(one, x, knobs, device=torch.device("cpu"))
    assert seen == [((5,), False)] * 3
    for p in range(3):
        assert torch.equal(total[p], x[p].sum() * knobs["scale"][p])
        assert torch.equal(out["twice"][p], 2.0 * x[p])
    assert total.shape == (3,) and out["twice"].shape == (3, 5)


@pytest.mark.slow  # inductor compiles the tiny program: tens of seconds
def test_an_evaluation_records_that_the_compiled_program_rounded_it(monkeypatch):
    tiny = dict(num_tasks=2, episodes_per_task=2, test_tasks=2, test_episodes=2)
    evaluator = MAMLEvaluator("navigation2d", meta_iterations=2, traced=True, **tiny,
                              family_options={"horizon": 5})  # fmt: skip
    graph = chain_graph((8,))
    plain = evaluator(graph, seed=0)
    monkeypatch.setenv(COMPILE_ENV, "1")
    compiled = evaluator(graph, seed=0)
    assert plain.ok and compiled.ok
    assert "trpo_compiled" not in plain.metrics and compiled.metrics["trpo_compiled"] is True
    # the evaluator's own setting, as a study stores it, does what the environment did
    monkeypatch.delenv(COMPILE_ENV)
    by_setting = MAMLEvaluator.from_config({**evaluator.to_config(), "compiled": True})
    assert by_setting.to_config()["compiled"] is True and "compiled" not in evaluator.to_config()
    again = by_setting(graph, seed=0)
    assert again.metrics["trpo_compiled"] is True and again.score == compiled.score
