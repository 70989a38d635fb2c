"""ProMP: the LVC inner loss, the outer objective against a per-task loop, settings, a run."""

from __future__ import annotations

import re

import pytest
import torch
from helpers import chain_graph
from meta_fixtures import SMALL, float64_policy, synthetic_batch
from torch.func import functional_call, grad, jacrev, jvp
from torch.utils._pytree import tree_map

from autometa.cli import main
from autometa.errors import ConfigurationError
from autometa.meta import META_LEARNERS, MAMLConfig, MAMLEvaluator, MetaLearner, adapt_to_tasks
from autometa.meta._promp import ProMPObjective, adapt_kl_coeff, lvc_loss, promp_init, promp_step
from autometa.meta.baseline import advantages
from autometa.meta.inner import inner_gradients, inner_loss, inner_update
from autometa.meta.linalg import flatten, unflatten
from autometa.meta.maml import MetaBatch, init_meta_params
from autometa.meta.members import Member, member_knobs, stack_members
from autometa.meta.outer import OuterInputs
from autometa.meta.rollout import kl_divergence, log_prob, policy_outputs
from autometa.policy import build_policy
from autometa.space import shipped_spaces
from autometa.tasks import make_task

CPU = torch.device("cpu")


def _sampled(policy, params, stacked, batch):
    """``batch`` with the log-probabilities of the policy that sampled it, as a rollout has."""
    with torch.no_grad():
        out = policy_outputs(policy, params, batch.obs, stacked)
        return batch._replace(log_probs=log_prob(out, batch.actions))


def promp_meta_batch(policy, cfg, seed=0, discrete=False) -> MetaBatch:
    """Random episodes sampled (log-probabilities and all) by the LVC-adapted policies."""
    gen = torch.Generator().manual_seed(seed)
    params, stacked, train, grads = init_meta_params(policy, cfg), False, [], []
    for _ in range(cfg.inner_steps):
        batch = _sampled(policy, params, stacked, synthetic_batch(gen, discrete=discrete))
        adv = advantages(batch)
        g = inner_gradients(policy, params, stacked, batch, adv, loss=lvc_loss)
        params, stacked = inner_update(params, g, cfg.fast_lr), True
        train.append((batch, adv))
        grads.append({n: t.detach() for n, t in g.items()})
    valid = _sampled(policy, params, stacked, synthetic_batch(gen, discrete=discrete))
    return MetaBatch(train, grads, valid, advantages(valid))


def _task_outputs(policy, theta, mb, cfg, i):
    """Task ``i``'s policy outputs before each inner step and after the last, one autograd
    inner step at a time (the LVC written out: ratio to the sampler's probability)."""
    params, pre = dict(theta), []
    for batch, adv in mb.train:
        out = functional_call(policy, params, (batch.obs[i],))
        pre.append(out)
        ratio = torch.exp(log_prob(out, batch.actions[i]) - batch.log_probs[i])
        lvc = -(ratio * adv[i]).sum() / batch.alive[i].sum()
        grads = torch.autograd.grad(lvc, list(params.values()), create_graph=True)
        params = {n: p - cfg.fast_lr * g for (n, p), g in zip(params.items(), grads)}
    return pre, functional_call(policy, params, (mb.valid.obs[i],))


def loop_promp_loss(policy, theta, mb, cfg, coeff, olds):
    """ProMP's objective task by task: clipped surrogate plus the weighted inner KLs."""
    tasks, steps, eps = mb.valid.obs.shape[0], len(mb.train), cfg.promp_clip
    surrogate, kls = 0.0, [0.0] * steps
    for i in range(tasks):
        pre, post = _task_outputs(policy, theta, mb, cfg, i)
        old_pre, old_post = olds[i]
        actions, alive, adv = mb.valid.actions[i], mb.valid.alive[i], mb.valid_adv[i]
        ratio = torch.exp(log_prob(post, actions) - log_prob(old_post, actions))
        clipped = torch.min(ratio * adv, ratio.clamp(1 - eps, 1 + eps) * adv)
        surrogate = surrogate - (clipped * alive).sum() / alive.sum() / tasks
        for k, (batch, _) in enumerate(mb.train):
            kl = kl_divergence(old_pre[k], pre[k]) * batch.alive[i]
            kls[k] = kls[k] + kl.sum() / batch.alive[i].sum() / tasks
    return surrogate + sum(c * kl for c, kl in zip(coeff, kls)) / steps


def _leaves(params):
    return {n: p.detach().clone().requires_grad_(True) for n, p in params.items()}


