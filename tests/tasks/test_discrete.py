"""Bernoulli bandits and tabular MDPs: statistics of the sampled rewards and transitions."""

from __future__ import annotations

import re

import pytest
import torch

from autometa.errors import TaskParameterError
from autometa.tasks import make_task


def test_bandit_defaults_and_spaces():
    family = make_task("bandit")
    assert (family.arms, family.horizon) == (5, 10)
    assert family.single_action_space.n == 5
    assert family.single_observation_space.shape == (1,)


def test_bandit_pays_each_arm_with_its_probability():
    family = make_task("bandit", arms=3)
    params = {"probs": torch.tensor([[0.1, 0.5, 0.9], [0.8, 0.0, 1.0]])}
    state, obs = family.reset(params, num_episodes=1000, seed=0)
    assert torch.equal(obs, torch.ones(2, 1000, 1))
    totals = torch.zeros(2, 3)
    for t in range(9):
        action = torch.full((2, 1000), t % 3, dtype=torch.int64)
        state, obs, reward, terminated, truncated, _ = family.step(state, action)
        totals[:, t % 3] += reward.sum(dim=1)
        assert not terminated.any() and bool(truncated.all()) == (t == 9)
    torch.testing.assert_close(totals / 3000, params["probs"], atol=0.03, rtol=0)
    assert totals[1, 1] == 0 and totals[1, 2] == 3000  # probability 0 and 1 are exact


def test_bandit_can_observe_the_last_arm_and_reward():
    family = make_task("bandit", arms=3, observe_last=True)
    state, obs = family.reset({"probs": torch.tensor([[0.0, 0.0, 1.0]])}, num_episodes=1, seed=0)
    assert obs.tolist() == [[[1.0, 0.0, 0.0, 0.0, 0.0]]]
    state, obs, *_ = family.step(state, torch.tensor([[2]]))
    assert obs.tolist() == [[[1.0, 0.0, 0.0, 1.0, 1.0]]]


def test_bandit_probability_above_one_is_refused():
    family = make_task("bandit", arms=2)
    message = "bandit: task parameter 'probs' must be in [0, 1]; got [0.5, 1.5] (task 0)"
    with pytest.raises(TaskParameterError, match=f"^{re.escape(message)}$"):
        family.validate_tasks({"probs": torch.tensor([[0.5, 1.5]])})


def test_mdp_transitions_and_rewards_follow_the_task():
    family = make_task("tabular-mdp", states=3, actions=2, horizon=1)
    transitions = torch.zeros(1, 3, 2, 3)
    transitions[0, :, :, :] = torch.tensor([0.2, 0.3, 0.5])
    params = {"transitions": transitions, "reward_means": torch.full((1, 3, 2), -2.0)}
    params["reward_means"][0, 0, 1] = 4.0
    family.validate_tasks(params)
    state, obs = family.reset(params, num_episodes=20000, seed=3)
    assert torch.equal(obs[0, 0], torch.tensor([1.0, 0.0, 0.0]))  # always starts in state 0
    state, obs, reward, terminated, truncated, _ = family.step(
        state, torch.ones(1, 20000, dtype=torch.int64)
    )
    torch.testing.assert_close(
        obs.mean(dim=(0, 1)), torch.tensor([0.2, 0.3, 0.5]), atol=0.015, rtol=0
    )
    assert reward.mean().item() == pytest.approx(4.0, abs=0.03)
    assert reward.std().item() == pytest.approx(1.0, abs=0.03)
    assert bool(truncated.all()) and not terminated.any()


def test_sampled_mdps_are_valid_and_centred_as_in_rl2():
    family = make_task("tabular-mdp")
    params = family.sample_tasks(200, seed=0)
    assert params["transitions"].shape == (200, 10, 5, 10)
    family.validate_tasks(params)
    assert params["reward_means"].mean().item() == pytest.approx(1.0, abs=0.03)
    assert params["reward_means"].std().item() == pytest.approx(1.0, abs=0.03)
    # flat Dirichlet over 10 states: each probability has mean 0.1 and variance 0.9 / 110
    assert params["transitions"].var().item() == pytest.approx(0.9 / 110, rel=0.05)


def test_mdp_rows_that_do_not_sum_to_one_are_refused():
    family = make_task("tabular-mdp", states=2, actions=2)
    params = family.sample_tasks(2, seed=0)
    params["transitions"][1, 1, 0] = torch.tensor([0.5, 0.4])
    message = (
        "tabular-mdp: task parameter 'transitions' rows must sum to 1; "
        "got 0.9 (task 1, state 1, action 0)"
    )
    with pytest.raises(TaskParameterError, match=f"^{re.escape(message)}$"):
        family.validate_tasks(params)


def test_discrete_actions_must_be_integers_of_the_batch_shape():
    family = make_task("tabular-mdp")
    state, _ = family.reset(family.sample_tasks(2, 0), num_episodes=3, seed=0)
    message = (
        "tabular-mdp: actions must be an integer tensor of shape (2, 3); "
        "got torch.float32 of shape (2, 3)"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        family.step(state, torch.zeros(2, 3))


def test_large_parameters_name_the_offending_entry():
    family = make_task("tabular-mdp")
    params = family.sample_tasks(3, seed=0)
    params["transitions"][2, 3, 1, 4] = -0.2
    message = (
        "tabular-mdp: task parameter 'transitions' must be in [0, 1]; "
        "got -0.2 at index (3, 1, 4) (task 2)"
    )
    with pytest.raises(TaskParameterError, match=f"^{re.escape(message)}$"):
        family.validate_tasks(params)
    params = family.sample_tasks(3, seed=0)
    params["reward_means"][1, 0, 0] = float("nan")
    message = (
        "tabular-mdp: task parameter 'reward_means' must be finite; "
        "got nan at index (0, 0) (task 1)"
    )
    with pytest.raises(TaskParameterError, match=f"^{re.escape(message)}$"):
        family.validate_tasks(params)
