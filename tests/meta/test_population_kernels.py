"""A population's TRPO step and held-out test can take its members a few at a time.

On a CPU the evaluator steps ``members_per_kernel`` members at once (one when a member's
tensors already fill the last-level cache). One at a time, a member's TRPO step is
``trpo_step`` itself on its own slice of the meta-batch, so it is bitwise the step of its
own evaluation; a few at a time it is the batched step on a slice.
"""

from __future__ import annotations

import pytest
import torch
from helpers import chain_graph, diamond_graph
from test_population import SEEDS, _assert_same, _evaluator, _float64_step_inputs
from torch.utils._pytree import tree_map

from autometa.meta._kernel_size import CACHE_ENV, last_level_cache, members_per_kernel
from autometa.meta._population_step import population_trpo_step
from autometa.meta.maml import MetaBatch, MetaObjective, init_meta_params
from autometa.meta.population import Member, member_knobs, stack_members
from autometa.meta.trpo import trpo_step

CPU = torch.device("cpu")
MIB = 1024 * 1024


def test_members_per_kernel_follows_the_cache(monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(32 * MIB))
    assert last_level_cache() == 32 * MIB
    # the paper's 2D navigation batch (40,000 transitions) of a 64-wide policy: one member
    assert members_per_kernel(CPU, 4, 40_000, 64) == 1
    assert members_per_kernel(CPU, 4, 40_000, 32) == 2  # half as wide: two fit
    assert members_per_kernel(CPU, 8, 5_000, 64) == 8  # the quick size: all of them
    assert members_per_kernel(CPU, 3, 5_000, 64) == 3  # never more than the population
    assert members_per_kernel(torch.device("meta"), 64, 40_000, 64) == 64  # off the CPU: all
    monkeypatch.setenv(CACHE_ENV, "not a number")
    assert last_level_cache() > 0  # ignored: the detected size


@pytest.mark.parametrize("per_kernel", [1, 2])
def test_members_a_few_at_a_time_take_their_own_steps(per_kernel):
    graph = diamond_graph("sum", residual=True)
    cfg, policies, batches = _float64_step_inputs(graph, False, SEEDS, 1e-2)
    metas = [init_meta_params(p, cfg) for p in policies]
    members = [Member(s, cfg.replace(max_kl=kl)) for s, kl in zip(SEEDS, (0.01, 0.02, 0.005))]
    knobs = {k: v.double() for k, v in member_knobs(members, CPU).items()}
    stacked = MetaBatch(
        *(
            tree_map(lambda *t: torch.stack(t), *parts)
            for parts in zip(*((b.train, b.grads, b.valid, b.valid_adv) for b in batches))
        )
    )
    active = torch.tensor([True, False, True])  # the second failed earlier: no step
    new, loss, _ = population_trpo_step(
        policies[0],
        stacked,
        stack_members(metas),
        cfg,
        knobs,
        active,
        configs=[m.config for m in members],
        per_kernel=per_kernel,
        traced=False,
    )
    for name, tensor in metas[1].items():
        assert torch.equal(new[name][1], tensor), name  # untouched
    for p in (0, 2):
        obj = MetaObjective(policies[p], batches[p], members[p].config)
        want, want_loss, _ = trpo_step(obj, metas[p], members[p].config, traced=False)
        for name, tensor in want.items():
            if per_kernel == 1:  # the very function of an evaluation alone
                assert torch.equal(new[name][p], tensor), name
            else:
                assert torch.allclose(new[name][p], tensor, rtol=1e-4, atol=1e-5), name
        assert float(loss[p]) == pytest.approx(float(want_loss), rel=1e-9)


@pytest.mark.parametrize("cache", [1, 10 * MIB], ids=["one-at-a-time", "all-at-once"])
def test_a_population_equals_its_members_own_evaluations_either_way(monkeypatch, cache):
    """End to end, with the members stepped and tested one at a time or all together."""
    monkeypatch.setenv(CACHE_ENV, str(cache))
    evaluator = _evaluator()
    pairs = [(chain_graph((8, 6)), s) for s in SEEDS]
    results = evaluator.evaluate_population(pairs, device="cpu")
    for (graph, seed), result in zip(pairs, results):
        _assert_same(result, evaluator(graph, seed=seed, device="cpu"))
        program = result.metrics["program"]
        want = 1 if cache == 1 else len(SEEDS)
        assert program == {"members": 3, "trpo_per_kernel": want, "test_per_kernel": want}