@pytest.mark.parametrize("inner_steps,discrete", [(1, False), (2, False), (1, True)])
def test_promp_meta_gradient_matches_a_per_task_loop(inner_steps, discrete):
    policy = float64_policy(discrete=discrete)
    cfg = MAMLConfig(meta_learner="promp", inner_steps=inner_steps, fast_lr=0.5, promp_clip=0.2)
    mb = promp_meta_batch(policy, cfg, discrete=discrete)
    meta_o = init_meta_params(policy, cfg)
    olds = []
    for i in range(mb.valid.obs.shape[0]):
        pre, post = _task_outputs(policy, _leaves(meta_o), mb, cfg, i)
        olds.append(
            ([tuple(o.detach() for o in out) for out in pre], tuple(o.detach() for o in post))
        )
    # away from the sampling parameters, where clipping and the KL penalty both act
    gen = torch.Generator().manual_seed(3)
    theta = {
        n: p + 0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype) for n, p in meta_o.items()
    }
    coeff = torch.tensor([0.5, 2.0][:inner_steps], dtype=torch.float64)
    leaves = _leaves(theta)
    looped_loss = loop_promp_loss(policy, leaves, mb, cfg, coeff, olds)
    looped = dict(zip(leaves, torch.autograd.grad(looped_loss, list(leaves.values()))))

    obj = ProMPObjective.sampled_at(policy, mb, cfg, meta_o)
    batched = grad(lambda m: obj.loss(m, coeff)[0])(theta)
    assert float(obj.loss(theta, coeff)[1][0]) == pytest.approx(looped_loss.item(), rel=1e-10)
    assert max(float((batched[n] - looped[n]).abs().max()) for n in theta) < 1e-8
    assert max(float(g.abs().max()) for g in batched.values()) > 1e-3

    pre, post = obj.outputs(theta)
    ratio = torch.exp(log_prob(post, mb.valid.actions) - log_prob(obj.old_post, mb.valid.actions))
    assert bool(((ratio - 1).abs() > 0.2).any()) and bool(((ratio - 1).abs() < 0.2).any())
    assert float(obj.inner_kls(pre).min()) > 1e-4
    no_penalty = grad(lambda m: obj.loss(m, coeff * 0)[0])(theta)
    assert max(float((batched[n] - no_penalty[n]).abs().max()) for n in theta) > 1e-4


@pytest.mark.parametrize("discrete", [False, True])
def test_lvc_inner_gradient_is_reinforce_and_its_hessian_adds_the_score_outer_product(discrete):
    policy = float64_policy(discrete=discrete)
    theta = {n: p.detach() for n, p in policy.named_parameters()}
    gen = torch.Generator().manual_seed(1)
    batch = _sampled(policy, theta, False, synthetic_batch(gen, discrete=discrete))
    adv = advantages(batch)
    lvc = inner_gradients(policy, theta, False, batch, adv, loss=lvc_loss)
    reinforce = inner_gradients(policy, theta, False, batch, adv)
    assert max(float((lvc[n] - reinforce[n]).abs().max()) for n in theta) < 1e-12
    assert max(float(g.abs().max()) for g in reinforce.values()) > 1e-3

    # task 0's Hessian-vector products: LVC's = REINFORCE's + mean_t (j_t . v) j_t A_t
    one = type(batch)(*(x[0] for x in batch))
    x = flatten(theta)
    v = torch.randn(x.shape, generator=gen, dtype=x.dtype)

    def hvp(loss):
        grad_fn = grad(lambda flat: loss(unflatten(flat, theta), policy, one, adv[0]))
        return jvp(grad_fn, (x,), (v,))[1]

    def logp(flat):
        out = functional_call(policy, unflatten(flat, theta), (one.obs,))
        return log_prob(out, one.actions).reshape(-1)

    j = jacrev(logp)(x)  # (E * H, params): the score of every step
    outer = -((j @ v) * adv[0].reshape(-1)) @ j / one.alive.sum()
    assert torch.allclose(hvp(lvc_loss), hvp(inner_loss) + outer, rtol=1e-9, atol=1e-11)
    assert float((hvp(lvc_loss) - hvp(inner_loss)).abs().max()) > 1e-3


