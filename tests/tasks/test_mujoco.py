"""The MAML paper's MuJoCo tasks: rewards recomputed by hand from the simulator's states."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from autometa.errors import TaskParameterError
from autometa.tasks import make_task

pytest.importorskip("mujoco")
pytestmark = pytest.mark.mujoco


def _torso_x(sim) -> float:
    """Torso x as gymnasium's v5 envs read it: the root slider for the cheetah, the torso
    body position for the ant."""
    return float(sim.data.qpos[0]) if sim.data.qpos.size == 9 else float(sim.data.body(1).xpos[0])


def _roll(family, params, steps, seed=0, num_episodes=2):
    """Step ``steps`` times, recording torso x, actions, contact forces and rewards."""
    num_tasks = next(iter(params.values())).shape[0]
    gen = torch.Generator().manual_seed(seed)
    shape = (num_tasks, num_episodes, *family.single_action_space.shape)
    state, _ = family.reset(params, num_episodes=num_episodes, seed=seed)
    sims = [env.unwrapped for env in family._vec.envs]
    records = []
    for _ in range(steps):
        action = 1.3 * (2 * torch.rand(shape, generator=gen) - 1)  # partly outside [-1, 1]
        x0 = [_torso_x(sim) for sim in sims]
        state, _, reward, terminated, _, _ = family.step(state, action)
        x1 = [_torso_x(sim) for sim in sims]
        contact = [np.clip(sim.data.cfrc_ext, -1, 1).copy() for sim in sims]
        records.append(
            (action.reshape(len(sims), -1).numpy(), x0, x1, contact, reward, terminated)
        )
    return records, sims[0].dt


@pytest.mark.parametrize("name", ["halfcheetah-vel", "halfcheetah-dir"])
def test_cheetah_rewards_match_the_paper(name):
    family = make_task(name)
    params = family.sample_tasks(2, seed=1)
    key = "velocity" if name.endswith("vel") else "direction"
    goal = np.repeat(params[key].numpy(), 2)
    records, dt = _roll(family, params, steps=5)
    assert dt == pytest.approx(0.05)
    for action, x0, x1, _, reward, terminated in records:
        a = np.clip(action, -1, 1)
        v = (np.array(x1) - np.array(x0)) / dt
        term = -np.abs(v - goal) if key == "velocity" else goal * v
        expected = term - 0.05 * (a**2).sum(axis=1)
        np.testing.assert_allclose(reward.flatten().numpy(), expected, rtol=1e-5, atol=1e-5)
        assert not terminated.any()


@pytest.mark.parametrize("name", ["ant-vel", "ant-dir"])
def test_ant_rewards_match_the_paper(name):
    family = make_task(name)
    params = family.sample_tasks(1, seed=2)
    key = "velocity" if name.endswith("vel") else "direction"
    goal = np.repeat(params[key].numpy(), 2)
    records, dt = _roll(family, params, steps=3)
    for action, x0, x1, contact, reward, _ in records:
        a = np.clip(action, -1, 1)
        v = (np.array(x1) - np.array(x0)) / dt
        term = -np.abs(v - goal) + 1.0 if key == "velocity" else goal * v
        contact_cost = 0.0005 * np.array([(c**2).sum() for c in contact])
        expected = term - 0.005 * (a**2).sum(axis=1) - contact_cost + 0.05
        np.testing.assert_allclose(reward.flatten().numpy(), expected, rtol=1e-5, atol=1e-5)


def test_tasks_reach_their_slots_and_single_env_reproduces_a_slot():
    family = make_task("halfcheetah-vel")
    params = {"velocity": torch.tensor([0.5, 1.5])}
    state, obs = family.reset(params, num_episodes=2, seed=7)
    assert [float(env.task["velocity"]) for env in family._vec.envs] == [0.5, 0.5, 1.5, 1.5]
    env = family.single_env({"velocity": torch.tensor(1.5)}, slot=(1, 0))
    single_obs, _ = env.reset(seed=7)
    np.testing.assert_allclose(single_obs, obs[1, 0].numpy(), rtol=1e-6)
    action = torch.full((2, 2, 6), 0.3)
    state, obs, reward, *_ = family.step(state, action)
    single_obs, single_reward, *_ = env.step(np.full(6, 0.3, np.float32))
    np.testing.assert_allclose(single_obs, obs[1, 0].numpy(), rtol=1e-5)
    assert single_reward == pytest.approx(float(reward[1, 0]), rel=1e-5)


def test_async_vectorization_steps_like_sync():
    params = {"direction": torch.tensor([1.0, -1.0])}
    action = torch.full((2, 1, 6), -0.4)
    results = []
    for mode in ("sync", "async"):
        family = make_task("halfcheetah-dir", vectorization=mode, horizon=3)
        state, _ = family.reset(params, num_episodes=1, seed=3)
        for _ in range(3):
            state, obs, reward, *_ = family.step(state, action)
        results.append((obs, reward))
        family.close()
    torch.testing.assert_close(results[0], results[1])


def test_bad_direction_and_velocity_are_refused():
    message = "halfcheetah-dir: task parameter 'direction' must be -1 or 1; got 0.5 (task 1)"
    with pytest.raises(TaskParameterError, match=f"^{re.escape(message)}$"):
        make_task("halfcheetah-dir").validate_tasks({"direction": torch.tensor([1.0, 0.5])})
    message = "ant-vel: task parameter 'velocity' must be in [0, 3]; got 3.5 (task 0)"
    with pytest.raises(TaskParameterError, match=f"^{re.escape(message)}$"):
        make_task("ant-vel").validate_tasks({"velocity": torch.tensor([3.5])})


def test_stale_state_cannot_be_stepped():
    family = make_task("halfcheetah-vel", horizon=5)
    params = family.sample_tasks(1, seed=0)
    old, _ = family.reset(params, num_episodes=1, seed=0)
    family.reset(params, num_episodes=1, seed=1)
    message = "halfcheetah-vel: only the state returned by the latest reset/step can be stepped"
    with pytest.raises(RuntimeError, match=f"^{re.escape(message)}$"):
        family.step(old, torch.zeros(1, 1, 6))
