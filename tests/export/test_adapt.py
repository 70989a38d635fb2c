"""adapt(): the evaluator's inner loop applied to a loaded policy, on one task."""

import re

import pytest
import torch
from helpers import chain_graph

from autometa.errors import ExportError, TaskParameterError
from autometa.export import adapt, export, load
from autometa.export._adapt import adaptation_config
from autometa.meta import MAMLEvaluator
from autometa.tasks import make_task


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """A tiny real MAML evaluation on navigation2d, exported and loaded back."""
    graph = chain_graph((16,), hyper={"fast_lr": 0.3})
    evaluator = MAMLEvaluator(
        "navigation2d",
        meta_iterations=1,
        num_tasks=2,
        episodes_per_task=2,
        test_tasks=3,
        test_episodes=2,
        report_steps=1,
        outer="adam",
    )
    result = evaluator(graph, seed=0, device="cpu")
    assert result.ok, result.error
    folder = export(
        (graph, result), tmp_path_factory.mktemp("a") / "nav", onnx=False, drawing=False
    )
    return load(folder)


@pytest.fixture(scope="module")
def family():
    return make_task("navigation2d", horizon=10)


def test_adapt_returns_an_adapted_copy_and_the_returns(loaded, family):
    before = {n: p.clone() for n, p in loaded.state_dict().items()}
    adapted, returns = adapt(loaded, family, task=1, steps=2, episodes=4)
    assert len(returns) == 3 and all(isinstance(r, float) for r in returns)
    assert all(torch.equal(before[n], p) for n, p in loaded.state_dict().items())
    changed = [n for n, p in adapted.state_dict().items() if not torch.equal(before[n], p)]
    assert sorted(changed) == sorted(before)
    assert adapted.export_info["adaptation"]["fast_lr"] == 0.3
    obs = torch.zeros(1, 2)
    assert not torch.equal(adapted(obs)[0], loaded(obs)[0])
    again = adapt(loaded, family, task=1, steps=2, episodes=4)
    assert again.returns == returns
    assert torch.equal(again.policy.head.weight, adapted.head.weight)


def test_the_step_size_comes_from_the_export_and_can_be_overridden(loaded, family):
    task = family.sample_tasks(1, seed=4)
    base = {n: p.clone() for n, p in loaded.named_parameters()}
    small = adapt(loaded, family, task, steps=1, episodes=3, fast_lr=0.03).policy
    default = adapt(loaded, family, task, steps=1, episodes=3).policy
    for name, p in base.items():
        step_small = dict(small.named_parameters())[name] - p
        step_default = dict(default.named_parameters())[name] - p
        torch.testing.assert_close(step_default, 10 * step_small, rtol=1e-4, atol=1e-6)


def test_one_task_may_be_given_without_its_task_dimension(loaded, family):
    with_dim = adapt(loaded, family, {"goal": torch.tensor([[0.3, -0.2]])}, steps=1, episodes=2)
    without = adapt(loaded, family, {"goal": [0.3, -0.2]}, steps=1, episodes=2)
    assert with_dim.returns == without.returns
    assert adapt(loaded, family, task=0, steps=0, episodes=2).returns[0] == pytest.approx(
        adapt(loaded, family, task=0, steps=1, episodes=2).returns[0]
    )


def test_bad_tasks_are_refused(loaded, family):
    message = (
        "task parameter 'goal' must describe one task (leading dimension 1, as from "
        "family.sample_tasks(1, seed)); got shape (3, 2)"
    )
    with pytest.raises(ExportError, match=f"^{re.escape(message)}$"):
        adapt(loaded, family, family.sample_tasks(3, seed=0))
    with pytest.raises(TaskParameterError):
        adapt(loaded, family, {"goal": [3.0, 0.0]})
    cartpole = make_task("cartpole")
    message = (
        "the policy (obs_dim=2, act_dim=2, discrete=False) does not fit task family "
        "'cartpole' (obs_dim=4, act_dim=2, discrete=True)"
    )
    with pytest.raises(ExportError, match=f"^{re.escape(message)}$"):
        adapt(loaded, cartpole, task=0)


META_SGD_SPACE = {
    "name": "tiny_meta_sgd",
    "graph": {
        "kind": "chain",
        "layers": {"int": [1, 1]},
        "layer": {"width": {"choice": [8]}, "activation": {"choice": ["tanh"]}},
    },
    "hyperparameters": {"fast_lr": 0.1, "meta_sgd": True},
}


