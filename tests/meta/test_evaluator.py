"""The MAML evaluator end to end on navigation2d at reduced size, and its failure handling."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from helpers import chain_graph
from meta_fixtures import SMALL
from torch import nn

from autometa.errors import ConfigurationError
from autometa.meta import (
    MAMLConfig,
    MAMLEvaluator,
    SyntheticObjective,
    adapt_to_tasks,
    settable_fields,
)
from autometa.policy import build_policy, register_op
from autometa.space import load_space, shipped_spaces
from autometa.tasks import TASKS, make_task

ROOT = Path(__file__).resolve().parents[2]


class _NaNLayer(nn.Module):
    def __init__(self, in_features: int, width: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) * float("nan")


def _raise(in_features: int, width: int) -> nn.Module:
    raise ValueError("this op cannot be built")


class _BuggyLayer(nn.Module):
    def __init__(self, in_features: int, width: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise ValueError("this op is broken")


register_op("test_nan", _NaNLayer, overwrite=True)
register_op("test_unbuildable", _raise, overwrite=True)
register_op("test_buggy", _BuggyLayer, overwrite=True)


def test_meta_training_makes_one_step_adaptation_work():
    graph = chain_graph((16, 16))
    trained = MAMLEvaluator("navigation2d", meta_iterations=10, **SMALL)(graph, seed=0)
    untrained = MAMLEvaluator("navigation2d", meta_iterations=0, **SMALL)(graph, seed=0)
    assert trained.ok and untrained.ok
    pre, post = trained.metrics["returns_by_step"][:2]
    assert post > pre + 2.0  # one inner step on held-out tasks helps a lot after meta-training
    assert trained.score > untrained.score + 2.0  # ... and much more than from random weights
    assert trained.metrics["adaptation_gain"] == pytest.approx(post - pre)
    curve = trained.metrics["learning_curve"]
    assert len(curve) == 10 and sum(curve[-3:]) / 3 > sum(curve[:3]) / 3


def test_result_record():
    graph = chain_graph((8,))
    result = MAMLEvaluator("navigation2d", meta_iterations=2, **SMALL)(graph, seed=3, device="cpu")
    family = make_task("navigation2d")
    policy = build_policy(graph, family.single_observation_space, family.single_action_space)
    m = result.metrics
    assert result.status == "ok" and result.error is None and result.fidelity == 2
    assert result.objectives == {"params": policy.num_params, "macs": policy.macs}
    assert (m["params"], m["macs"], m["seed"], m["device"]) == (
        policy.num_params,
        policy.macs,
        3,
        "cpu",
    )
    assert m["meta_train_env_steps"] == 2 * 8 * 8 * 20 * 2
    assert m["test_env_steps"] == 4 * 10 * 10 * 20
    assert m["env_steps"] == m["meta_train_env_steps"] + m["test_env_steps"]
    assert len(m["returns_by_step"]) == 4 and m["score"] == m["returns_by_step"][1]
    assert m["torch_threads"] == torch.get_num_threads()
    assert m["wall_time"] > 0 and set(m["versions"]) >= {"torch", "autometa"}
    assert m["config"]["num_tasks"] == 8 and m["task_family"] == "navigation2d"
    assert set(result.state_dict) == set(dict(policy.named_parameters()))
    assert all(t.device.type == "cpu" for t in result.state_dict.values())
    policy.load_state_dict(result.state_dict)  # loadable for export
    assert result.to_dict()["score"] == result.score


def test_same_seed_same_score_and_other_seed_differs():
    evaluator = MAMLEvaluator("navigation2d", meta_iterations=2, **SMALL)
    graph = chain_graph((8,))
    a, b, c = (evaluator(graph, seed=s) for s in (5, 5, 6))
    assert a.score == b.score and a.metrics["learning_curve"] == b.metrics["learning_curve"]
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    assert c.score != a.score


def test_nan_policy_fails_with_reason_and_the_caller_continues():
    evaluator = MAMLEvaluator("navigation2d", meta_iterations=2, **SMALL)
    bad = evaluator(chain_graph((8,), op="test_nan"), seed=0)
    assert bad.status == "failed" and not bad.ok and math.isnan(bad.score)
    assert bad.error == "EvaluationError: NaN or Inf in the returns at meta-iteration 0"
    assert bad.fidelity == 2  # counted as the meta-iterations it was given
    assert evaluator(chain_graph((8,)), seed=0).ok


def test_build_error_fails_with_reason():
    evaluator = MAMLEvaluator("navigation2d", meta_iterations=1, **SMALL)
    bad = evaluator(chain_graph((8,), op="test_unbuildable"), seed=0)
    assert bad.status == "failed" and bad.state_dict is None
    assert bad.error == "BuildError: op 'test_unbuildable' of node 'l0': this op cannot be built"
    assert bad.metrics["seed"] == 0 and bad.metrics["wall_time"] >= 0
    assert bad.fidelity == 0  # it failed before meta-training: nothing spent
    assert bad.metrics["traceback"].startswith("Traceback (most recent call last):")


def test_graph_hyperparameters_override_the_config():
    graph = chain_graph((8,), hyper={"fast_lr": 0.3, "inner_steps": 2, "outer": "adam"})
    evaluator = MAMLEvaluator("navigation2d", meta_iterations=1, **SMALL)
    result = evaluator(graph, seed=0)
    assert result.ok
    cfg = result.metrics["config"]
    assert (cfg["fast_lr"], cfg["inner_steps"], cfg["outer"]) == (0.3, 2, "adam")
    assert result.metrics["meta_train_env_steps"] == 8 * 8 * 20 * 3  # two inner steps
    assert evaluator.config.fast_lr == 0.1  # the evaluator's own config is unchanged


def test_unknown_hyperparameter_raises_naming_it():
    graph = chain_graph((8,), hyper={"fast_lrr": 0.1, "fast_lr": 0.2})
    evaluator = MAMLEvaluator("navigation2d", meta_iterations=1, **SMALL)
    message = (
        "unknown hyperparameter(s) 'fast_lrr' in graph.graph['hyperparameters']. Did you mean "
        f"'fast_lr'? Valid names: {', '.join(settable_fields())}"
    )
    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        evaluator(graph, seed=0)  # a setting mistake, not a bad candidate


def test_invalid_hyperparameter_value_raises_naming_it():
    graph = chain_graph((8,), hyper={"fast_lr": -1.0})
    evaluator = MAMLEvaluator("navigation2d", meta_iterations=1, **SMALL)
    message = "invalid MAMLConfig: fast_lr: expected a finite number > 0, got -1.0"
    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        evaluator(graph, seed=0)


def test_a_bug_raises_instead_of_failing_the_candidate():
    evaluator = MAMLEvaluator("navigation2d", meta_iterations=1, **SMALL)
    with pytest.raises(ValueError, match="^this op is broken$"):
        evaluator(chain_graph((8,), op="test_buggy"), seed=0)


def test_bad_evaluator_options_raise_at_construction():
    with pytest.raises(
        ConfigurationError,
        match="^outer: unknown outer step 'sgd'. Valid names: adam, promp, trpo$",
    ):
        MAMLEvaluator("navigation2d", outer="sgd")
    message = f"unknown MAMLConfig field(s) 'horizon'. Valid names: {', '.join(settable_fields())}"
    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        MAMLEvaluator("navigation2d", horizon=10)
    with pytest.raises(ConfigurationError, match="^traced: expected True, False or None, got 1$"):
        MAMLEvaluator("navigation2d", traced=1)
    with pytest.raises(ConfigurationError, match="^compiled: expected True or False, got 'yes'$"):
        MAMLEvaluator("navigation2d", compiled="yes")


def test_unknown_task_family_raises_at_construction_with_the_closest_name():
    message = (
        "unknown task family 'navigation2'. Did you mean 'navigation2d'? Valid names: "
        f"{', '.join(TASKS.names())}"
    )
    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        MAMLEvaluator("navigation2")


def test_bad_family_options_raise_at_construction():
    message = (
        "task family 'navigation2d' with family_options {'horizon': -1}: navigation2d: option "
        "'horizon' must be a positive int; got -1"
    )
    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        MAMLEvaluator("navigation2d", family_options={"horizon": -1})
    message = (
        "task family 'navigation2d' with family_options {'horizn': 5}: "
        "Navigation2D.__init__() got an unexpected keyword argument 'horizn'"
    )
    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        MAMLEvaluator("navigation2d", family_options={"horizn": 5})


def test_check_space_names_the_misspelled_hyperparameter(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text(TYPO_SPACE)
    space = load_space(path)
    message = (
        f"space 'typo' ({path}): hyperparameter 'fast_lrr' is not a setting of MAMLEvaluator. "
        f"Did you mean 'fast_lr'? Valid names: {', '.join(settable_fields())}"
    )
    for evaluator in (MAMLEvaluator(), SyntheticObjective()):
        owner = type(evaluator).__name__
        with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$".replace(
            "MAMLEvaluator", owner
        )):  # fmt: skip
            evaluator.check_space(space)
        assert evaluator.settable_names() == settable_fields()


def test_check_space_checks_every_value_the_space_can_give():
    space = load_space({
        "name": "ranges",
        "graph": {"kind": "chain", "layers": 1, "layer": {"width": 8, "activation": "tanh"}},
        "hyperparameters": {"fast_lr": {"float": [0.0, 0.5]}, "inner_steps": {"choice": [1, 2.5]},
                            "outer": "adam"},
    })  # fmt: skip
    message = (
        "space 'ranges': hyperparameter values MAMLEvaluator cannot use: fast_lr: expected a "
        "finite number > 0, got 0.0; inner_steps: expected an int >= 0, got 2.5"
    )
    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        MAMLEvaluator().check_space(space)
    MAMLEvaluator().check_space(load_space(Path(shipped_spaces()["dag_cell"])))


TYPO_SPACE = """name: typo
graph:
  kind: chain
  layers: {int: [1, 2]}
  layer: {width: 16, activation: tanh}
