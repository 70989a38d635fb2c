"""adapt(): the evaluator's inner loop applied to a loaded policy, on one task."""

import re

import pytest
import torch
from helpers import chain_graph

from autometa.errors import ExportError, TaskParameterError
from autometa.export import adapt, export, load
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
