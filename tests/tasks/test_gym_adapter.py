"""GymTaskFamily: any gymnasium env plus a task sampler becomes a batched task family."""

from __future__ import annotations

import functools
import re

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.envs.classic_control import PendulumEnv

from autometa.errors import TaskParameterError
from autometa.tasks import (
    TASKS,
    GymTaskFamily,
    TaskParam,
    check_task_family,
    make_task,
    register_task,
)


class Countdown(gym.Env):
    """Observes [target, steps taken, reset noise]; terminates after ``target`` steps;
    the reward is the action."""

    def __init__(self) -> None:
        self.observation_space = spaces.Box(0.0, 100.0, (3,), np.float64)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.target = 1

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps, self.noise = 0, float(self.np_random.uniform())
        return self._obs(), {}

    def _obs(self):
        return np.array([self.target, self.steps, self.noise])

    def step(self, action):
        self.steps += 1
        return self._obs(), float(action[0]), self.steps >= self.target, False, {}


def set_target(env, task):
    env.target = int(task["target"])


def sample_targets(n, generator):
    return {"target": torch.randint(2, 6, (n,), generator=generator).float()}


def countdown_family(**options):
    return GymTaskFamily(
        Countdown, sample_targets, set_target, horizon=8, name="countdown", **options
    )


def test_tasks_go_to_their_slots_and_episodes_absorb():
    family = countdown_family()
    params = {"target": torch.tensor([2.0, 4.0])}
    state, obs = family.reset(params, num_episodes=3, seed=0)
    assert obs.shape == (2, 3, 3) and obs.dtype == torch.float32
    assert obs[..., 0].tolist() == [[2.0] * 3, [4.0] * 3]
    assert len(set(obs[..., 2].flatten().tolist())) == 6  # each slot seeded on its own
    rewards, terms = [], []
    for t in range(8):
        action = torch.full((2, 3, 1), 0.5 + 0.01 * t)
        state, obs, reward, terminated, truncated, _ = family.step(state, action)
        rewards.append(reward[:, 0].tolist()), terms.append(terminated[:, 0].tolist())
    assert [r[0] > 0 for r in rewards] == [True, True] + [False] * 6
    assert [r[1] > 0 for r in rewards] == [True] * 4 + [False] * 4
    assert [t[1] for t in terms] == [False] * 3 + [True] * 5
    assert obs[1, 0, 1] == 4.0  # frozen at the terminal step
    assert bool(truncated.all())


def test_actions_are_clipped_to_the_action_space():
    family = countdown_family()
    state, _ = family.reset({"target": torch.tensor([5.0])}, num_episodes=1, seed=0)
    _, _, reward, *_ = family.step(state, torch.full((1, 1, 1), 7.0))
    assert reward.tolist() == [[1.0]]


def test_inferred_task_params_and_check_task_family():
    family = countdown_family()
    assert family.task_params == {"target": TaskParam(())}
    check_task_family(family)


def test_same_seed_same_reset_noise_and_single_env_matches_a_slot():
    family = countdown_family()
    params = family.sample_tasks(2, seed=0)
    _, a = family.reset(params, num_episodes=2, seed=11)
    _, b = family.reset(params, num_episodes=2, seed=11)
    assert torch.equal(a, b)
    env = family.single_env({"target": params["target"][1]}, slot=(1, 1))
    obs, _ = env.reset(seed=11)
    np.testing.assert_allclose(obs, a[1, 1].numpy(), rtol=1e-6)


def test_registered_adapter_over_a_gymnasium_env(monkeypatch):
    monkeypatch.setattr(TASKS, "_entries", dict(TASKS._entries))  # undone after the test

    def set_physics(env, task):
        env.g, env.m = float(task["g"]), float(task["m"])

    def sample(n, generator):
        return {"g": 8 + 4 * torch.rand(n, generator=generator), "m": torch.ones(n)}

    factory = functools.partial(
        GymTaskFamily,
        PendulumEnv,
        sample,
        set_physics,
        horizon=200,
        task_params={"g": TaskParam((), 0.0, 20.0, open_low=True), "m": TaskParam((), 0.1, 5.0)},
    )
    register_task("my-pendulum", factory)
    family = make_task("my-pendulum")
    params = family.sample_tasks(2, seed=0)
    family.reset(params, num_episodes=1, seed=0)
    assert [env.unwrapped.g for env in family._vec.envs] == pytest.approx(params["g"].tolist())
    message = "my-pendulum: task parameter 'm' must be in [0.1, 5]; got 0 (task 0)"
    with pytest.raises(TaskParameterError, match=f"^{re.escape(message)}$"):
        family.validate_tasks({"g": torch.tensor([9.0]), "m": torch.tensor([0.0])})