hyperparameters:
  fast_lrr: 0.1
"""


def test_meta_iterations_override_at_call_time_and_meta_sgd():
    evaluator = MAMLEvaluator(
        "navigation2d", meta_iterations=5, outer="adam", meta_sgd=True, adam_lr=0.01, **SMALL
    )
    result = evaluator(chain_graph((8,)), seed=0, meta_iterations=2)
    assert result.ok and result.fidelity == 2 and len(result.metrics["learning_curve"]) == 2
    assert result.metrics["meta_sgd_mean_step"] != pytest.approx(0.1, abs=1e-4)
    # the learned step sizes come back apart from the weights, one per parameter
    steps = result.step_sizes
    assert sorted(steps) == sorted(result.state_dict)
    assert all(steps[n].shape == result.state_dict[n].shape for n in steps)
    mean = torch.cat([s.reshape(-1) for s in steps.values()]).mean()
    assert float(mean) == pytest.approx(result.metrics["meta_sgd_mean_step"])
    plain = MAMLEvaluator("navigation2d", meta_iterations=1, outer="adam", **SMALL)
    assert plain(chain_graph((8,)), seed=0).step_sizes is None


def test_presets_follow_the_paper():
    nav = MAMLEvaluator("navigation2d").config
    assert (nav.fast_lr, nav.inner_steps, nav.episodes_per_task, nav.num_tasks) == (0.1, 1, 20, 20)
    assert (nav.outer, nav.max_kl, nav.first_order) == ("trpo", 0.01, False)
    assert MAMLEvaluator("halfcheetah-vel").config.num_tasks == 40
    assert MAMLEvaluator("ant-dir").config.episodes_per_task == 40
    assert MAMLConfig().episodes_per_iteration == 20 * 20 * 2


def test_adapt_to_tasks_returns_per_step_returns_and_stacked_params():
    family = make_task("navigation2d", horizon=10)
    policy = build_policy(
        chain_graph((8,)), family.single_observation_space, family.single_action_space, seed=0
    )
    tasks = family.test_tasks(3, seed=0)
    result = adapt_to_tasks(policy, family, tasks, steps=2, episodes=4, seed=1)
    assert result.returns.shape == (3, 3) and result.env_steps == 3 * 3 * 4 * 10
    assert all(p.shape[0] == 3 for p in result.params.values())
    again = adapt_to_tasks(policy, family, tasks, steps=2, episodes=4, seed=1)
    assert torch.equal(result.returns, again.returns)


def test_evaluator_pickles_for_worker_processes():
    import pickle

    evaluator = MAMLEvaluator("navigation2d", meta_iterations=1, **SMALL)
    first = evaluator(chain_graph((8,)), seed=0)
    clone = pickle.loads(pickle.dumps(evaluator))
    assert clone.config == evaluator.config and clone._families == {}
    assert clone(chain_graph((8,)), seed=0).score == first.score


def test_evaluators_rebuild_from_their_config():
    from autometa.experiment.search import describe_evaluator, rebuild_evaluator
    from autometa.meta import MAMLEvaluator, SyntheticObjective

    maml = MAMLEvaluator("navigation2d", meta_iterations=7, num_tasks=5, fast_lr=0.3)
    again = rebuild_evaluator(describe_evaluator(maml))
    assert isinstance(again, MAMLEvaluator) and again.config == maml.config
    assert again.task_family == "navigation2d"
    synthetic = SyntheticObjective(noise=0.0, delay=0.1, fail_fraction=0.25)
    assert rebuild_evaluator(describe_evaluator(synthetic)).to_config() == synthetic.to_config()
