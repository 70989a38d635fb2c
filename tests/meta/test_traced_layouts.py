"""The traced TRPO program runs every candidate the eager products run, with the same numbers.

Tracing uses fake tensors, whose strides come from PyTorch's meta kernels; where those differ
from the real kernels (``elu_backward`` keeps a permuted input layout on the CPU and CUDA, its
meta kernel returns a contiguous tensor), a recorded ``view`` used to fail on the real tensor.
The graphs in ``graphs/`` are dag-cell candidates that crashed this way at the default
evaluation size; ``traced=True`` forces the traced program at a reduced size, which is what
the default size switches on by itself.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from helpers import diamond_graph

from autometa.graph import from_json
from autometa.meta import MAMLEvaluator
from autometa.meta.layouts import contiguous_clones, layout_free

GRAPHS = sorted((Path(__file__).parent / "graphs").glob("dag_cell_*.json"))
SMALL = dict(
    num_tasks=4,
    episodes_per_task=4,
    test_tasks=4,
    test_episodes=4,
    meta_iterations=2,
    family_options={"horizon": 25},
)


def _evaluate(graph, traced: bool, **options):
    evaluator = MAMLEvaluator("navigation2d", traced=traced, **{**SMALL, **options})
    return evaluator(graph, seed=3, device="cpu")


def _assert_same(traced, eager):
    assert traced.ok, traced.error
    assert eager.ok, eager.error
    curve_t = traced.metrics["learning_curve"] + traced.metrics["returns_by_step"]
    curve_e = eager.metrics["learning_curve"] + eager.metrics["returns_by_step"]
    assert curve_t == pytest.approx(curve_e, rel=1e-4, abs=1e-4)
    for name, tensor in eager.state_dict.items():
        assert torch.allclose(traced.state_dict[name], tensor, rtol=1e-4, atol=1e-5), name


@pytest.mark.parametrize("path", GRAPHS, ids=[p.stem for p in GRAPHS])
def test_candidates_that_crashed_the_traced_program_now_meta_train_traced(path, caplog):
    graph = from_json(json.loads(path.read_text()))
    with caplog.at_level(logging.WARNING, logger="autometa.meta"):
        traced = _evaluate(graph, traced=True)
    assert not [r for r in caplog.records if "eager" in r.getMessage()]  # no fallback taken
    _assert_same(traced, _evaluate(graph, traced=False))


@pytest.mark.parametrize(
    "merge,residual,op",
    [("concat", False, "linear_elu"), ("sum", True, "linear_elu"), ("concat", True, "identity")],
)
def test_dag_merges_residuals_and_identity_nodes_trace_like_eager(merge, residual, op):
    graph = diamond_graph(merge=merge, residual=residual)
    graph.nodes["c"]["op"] = op
    if op == "identity":
        del graph.nodes["c"]["width"]
    graph.graph["hyperparameters"] = {"fast_lr": 0.3, "inner_steps": 2}
    _assert_same(_evaluate(graph, traced=True), _evaluate(graph, traced=False))


def test_layout_free_keeps_views_that_are_written_through():
    from torch.fx.experimental.proxy_tensor import make_fx

    def f(a):
        b = a.view(-1)  # written through below: must stay an alias of ``a``'s clone
        c = a.new_zeros(a.shape)
        d = c.view(-1)
        d.add_(1.0)
        return b * 2.0, c

    gm = make_fx(f)(torch.randn(2, 3))
    views = [n for n in gm.graph.nodes if n.target == torch.ops.aten.view.default]
    assert len(views) == 2
    assert layout_free(gm) == 1  # ``b``'s view becomes a reshape, ``d``'s stays a view
    a = torch.randn(3, 2).t()  # a transposed layout: ``a.view(-1)`` would fail here
    b, c = gm(a)
    assert torch.equal(b, a.reshape(-1) * 2.0) and torch.equal(c, torch.ones(2, 3))


def test_contiguous_clones_rewrites_only_unwritten_copies_of_intermediate_values():
    from torch.fx.experimental.proxy_tensor import make_fx

    def f(a):
        x = torch.tanh(a)  # an intermediate value, already contiguous
        y = x.clone(memory_format=torch.contiguous_format).reshape(-1)
        z = a.clone(memory_format=torch.contiguous_format)  # of an input: kept
        w = (x * 2.0).t().clone(memory_format=torch.contiguous_format)  # a real copy
        u = torch.exp(a)
        v = u.clone(memory_format=torch.contiguous_format)
        v.add_(1.0)  # written in place: kept, or ``u`` would change with it
        return y, z, w, u, v

    gm = make_fx(f)(torch.randn(3, 4))
    assert contiguous_clones(gm) == 2
    a = torch.randn(3, 4)
    for got, want in zip(gm(a), f(a)):
        assert torch.equal(got, want) and got.stride() == want.stride()


def test_the_traced_product_of_a_tanh_policy_makes_no_layout_copy():
    """The 2x64 tanh policy's product has its layout copies made conditional (and its numbers
    stay the eager ones: the tests above)."""
    from autometa.graph import mlp_graph
    from autometa.meta import meta_train, traced
    from autometa.policy import build_policy

    evaluator = MAMLEvaluator("navigation2d", **{**SMALL, "meta_iterations": 1})
    family = evaluator.family("cpu")
    graph = mlp_graph((64, 64), "linear_tanh")
    cfg = evaluator.config_for_graph(graph)
    policy = build_policy(
        graph, family.single_observation_space, family.single_action_space, seed=0
    )
    meta_train(policy, family, cfg, 0, traced=True)
    (program,) = traced._CACHE[policy].values()
    assert program.contiguous == 4
    ops = {n.target for n in program.dynamic.graph.nodes if n.op == "call_function"}
    assert torch.ops.aten.clone.default not in ops
    assert torch.ops.aten.contiguous.default in ops
