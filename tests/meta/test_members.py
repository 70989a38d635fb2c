"""A program of many members gives every member the numbers of its own evaluation.

``evaluate_population`` meta-trains many (graph, seed) pairs of one architecture as one
program over a member axis; a pair evaluated alone is a program of one. The kernels of a
program of P members may round differently from those of a program of one (a reduction over
more rows can take another path), by about 1e-7 relative; the TRPO direction is a
conjugate-gradient solve with the reference damping 1e-5, which magnifies such differences by
the conditioning of the KL Hessian (measured here: 1e-7 in the gradient became 1e-2 in the
step, and the next rollouts amplify that). These tests therefore use ``cg_damping=1.0``, a
well-conditioned solve, so that what they compare is the algorithm, not the rounding: members
then agree with their own
evaluations to about 1e-7, while any mixing of members, a wrong seed stream or a wrong step
size shows as a difference of order 1. The sampled data are compared at the default damping.
"""

from __future__ import annotations

import gymnasium as gym
import networkx as nx
import pytest
import torch
from helpers import chain_graph, diamond_graph
from meta_fixtures import ACT, OBS, synthetic_meta_batch
from torch.utils._pytree import tree_map

from autometa.meta import MAMLConfig, MAMLEvaluator
from autometa.meta._kernel_size import CACHE_ENV, last_level_cache, members_per_kernel
from autometa.meta.maml import MetaBatch, derive_seed, init_meta_params, sample_meta_batch
from autometa.meta.members import Cohort, Member, member_knobs, stack_members
from autometa.meta.trpo import members_of, trpo_step
from autometa.policy import build_policy
from autometa.space import load_space

SMALL = dict(
    num_tasks=3,
    episodes_per_task=3,
    test_tasks=3,
    test_episodes=3,
    meta_iterations=2,
    cg_damping=1.0,
    traced=False,
    family_options={"horizon": 15},
)
SEEDS = [1, 2, 3]
CPU = torch.device("cpu")
MIB = 1024 * 1024


def _identity_graph():
    """input -> a -> identity -> c (sum of a and the identity) -> output."""
    graph = nx.DiGraph(hyperparameters={"fast_lr": 0.1}, space="test")
    graph.add_node("input", op="input")
    graph.add_node("a", op="linear_tanh", width=8, merge="sum", residual=False)
    graph.add_node("i", op="identity", width=None, merge="sum", residual=False)
    graph.add_node("c", op="linear_elu", width=6, merge="sum", residual=True)
    graph.add_node("output", op="output", merge="concat")
    for k, (u, v) in enumerate([("input", "a"), ("a", "i"), ("a", "c"), ("i", "c")]):
        graph.add_edge(u, v, order=k % 2 if v == "c" else 0)
    graph.add_edge("c", "output", order=0)
    return graph


def _evaluator(family="navigation2d", **options):
    kwargs = {**SMALL, **options}
    if family != "navigation2d":
        kwargs["family_options"] = {}
    return MAMLEvaluator(family, **kwargs)


def _assert_same(batched, alone, rel=1e-4):
    assert batched.ok, batched.error
    assert alone.ok, alone.error
    assert batched.score == pytest.approx(alone.score, rel=rel, abs=1e-4)
    for key in ("learning_curve", "learning_curve_pre", "returns_by_step"):
        assert batched.metrics[key] == pytest.approx(alone.metrics[key], rel=rel, abs=1e-4), key
    for key in ("seed", "env_steps", "meta_iterations", "params"):
        assert batched.metrics[key] == alone.metrics[key], key
    for name, tensor in alone.state_dict.items():
        assert torch.allclose(batched.state_dict[name], tensor, rtol=rel, atol=1e-5), name
    assert batched.metrics["population"] >= 2


def _check(evaluator, pairs, **kwargs):
    batched = evaluator.evaluate_population(pairs, device="cpu", **kwargs)
    assert len(batched) == len(pairs)
    for (graph, seed), result in zip(pairs, batched):
        _assert_same(result, evaluator(graph, seed=seed, device="cpu"))
    return batched


@pytest.mark.parametrize(
    "graph",
    [
        chain_graph((8, 6)),
        diamond_graph("concat"),
        diamond_graph("sum", residual=True),
        _identity_graph(),
    ],
    ids=["chain", "dag-concat", "dag-sum-residual", "identity"],
)
def test_seeds_of_one_architecture_equal_their_own_evaluations(graph):
    _check(_evaluator(), [(graph, s) for s in SEEDS])


