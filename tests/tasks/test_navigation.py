"""2D navigation: the MAML paper's point robot, checked against hand computations."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from autometa.errors import TaskParameterError
from autometa.tasks import make_task


def test_defaults_follow_the_original_code():
    family = make_task("navigation2d")
    assert family.horizon == 100
    assert family.native is True
    assert family.device == torch.device("cpu")
    assert family.single_action_space.shape == (2,)
    assert float(family.single_action_space.low[0]) == -1.0
    assert float(family.single_action_space.high[0]) == 1.0
    goals = family.sample_tasks(1000, seed=0)["goal"]
    assert goals.shape == (1000, 2)
    assert goals.min() >= -0.5 and goals.max() <= 0.5
    assert goals.min() < -0.45 and goals.max() > 0.45  # uniform over the whole arena


def test_step_matches_hand_computation():
    family = make_task("navigation2d")
    params = {"goal": torch.tensor([[0.3, -0.2], [-0.5, 0.5]])}
    state, obs = family.reset(params, num_episodes=2, seed=0)
    assert torch.equal(obs, torch.zeros(2, 2, 2))
    # policy units: 0.5 -> 0.05 per step; 3.0 is clipped to 1 -> 0.1
    action = torch.tensor([[[0.5, -0.5], [3.0, 0.0]], [[-1.0, 1.0], [0.0, -3.0]]])
    state, obs, reward, terminated, truncated, info = family.step(state, action)
    expected = torch.tensor([[[0.05, -0.05], [0.1, 0.0]], [[-0.1, 0.1], [0.0, -0.1]]])
    torch.testing.assert_close(obs, expected)
    goals = params["goal"][:, None, :]
    torch.testing.assert_close(reward, -torch.linalg.vector_norm(expected - goals, dim=-1))
    assert reward.dtype == torch.float32
    assert not terminated.any() and not truncated.any()
    assert info == {}


def test_reaching_the_goal_box_terminates_and_absorbs():
    family = make_task("navigation2d")
    # goal 0.205 away along x with a 0.005 offset in y: the per-coordinate box test passes
    params = {"goal": torch.tensor([[0.205, 0.005]])}
    state, _ = family.reset(params, num_episodes=1, seed=0)
    push = torch.tensor([[[1.0, 0.0]]])
    rewards, terms = [], []
    for _ in range(4):
        state, obs, reward, terminated, truncated, _ = family.step(state, push)
        rewards.append(float(reward)), terms.append(bool(terminated))
    assert terms == [False, True, True, True]
    assert rewards[2:] == [0.0, 0.0]
    assert rewards[1] == pytest.approx(-float(np.hypot(0.005, 0.005)), abs=1e-6)
    torch.testing.assert_close(obs, torch.tensor([[[0.2, 0.0]]]))  # frozen where it stopped


def test_truncated_exactly_at_the_horizon():
    family = make_task("navigation2d", horizon=5)
    state, _ = family.reset(family.sample_tasks(2, 0), num_episodes=3, seed=0)
    flags = []
    for _ in range(6):
        state, _, _, _, truncated, _ = family.step(state, torch.zeros(2, 3, 2))
        flags.append(bool(truncated.all()) if truncated.any() else False)
    assert flags == [False, False, False, False, True, True]


def test_raw_velocity_mode_of_pytorch_maml_rl():
    family = make_task("navigation2d", action_scale=1.0)
    assert float(family.single_action_space.high[0]) == pytest.approx(0.1)
    state, _ = family.reset({"goal": torch.zeros(1, 2)}, num_episodes=1, seed=0)
    state, obs, *_ = family.step(state, torch.tensor([[[0.05, 0.7]]]))
    torch.testing.assert_close(obs, torch.tensor([[[0.05, 0.1]]]))


def test_oracle_observation_appends_the_goal():
    family = make_task("navigation2d", oracle=True)
    params = family.sample_tasks(3, seed=1)
    _, obs = family.reset(params, num_episodes=2, seed=0)
    assert obs.shape == (3, 2, 4)
    torch.testing.assert_close(obs[..., 2:], params["goal"][:, None, :].expand(3, 2, 2))


def test_sparse_reward_only_inside_the_radius():
    family = make_task("navigation2d-sparse")
    assert family.name == "navigation2d-sparse" and family.radius == 0.2
    params = {"goal": torch.tensor([[0.45, 0.0]])}
    state, _ = family.reset(params, num_episodes=1, seed=0)
    rewards = []
    for _ in range(3):
        state, obs, reward, *_ = family.step(state, torch.tensor([[[1.0, 0.0]]]))
        rewards.append(float(reward))
    # distances after each move: 0.35, 0.25, 0.15 -> only the last is inside 0.2
    assert rewards[:2] == [0.0, 0.0]
    assert rewards[2] == pytest.approx(1.0 - 0.15, abs=1e-6)


def test_single_env_passes_gymnasium_check_env():
    family = make_task("navigation2d")
    env = family.single_env({"goal": torch.tensor([0.1, -0.3])})
    check_env(env, skip_render_check=True)


def test_test_tasks_are_fixed_and_apart_from_training_tasks():
    family = make_task("navigation2d")
    test_a, test_b = family.test_tasks(5, seed=3), family.test_tasks(5, seed=3)
    assert torch.equal(test_a["goal"], test_b["goal"])
    assert not torch.equal(test_a["goal"], family.sample_tasks(5, seed=3)["goal"])
    gen_a, gen_b = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(
        family.sample_tasks(4, gen_a)["goal"], family.sample_tasks(4, gen_b)["goal"]
    )


def test_goal_outside_the_arena_names_family_and_parameter():
    family = make_task("navigation2d")
    params = {"goal": torch.tensor([[0.1, 0.2], [0.7, -0.1]])}
    message = (
        "navigation2d: task parameter 'goal' must be in [-0.5, 0.5]; got [0.7, -0.1] (task 1)"
    )
    with pytest.raises(TaskParameterError, match=f"^{re.escape(message)}$"):
        family.validate_tasks(params)
    message = message.replace("(task 1)", "(task 0)")
    with pytest.raises(TaskParameterError, match=f"^{re.escape(message)}$"):
        family.single_env({"goal": torch.tensor([0.7, -0.1])})


def test_bad_options_name_family_and_option():
    message = "navigation2d: option 'max_speed' must be a positive number; got -0.1"
    with pytest.raises(TaskParameterError, match=f"^{re.escape(message)}$"):
        make_task("navigation2d", max_speed=-0.1)
    message = "navigation2d: option 'goal_high' must be greater than goal_low=0.5; got 0.5"
    with pytest.raises(TaskParameterError, match=f"^{re.escape(message)}$"):
        make_task("navigation2d", goal_low=0.5, goal_high=0.5)
