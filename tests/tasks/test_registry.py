"""Every registered family passes the conformance checks; names resolve as documented."""

from __future__ import annotations

import re

import pytest
import torch
from gymnasium.utils.env_checker import check_env

from autometa.errors import TaskParameterError, UnknownNameError
from autometa.tasks import TASKS, TaskFamily, check_task_family, make_task, register_task

MUJOCO = {"halfcheetah-vel", "halfcheetah-dir", "ant-vel", "ant-dir"}
NATIVE = sorted(set(TASKS.names()) - MUJOCO)


def test_the_issue_families_are_registered():
    assert set(TASKS.names()) >= MUJOCO | {
        "navigation2d",
        "navigation2d-sparse",
        "cartpole",
        "pendulum",
        "bandit",
        "tabular-mdp",
    }


@pytest.mark.parametrize("name", NATIVE)
def test_native_family_passes_check_task_family(name):
    family = make_task(name)
    assert family.name == name and family.native
    check_task_family(family, num_tasks=3, num_episodes=2, seed=1)


# gymnasium's own CartPole and Pendulum spaces draw the same two warnings
@pytest.mark.filterwarnings("ignore:.*infinity:UserWarning")
@pytest.mark.filterwarnings("ignore:.*symmetric and normalized space:UserWarning")
@pytest.mark.parametrize("name", NATIVE)
def test_single_env_of_native_family_passes_check_env(name):
    family = make_task(name)
    params = family.test_tasks(2, seed=0)
    env = family.single_env({k: v[1] for k, v in params.items()}, slot=(1, 0))
    check_env(env, skip_render_check=True)


@pytest.mark.mujoco
@pytest.mark.parametrize("name", sorted(MUJOCO))
def test_mujoco_family_passes_check_task_family(name):
    pytest.importorskip("mujoco")
    family = make_task(name, horizon=20)
    assert family.name == name and not family.native
    check_task_family(family, num_tasks=2, num_episodes=2, seed=0)
    family.close()


def test_unknown_name_lists_the_valid_names():
    message = "unknown task family 'navigation2'. Did you mean 'navigation2d'? Valid names: "
    message += ", ".join(TASKS.names())
    with pytest.raises(UnknownNameError, match=f"^{re.escape(message)}$"):
        make_task("navigation2")


def test_register_task_and_make_task_with_options(monkeypatch):
    monkeypatch.setattr(TASKS, "_entries", dict(TASKS._entries))  # undone after the test

    def factory(device="cpu", **options):
        return TASKS.get("navigation2d")(device=device, **options)

    register_task("wide-navigation", factory)
    family = make_task("wide-navigation", goal_low=-2.0, goal_high=2.0)
    assert family.name == "wide-navigation"
    assert isinstance(family, TaskFamily)
    assert family.sample_tasks(200, seed=0)["goal"].abs().max() > 1.0
    message = "wide-navigation: task parameter 'goal' must be in [-2, 2]; got [3, 0] (task 0)"
    with pytest.raises(TaskParameterError, match=f"^{re.escape(message)}$"):
        family.validate_tasks({"goal": torch.tensor([[3.0, 0.0]])})


@pytest.mark.parametrize("name", NATIVE)
def test_native_family_steps_without_reading_tensor_values(name):
    """On the meta device any ``.item()``, ``bool(tensor)`` or CPU-created tensor would raise,
    so a rollout there shows reset and step never synchronise with the host."""
    family = make_task(name, device="meta")
    params = family.sample_tasks(3, seed=0)
    assert all(v.device.type == "meta" for v in params.values())
    state, obs = family.reset(params, num_episodes=4, seed=1)
    space = family.single_action_space
    if space.shape:
        action = torch.zeros((3, 4, *space.shape), device="meta")
    else:
        action = torch.zeros((3, 4), dtype=torch.int64, device="meta")
    for _ in range(3):
        state, obs, reward, terminated, truncated, _ = family.step(state, action)
    assert obs.shape == (3, 4, *family.single_observation_space.shape)
    assert (reward.dtype, terminated.dtype, truncated.dtype) == (
        torch.float32,
        torch.bool,
        torch.bool,
    )
    assert all(v.device.type == "meta" for v in state.values())