@pytest.mark.parametrize(
    "options",
    [
        {"outer": "adam"},
        {"meta_learner": "promp"},
        {"meta_sgd": True},
        {"first_order": True},
        {"inner_steps": 2},
    ],
    ids=["adam", "promp", "meta-sgd", "first-order", "two-inner-steps"],
)
def test_every_meta_learner_runs_as_one_program(options):
    results = _check(_evaluator(**options), [(diamond_graph("concat"), s) for s in SEEDS[:2]])
    assert all(r.metrics["population"] == 2 for r in results)


def test_members_keep_their_own_step_sizes_and_meta_sgd():
    pairs = [
        (chain_graph((8,), hyper={"fast_lr": lr, "max_kl": kl, "ls_backtrack": back}), seed)
        for lr, kl, back, seed in [(0.05, 0.01, 0.8, 1), (0.3, 0.02, 0.5, 1), (0.1, 0.005, 0.7, 4)]
    ]
    _check(_evaluator(), pairs)
    _check(_evaluator(meta_sgd=True), pairs[:2])


@pytest.mark.parametrize("family", ["bandit", "tabular-mdp"])
def test_discrete_families(family):
    _check(_evaluator(family, meta_iterations=2), [(chain_graph((8,)), s) for s in SEEDS[:2]])


def test_explicit_space_candidates_sample_and_adapt_alike():
    """Layer norm's float32 derivatives round differently batched (its float64 step is exact,
    below); without meta-training the whole pipeline is compared end to end."""
    graph = load_space("explicit_two_tower").sample(0)
    _check(_evaluator(meta_iterations=0), [(graph, s) for s in SEEDS[:2]])


def _float64_step_inputs(graph, discrete, seeds, damping):
    act = gym.spaces.Discrete(3) if discrete else ACT
    cfg = MAMLConfig(inner_steps=2, cg_damping=damping, fast_lr=0.3)
    policies = [build_policy(graph, OBS, act, seed=s).double() for s in seeds]
    batches = [
        synthetic_meta_batch(p, cfg, seed=s, discrete=discrete) for p, s in zip(policies, seeds)
    ]
    return cfg, policies, batches


def _stacked(batches):
    return MetaBatch(
        *(
            tree_map(lambda *t: torch.stack(t), *parts)
            for parts in zip(*((b.train, b.grads, b.valid, b.valid_adv) for b in batches))
        )
    )


def _float64_members(graph, discrete, damping):
    cfg, policies, batches = _float64_step_inputs(graph, discrete, SEEDS, damping)
    metas = [init_meta_params(p, cfg) for p in policies]
    members = [Member(s, cfg.replace(max_kl=kl)) for s, kl in zip(SEEDS, (0.01, 0.02, 0.005))]
    knobs = {k: v.double() for k, v in member_knobs(members, CPU).items()}
    return cfg, policies, batches, metas, knobs


@pytest.mark.parametrize("discrete", [False, True], ids=["gaussian", "categorical"])
@pytest.mark.parametrize(
    "graph, damping",
    [(diamond_graph("sum", residual=True), 1e-2), (chain_graph((8,), op="layernorm_tanh"), 1.0)],
    ids=["dag", "layernorm"],
)
def test_the_trpo_step_of_three_members_is_each_members_own_step_in_float64(
    graph, damping, discrete
):
    """Steps are ~1e-2; a member mixed up with another would differ by as much. Layer norm
    leaves the KL Hessian singular (its input's scale and shift do not matter), so with a
    small damping CG's stopping threshold flips on float64 rounding: it gets damping 1."""
    cfg, policies, batches, metas, knobs = _float64_members(graph, discrete, damping)
    active = torch.ones(len(SEEDS), dtype=torch.bool)
    new, _, _ = trpo_step(
        policies[0], _stacked(batches), stack_members(metas), cfg, knobs, active, traced=False
    )
    for p in range(len(SEEDS)):
        one = slice(p, p + 1)
        want, _, _ = trpo_step(
            policies[p], _stacked(batches[one]), stack_members(metas[one]), cfg,
            members_of(knobs, one), active[one], traced=False,
        )  # fmt: skip
        for name, tensor in want.items():
            assert torch.allclose(new[name][p], tensor[0], rtol=1e-4, atol=1e-5), name