@pytest.fixture(scope="module")
def meta_sgd_export(tmp_path_factory):
    """A one-trial search with ``meta_sgd: true`` in the space, its best trial exported."""
    from autometa.experiment import Budget, search

    folder = tmp_path_factory.mktemp("meta_sgd")
    evaluator = MAMLEvaluator(
        "navigation2d",
        meta_iterations=2,
        num_tasks=2,
        episodes_per_task=2,
        test_tasks=2,
        test_episodes=2,
        report_steps=1,
        outer="adam",
        adam_lr=0.05,
    )
    result = search(
        META_SGD_SPACE,
        strategy="random",
        evaluator=evaluator,
        budget=Budget(trials=1),
        storage=folder / "study.db",
        workers=0,
        progress=False,
    )
    assert result.counts["DONE"] == 1
    steps = result.storage.load_step_sizes(result.best.number)
    out = export(result, folder / "best", onnx=False, drawing=False, torchscript=False)
    result.storage.close()
    return out, steps


def test_meta_sgd_step_sizes_travel_from_the_search_to_adapt(meta_sgd_export, caplog):
    from autometa.meta.baseline import advantages
    from autometa.meta.maml import derive_seed
    from autometa.meta.members import Cohort
    from autometa.meta.rollout import log_prob, rollout

    folder, stored = meta_sgd_export
    policy = load(folder)
    info = policy.export_info
    assert info["step_sizes"]["file"] == "step_sizes.safetensors"
    assert "step_sizes.safetensors" in info["files"]
    assert "Meta-SGD: one learned step size per parameter" in (folder / "card.md").read_text()
    names = [n for n, _ in policy.named_parameters()]
    assert sorted(policy.step_sizes) == sorted(names) == sorted(stored)
    assert all(torch.equal(policy.step_sizes[n], stored[n]) for n in names)
    # meta-learned (Adam moved them off fast_lr), so a scalar step would not reproduce them
    assert any(not torch.allclose(s, torch.full_like(s, 0.1)) for s in stored.values())

    family = make_task("navigation2d")
    with caplog.at_level("WARNING", logger="autometa"):
        adapted, returns = adapt(policy, family, task=1, steps=1, episodes=3, seed=5)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(returns) == 2

    # the same step by hand: the rollout adapt takes, its advantages, grad of REINFORCE
    cfg = adaptation_config(policy, family)
    assert cfg.meta_sgd is True
    task = {k: v[1:2] for k, v in family.test_tasks(cfg.test_tasks, cfg.test_seed).items()}
    theta = {n: p.detach() for n, p in policy.named_parameters()}
    generator = torch.Generator().manual_seed(derive_seed(5, 3))
    batch = rollout(
        [Cohort(policy, 1)],
        [{n: t[None] for n, t in theta.items()}],  # a program of one member
        family,
        task,
        3,
        stacked=False,
        generators=[generator],
        seeds=[derive_seed(5, 4, 0)],
    )
    batch = type(batch)(*(column[0] for column in batch))
    adv = advantages(
        batch, cfg.gamma, cfg.gae_lambda, cfg.normalize_advantages, cfg.baseline_ridge
    )
    params = [p for _, p in policy.named_parameters()]
    logp = log_prob(policy(batch.obs[0]), batch.actions[0])
    loss = -(logp * adv[0]).sum() / batch.alive[0].sum()
    grads = dict(zip(names, torch.autograd.grad(loss, params), strict=True))
    for name, p in adapted.named_parameters():
        expected = theta[name] - stored[name] * grads[name]
        torch.testing.assert_close(p.detach(), expected, rtol=1e-5, atol=1e-6)

    # an explicit fast_lr replaces the learned step sizes
    scalar = adapt(policy, family, task=1, steps=1, episodes=3, seed=5, fast_lr=0.1).policy
    for name, p in scalar.named_parameters():
        torch.testing.assert_close(
            p.detach(), theta[name] - 0.1 * grads[name], rtol=1e-5, atol=1e-6
        )


def test_an_export_without_its_step_sizes_warns_and_steps_with_fast_lr(meta_sgd_export, caplog):
    folder, _ = meta_sgd_export
    policy = load(folder)
    policy.step_sizes = None  # as an export written before step sizes were exported
    with caplog.at_level("WARNING", logger="autometa"):
        adapt(policy, make_task("navigation2d"), task=0, steps=1, episodes=2)
    assert [r.getMessage() for r in caplog.records] == [
        "the policy was meta-trained with Meta-SGD, but its per-parameter step sizes are not "
        "part of this export (exported by an older autometa?); adapting with the scalar "
        "fast_lr=0.1 instead"
    ]
    policy.step_sizes = {"head.weight": torch.ones(2, 8)}
    message = (
        "policy.step_sizes must hold one step size per parameter; missing "
        "['head.bias', 'layers.0.linear.bias', 'layers.0.linear.weight', 'log_std'], "
        "unexpected []"
    )
    with pytest.raises(ExportError, match=f"^{re.escape(message)}$"):
        adapt(policy, make_task("navigation2d"), task=0, steps=1, episodes=2)