def test_promp_steps_lower_the_objective_and_keep_adam_state():
    policy = float64_policy()
    cfg = MAMLConfig(meta_learner="promp", fast_lr=0.5, promp_lr=0.01, promp_steps=3)
    mb = promp_meta_batch(policy, cfg)
    meta = init_meta_params(policy, cfg)
    before = {n: p.clone() for n, p in meta.items()}
    objective = ProMPObjective.sampled_at(policy, mb, cfg, before)
    members = stack_members([meta])  # a program of one member
    state = promp_init(members, cfg)
    coeff = state["kl_coeff"].clone()
    knobs = {k: t.double() for k, t in member_knobs([Member(0, cfg)], CPU).items()}
    one = MetaBatch(*tree_map(lambda t: t[None], (mb.train, mb.grads, mb.valid, mb.valid_adv)))
    inputs = OuterInputs(policy, one, cfg, knobs, torch.ones(1, dtype=torch.bool))
    new, loss, finite = promp_step(inputs, members, state)
    assert bool(finite[0]) and new is members
    assert float(loss[0]) == pytest.approx(float(objective.loss(before, coeff[0])[0]))
    after = {n: t[0] for n, t in new.items()}
    assert float(objective.loss(after, coeff[0])[0]) < float(loss[0]) - 1e-4
    assert all(state["optimizer"].state[p]["step"] == 3 for p in members.values())


def test_adaptive_kl_coefficient_halves_below_and_doubles_above_the_target():
    coeff = torch.tensor([1.0, 1.0, 1.0])
    kls = torch.tensor([0.001, 0.01, 0.1])
    assert adapt_kl_coeff(coeff, kls, 0.01).tolist() == [0.5, 1.0, 2.0]


def test_unknown_meta_learner_is_one_line_with_the_closest_name():
    message = (
        "invalid MAMLConfig: meta_learner: unknown meta-learner 'prom'. Did you mean 'promp'? "
        "Valid names: maml, promp"
    )
    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        MAMLEvaluator("navigation2d", meta_learner="prom")
    message = "invalid MAMLConfig: promp_clip: expected a finite number > 0, got 0.0"
    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        MAMLConfig(meta_learner="promp", promp_clip=0.0)


def test_a_meta_learner_with_an_unregistered_piece_is_refused_at_construction():
    META_LEARNERS.register("half-done", MetaLearner("dice", None))
    try:
        message = (
            "meta_learner 'half-done': unknown inner loss 'dice'. Valid names: lvc, reinforce"
        )
        with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
            MAMLEvaluator("navigation2d", meta_learner="half-done")
    finally:
        META_LEARNERS.unregister("half-done")


def test_eval_option_meta_learner_is_checked_before_a_study_exists(tmp_path, capsys):
    db = tmp_path / "s.db"
    tiny = str(shipped_spaces()["tiny"])
    args = ["search", tiny, "--storage", str(db), "--eval-option", "meta_learner=prom"]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        "autometa search: error: invalid MAMLConfig: meta_learner: unknown meta-learner "
        "'prom'. Did you mean 'promp'? Valid names: maml, promp\n"
    )
    assert not db.exists()


def test_evaluator_meta_trains_with_promp(nav_graph):
    evaluator = MAMLEvaluator("navigation2d", meta_iterations=2, meta_learner="promp", **SMALL)
    result = evaluator(nav_graph, seed=0, device="cpu")
    assert result.status == "ok", result.error
    assert result.metrics["config"]["meta_learner"] == "promp"
    assert len(result.metrics["learning_curve"]) == 2
    maml = MAMLEvaluator("navigation2d", meta_iterations=2, **SMALL)(nav_graph, seed=0)
    assert result.score != maml.score  # another outer step: other weights
    family = evaluator.family("cpu")
    initial = build_policy(
        nav_graph, family.single_observation_space, family.single_action_space, seed=0
    ).state_dict()
    assert any(not torch.equal(initial[n], result.state_dict[n]) for n in result.state_dict)


def test_test_time_adaptation_takes_the_learners_inner_step():
    family = make_task("navigation2d", horizon=10)
    graph = chain_graph((8,), "linear_tanh")
    policy = build_policy(graph, family.single_observation_space, family.single_action_space)
    tasks = family.sample_tasks(3, 0)
    runs = {
        name: adapt_to_tasks(
            policy, family, tasks, 2, config=MAMLConfig(meta_learner=name), episodes=4
        )
        for name in ("maml", "promp")
    }
    # LVC's gradient is REINFORCE's at the sampling parameters: the same steps, to rounding
    assert torch.allclose(runs["maml"].returns, runs["promp"].returns, atol=1e-4)
    for name, value in runs["maml"].params.items():
        assert torch.allclose(value, runs["promp"].params[name], atol=1e-5)