@pytest.mark.parametrize("per_kernel", [1, 2])
def test_members_a_few_at_a_time_take_their_own_steps(per_kernel):
    graph = diamond_graph("sum", residual=True)
    cfg, policies, batches, metas, knobs = _float64_members(graph, False, 1e-2)
    active = torch.tensor([True, False, True])  # the second failed earlier: no step
    args = (policies[0], _stacked(batches), stack_members(metas), cfg, knobs, active)
    new, loss, _ = trpo_step(*args, per_kernel=per_kernel, traced=False)
    whole, whole_loss, _ = trpo_step(*args, traced=False)
    for name, tensor in metas[1].items():
        assert torch.equal(new[name][1], tensor), name  # untouched
    for name, tensor in whole.items():
        assert torch.allclose(new[name], tensor, rtol=1e-6, atol=1e-8), name
    assert torch.allclose(loss[[0, 2]], whole_loss[[0, 2]], rtol=1e-9)


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


@pytest.mark.parametrize("cache", [1, 10 * MIB], ids=["one-at-a-time", "all-at-once"])
def test_a_program_equals_its_members_own_evaluations_either_way(monkeypatch, cache):
    """End to end, with the members stepped and tested one at a time or all together."""
    monkeypatch.setenv(CACHE_ENV, str(cache))
    evaluator = _evaluator()
    pairs = [(chain_graph((8, 6)), s) for s in SEEDS]
    results = evaluator.evaluate_population(pairs, device="cpu")
    for (graph, seed), result in zip(pairs, results):
        _assert_same(result, evaluator(graph, seed=seed, device="cpu"))
        want = 1 if cache == 1 else len(SEEDS)
        assert result.metrics["program"] == {
            "members": 3,
            "architectures": 1,
            "test_per_kernel": want,
        }


def test_different_architectures_share_a_program_and_keep_their_order():
    a, b = chain_graph((8,)), diamond_graph()
    pairs = [(a, 1), (b, 1), (a, 2), (b, 2), (chain_graph((5, 5)), 3)]
    results = _evaluator().evaluate_population(pairs, device="cpu")
    assert [r.metrics["program"]["architectures"] for r in results] == [3] * 5
    for (graph, seed), result in zip(pairs, results):
        _assert_same(result, _evaluator()(graph, seed=seed, device="cpu"))


def test_a_population_split_to_a_size_gives_the_same_numbers():
    evaluator = _evaluator()
    pairs = [(chain_graph((8,)), s) for s in SEEDS]
    whole = evaluator.evaluate_population(pairs, device="cpu")
    split = evaluator.evaluate_population(pairs, device="cpu", max_members=2)
    assert [r.metrics.get("population") for r in split] == [2, 2, None]
    for a, b in zip(whole, split):
        assert a.score == pytest.approx(b.score, rel=1e-3, abs=1e-4)


def test_a_member_that_diverges_fails_alone_with_its_own_reason():
    evaluator = _evaluator()
    bad = chain_graph((8,), hyper={"fast_lr": 1e30})
    good = chain_graph((8,), hyper={"fast_lr": 0.1})
    results = evaluator.evaluate_population([(good, 1), (bad, 1), (good, 2)], device="cpu")
    alone = evaluator(bad, seed=1, device="cpu")
    assert not alone.ok
    assert not results[1].ok
    assert results[1].error == alone.error
    assert results[1].fidelity == alone.fidelity
    _assert_same(results[0], evaluator(good, seed=1, device="cpu"))
    _assert_same(results[2], evaluator(good, seed=2, device="cpu"))


def test_sampled_data_equal_at_the_default_damping():
    evaluator = MAMLEvaluator("navigation2d", **{**SMALL, "cg_damping": 1e-5})
    family = evaluator.family("cpu")
    graph = diamond_graph()
    cfg = evaluator.config_for_graph(graph)
    policies = [
        build_policy(graph, family.single_observation_space, family.single_action_space, seed=s)
        for s in SEEDS
    ]
    metas = [init_meta_params(p, cfg) for p in policies]
    members = [Member(s, cfg) for s in SEEDS]
    knobs = member_knobs(members, family.device)
    tasks = [family.sample_tasks(cfg.num_tasks, derive_seed(s, 0, 1)) for s in SEEDS]

    def sample(index):
        return sample_meta_batch(
            [Cohort(policies[0], len(index))],
            [stack_members([metas[p] for p in index])],
            family,
            {k: torch.cat([tasks[p][k] for p in index]) for k in tasks[0]},
            cfg,
            knobs["fast_lr"][index],
            [torch.Generator().manual_seed(derive_seed(SEEDS[p], 0)) for p in index],
            [derive_seed(SEEDS[p], 0, 2) for p in index],
        )[0]

    batch = sample(list(range(len(SEEDS))))
    for p in range(len(SEEDS)):
        alone = sample([p])
        for got, want in zip(batch.valid, alone.valid):
            assert torch.allclose(got[p], want[0], rtol=1e-6, atol=1e-6)
        for name, g in alone.grads[0].items():
            assert torch.allclose(batch.grads[0][name][p], g[0], rtol=1e-5, atol=1e-6), name


