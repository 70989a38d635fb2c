"""CartPole and Pendulum: the batched torch dynamics against gymnasium's own envs."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from gymnasium.envs.classic_control import CartPoleEnv, PendulumEnv

from autometa.errors import TaskParameterError
from autometa.tasks import make_task


def test_cartpole_matches_gymnasium_with_the_same_physics():
    family = make_task("cartpole")
    params = family.sample_tasks(3, seed=0)
    state, obs = family.reset(params, num_episodes=2, seed=5)
    actions = torch.randint(0, 2, (40, 3, 2), generator=torch.Generator().manual_seed(0))
    for i in range(3):
        for j in range(2):
            env = CartPoleEnv()
            env.reset(seed=0)
            env.gravity = float(params["gravity"][i])
            env.masscart, env.masspole = float(params["masscart"][i]), float(params["masspole"][i])
            env.length = float(params["length"][i])
            env.total_mass = env.masscart + env.masspole
            env.polemass_length = env.masspole * env.length
            env.state = obs[i, j].double().numpy()
            s, ref_obs, ref_term = state, [], []
            for t in range(40):
                o, r, term, _, _ = env.step(int(actions[t, i, j]))
                assert r == 1.0
                ref_obs.append(o), ref_term.append(term)
                if term:
                    break
            for t in range(len(ref_obs)):
                s, o, r, term, _, _ = family.step(s, actions[t])
                np.testing.assert_allclose(o[i, j].numpy(), ref_obs[t], atol=1e-4)
                assert bool(term[i, j]) == ref_term[t]
                assert float(r[i, j]) == 1.0


def test_cartpole_reset_noise_is_gymnasiums_interval_and_seeded():
    family = make_task("cartpole")
    params = family.sample_tasks(4, seed=0)
    _, a = family.reset(params, num_episodes=50, seed=1)
    _, b = family.reset(params, num_episodes=50, seed=1)
    _, c = family.reset(params, num_episodes=50, seed=2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.abs().max() <= 0.05 and a.abs().max() > 0.045
    assert len(torch.unique(a[..., 0])) == 200  # every slot draws its own noise


def test_pendulum_matches_gymnasium_with_the_same_physics():
    family = make_task("pendulum")
    params = family.sample_tasks(2, seed=4)
    state, obs = family.reset(params, num_episodes=3, seed=0)
    actions = 2.5 * (2 * torch.rand((60, 2, 3, 1), generator=torch.Generator().manual_seed(1)) - 1)
    for i in range(2):
        for j in range(3):
            env = PendulumEnv()
            env.reset(seed=0)
            env.g, env.m, env.l = (float(params[k][i]) for k in ("g", "m", "l"))
            env.state = np.array([float(state["theta"][i, j]), float(state["theta_dot"][i, j])])
            s = state
            for t in range(60):
                ref_obs, ref_reward, *_ = env.step(actions[t, i, j].double().numpy())
                s, o, r, term, _, _ = family.step(s, actions[t])
                np.testing.assert_allclose(o[i, j].numpy(), ref_obs, atol=1e-4)
                assert float(r[i, j]) == pytest.approx(ref_reward, abs=1e-4)
                assert not term.any()


def test_sampled_physics_stays_in_the_documented_ranges():
    family = make_task("cartpole")
    params = family.sample_tasks(500, seed=0)
    for key, (low, high) in family.ranges.items():
        assert params[key].min() >= low and params[key].max() <= high
        assert params[key].max() - params[key].min() > 0.9 * (high - low)


def test_negative_pole_length_is_refused():
    family = make_task("cartpole")
    params = family.sample_tasks(3, seed=0)
    params["length"] = torch.tensor([0.5, -0.5, 0.7])
    message = "cartpole: task parameter 'length' must be > 0; got -0.5 (task 1)"
    with pytest.raises(TaskParameterError, match=f"^{re.escape(message)}$"):
        family.validate_tasks(params)


def test_bad_range_option_is_refused():
    message = (
        "pendulum: option 'l_range' must be a (low, high) pair with 0 < low <= high; "
        "got (-1.0, 1.0)"
    )
    with pytest.raises(TaskParameterError, match=f"^{re.escape(message)}$"):
        make_task("pendulum", l_range=(-1.0, 1.0))


def test_missing_and_unknown_parameters_are_named():
    family = make_task("pendulum")
    params = family.sample_tasks(2, seed=0)
    del params["m"]
    message = "pendulum: task parameter 'm' is missing; expected g, m, l"
    with pytest.raises(TaskParameterError, match=f"^{re.escape(message)}$"):
        family.reset(params, num_episodes=1, seed=0)
    params = family.sample_tasks(2, seed=0)
    params["mass"] = params["m"]
    message = "pendulum: task parameter 'mass' is not a parameter of this family; expected g, m, l"
    with pytest.raises(TaskParameterError, match=f"^{re.escape(message)}$"):
        family.validate_tasks(params)
    params = family.sample_tasks(2, seed=0)
    params["g"] = params["g"][:1]
    message = (
        "pendulum: task parameters must share one positive number of tasks; got g: 1, m: 2, l: 2"
    )
    with pytest.raises(TaskParameterError, match=f"^{re.escape(message)}$"):
        family.validate_tasks(params)
    params["g"] = torch.ones(2, 1)
    message = "pendulum: task parameter 'g' must have shape (n,); got (2, 1)"
    with pytest.raises(TaskParameterError, match=f"^{re.escape(message)}$"):
        family.validate_tasks(params)