def test_a_candidate_alone_is_a_program_of_one():
    """``__call__`` and a one-pair ``evaluate_population`` are the same program."""
    evaluator = _evaluator(outer="adam")
    graph = chain_graph((8,))
    alone = evaluator(graph, seed=1, device="cpu")
    (listed,) = evaluator.evaluate_population([(graph, 1)], device="cpu")
    assert alone.ok and "population" not in alone.metrics
    assert alone.score == listed.score
    assert alone.metrics["learning_curve"] == listed.metrics["learning_curve"]


def _whole_vectors(**options):
    """An evaluator at the reference damping whose sizes give every member's tensors a whole
    number of CPU vectors: 4 tasks x 4 episodes of 20 steps, tested on 4 x 4."""
    sizes = dict(num_tasks=4, episodes_per_task=4, test_tasks=4, test_episodes=4)
    return MAMLEvaluator("navigation2d", family_options={"horizon": 20}, **sizes, **options)


@pytest.mark.parametrize(
    "options",
    [{}, {"outer": "adam"}, {"meta_learner": "promp"}, {"meta_sgd": True, "first_order": True}],
    ids=["trpo", "adam", "promp", "meta-sgd-first-order"],
)
def test_a_members_numbers_do_not_depend_on_what_it_runs_with(options):
    """Bitwise, at the reference damping: 4 tasks x 4 episodes make every member's tensors a
    whole number of CPU vectors long, so no element of a member falls in a kernel's scalar
    tail in one program and in its vector body in another (see ``docs/evaluator.md``)."""
    evaluator = _whole_vectors(meta_iterations=2, **options)
    graph = diamond_graph("sum", residual=True)
    batched = evaluator.evaluate_seeds(graph, seeds=[1, 2, 3], device="cpu")
    for seed, result in zip([1, 2, 3], batched):
        alone = evaluator(graph, seed=seed, device="cpu")
        assert result.score.hex() == alone.score.hex()
        assert result.metrics["learning_curve"] == alone.metrics["learning_curve"]
        assert result.metrics["returns_by_step"] == alone.metrics["returns_by_step"]
        for name, tensor in alone.state_dict.items():
            assert torch.equal(result.state_dict[name], tensor), name


def _explicit_graph():
    """A candidate of the explicit space, keeping only the hyperparameters that may differ
    within a program (its ``inner_steps`` would put it in a program of its own)."""
    graph = load_space("explicit_two_tower").sample(0)
    graph.graph["hyperparameters"] = {"fast_lr": graph.graph["hyperparameters"]["fast_lr"]}
    return graph


ARCHITECTURES = {
    "chain": chain_graph((8, 6)),
    "dag-sum": diamond_graph("sum"),
    "dag-concat": diamond_graph("concat"),
    "dag-residual": diamond_graph("sum", residual=True),
    "identity": _identity_graph(),
    "layernorm": chain_graph((8,), op="layernorm_tanh"),
    "explicit": _explicit_graph(),
}


@pytest.mark.parametrize(
    "options, names",
    [
        ({}, list(ARCHITECTURES)),
        ({"outer": "adam"}, ["chain", "dag-residual", "explicit"]),
        ({"meta_learner": "promp"}, ["dag-concat", "identity", "layernorm"]),
        ({"meta_sgd": True}, ["chain", "dag-sum", "explicit"]),
    ],
    ids=["trpo", "adam", "promp", "meta-sgd"],
)
def test_different_architectures_in_one_program_equal_their_own_evaluations(options, names):
    """Architectures of the table, the first twice, as one program: each member's
    numbers are bitwise those of its evaluation alone (the size makes every member's tensors
    whole CPU vectors, see the test above)."""
    evaluator = _whole_vectors(meta_iterations=2, **options)
    graphs = [ARCHITECTURES[name] for name in names]
    pairs = [(graph, 1) for graph in graphs] + [(graphs[0], 2)]
    results = evaluator.evaluate_population(pairs, device="cpu")
    assert {r.metrics["program"]["architectures"] for r in results} == {len(graphs)}
    for (graph, seed), result in zip(pairs, results):
        alone = evaluator(graph, seed=seed, device="cpu")
        assert result.ok and alone.ok, (result.error, alone.error)
        assert result.score.hex() == alone.score.hex()
        assert result.metrics["learning_curve"] == alone.metrics["learning_curve"]
        for name, tensor in alone.state_dict.items():
            assert torch.equal(result.state_dict[name], tensor), name
