"""The MAML paper's MuJoCo tasks (Finn et al. 2017, §5.3) on gymnasium's v5 envs.

Rewards follow the original code (``rllab/envs/mujoco/half_cheetah_env_rand*.py``,
``ant_env_rand*.py`` in ``cbfinn/maml_rl``; see ``docs/references.md``). Physics are gymnasium's
``HalfCheetah-v5`` / ``Ant-v5`` models with frame-skip 5 (0.05 s per step), as in
pytorch-maml-rl and learn2learn, with their 100-step horizon (5 s of simulated time); the paper
used rllab models and 200 steps (difference #4 in ``docs/references.md``), so returns are not
on the paper's scale.
Forward velocity is gymnasium's ``info["x_velocity"]``, i.e. the torso's Δx / dt (the ports'
choice; the original read the simulator's centre-of-mass velocity). Observations are the v5
layouts. Reset noise is gymnasium's (qpos + U(-0.1, 0.1), qvel + 0.1 N(0, 1)). Needs the
``mujoco`` extra, imported only when a family is built.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import torch

from autometa._optional import import_optional
from autometa.tasks._gym import GymTaskFamily
from autometa.tasks.base import TaskParam

__all__ = ["AntDir", "AntVel", "HalfCheetahDir", "HalfCheetahVel"]

logger = logging.getLogger(__name__)

# Control-cost weights of the MAML rewards: 0.5 * 0.1 for the cheetah; 0.005 on the action
# divided by half the actuator range (1 for gymnasium's ant) for the ant; contact 0.0005.
_CHEETAH_CTRL, _ANT_CTRL, _ANT_CONTACT, _ANT_SURVIVE = 0.05, 0.005, 0.0005, 0.05


def _make_env(kind: str) -> gym.Env:
    mujoco = import_optional("mujoco", "the MuJoCo task families")
    # MuJoCo prints a deprecation warning for gymnasium's model files on every build
    # (hundreds per family); send it to logging instead of the terminal.
    previous = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(lambda message: logger.debug("mujoco: %s", message))
    try:
        if kind == "cheetah":
            from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv

            return HalfCheetahEnv(ctrl_cost_weight=_CHEETAH_CTRL)
        from gymnasium.envs.mujoco.ant_v5 import AntEnv

        return AntEnv(ctrl_cost_weight=_ANT_CTRL, contact_cost_weight=_ANT_CONTACT)
    finally:
        mujoco.set_mju_user_warning(previous)


def _velocity_reward(task: dict[str, Any], info: dict[str, Any]) -> float:
    return -abs(float(info["x_velocity"]) - float(task["velocity"]))


def _direction_reward(task: dict[str, Any], info: dict[str, Any]) -> float:
    return float(task["direction"]) * float(info["x_velocity"])


def _reward(goal: str, kind: str, task, action, reward, info) -> float:
    """MAML reward: goal term + (cheetah) control cost, or + (ant) costs and bonuses."""
    term = _velocity_reward(task, info) if goal == "velocity" else _direction_reward(task, info)
    if kind == "cheetah":
        return term + float(info["reward_ctrl"])
    bonus = 1.0 if goal == "velocity" else 0.0  # the +1 bonus of the ant velocity task
    return term + bonus + float(info["reward_ctrl"] + info["reward_contact"]) + _ANT_SURVIVE


class _MujocoTask(GymTaskFamily):
    """Shared constructor: a goal velocity range or a forward/backward direction."""

    kind: str

    def __init__(
        self,
        device: str | torch.device,
        horizon: int,
        vectorization: str,
        velocity_range: tuple[float, float] | None,
    ) -> None:
        if velocity_range is not None:
            low, high = velocity_range
            if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                raise self._option_error(
                    "velocity_range", "a finite (low, high) pair", velocity_range
                )
            params = {"velocity": TaskParam((), float(low), float(high))}
            sample: Any = functools.partial(_sample_velocity, float(low), float(high))
            goal = "velocity"
        else:
            params = {"direction": TaskParam((), -1.0, 1.0)}
            sample, goal = _sample_direction, "direction"
        super().__init__(
            functools.partial(_make_env, self.kind),
            sample,
            reward_fn=functools.partial(_reward, goal, self.kind),
            task_params=params,
            horizon=horizon,
            name=self.name,
            device=device,
            vectorization=vectorization,
        )

    def _validate_more(self, params: Mapping[str, torch.Tensor]) -> None:
        if "direction" not in params:
            return
        value = params["direction"].detach().cpu()
        bad = (value != 1.0) & (value != -1.0)
        if bool(bad.any()):
            task = int(bad.nonzero()[0, 0])
            raise self._param_error(
                "direction", f"must be -1 or 1; got {float(value[task]):g} (task {task})"
            )


def _sample_velocity(low: float, high: float, n: int, gen: torch.Generator) -> dict[str, Any]:
    return {"velocity": low + (high - low) * torch.rand(n, generator=gen)}


def _sample_direction(n: int, gen: torch.Generator) -> dict[str, Any]:
    return {"direction": 2.0 * torch.randint(0, 2, (n,), generator=gen).float() - 1.0}


class HalfCheetahVel(_MujocoTask):
    """Run at a goal velocity in U[0, 2]: r = -|v_x - v_goal| - 0.05 |a|^2; never terminates.

    Args:
        device: where the returned tensors live (the simulators run on CPU).
        horizon: steps per episode (100 x 0.05 s).
        vectorization: ``"sync"`` or ``"async"`` gymnasium vector env.
        velocity_range: goal velocities (the paper's [0, 2]); ``validate_tasks`` enforces it.
    """

    name, kind = "halfcheetah-vel", "cheetah"

    def __init__(
        self,
        *,
        device: str | torch.device = "cpu",
        horizon: int = 100,
        vectorization: str = "sync",
        velocity_range: tuple[float, float] = (0.0, 2.0),
    ) -> None:
        super().__init__(device, horizon, vectorization, velocity_range)


class HalfCheetahDir(_MujocoTask):
    """Run forward or backward (a fair coin per task): r = dir v_x - 0.05 |a|^2.

    Args:
        device: where the returned tensors live (the simulators run on CPU).
        horizon: steps per episode (100 x 0.05 s).
        vectorization: ``"sync"`` or ``"async"`` gymnasium vector env.
    """

    name, kind = "halfcheetah-dir", "cheetah"

    def __init__(
        self,
        *,
        device: str | torch.device = "cpu",
        horizon: int = 100,
        vectorization: str = "sync",
    ) -> None:
        super().__init__(device, horizon, vectorization, None)


class AntVel(_MujocoTask):
    """Ant at a goal velocity in U[0, 3] (Finn et al. 2017, App. A.2, with the +1 bonus).

    r = -|v_x - v_goal| + 1 - 0.005 |a|^2 - 0.0005 |clip(cfrc_ext, -1, 1)|^2 + 0.05;
    terminates when the state is non-finite or the torso height leaves [0.2, 1.0].

    Args:
        device: where the returned tensors live (the simulators run on CPU).
        horizon: steps per episode (100 x 0.05 s).
        vectorization: ``"sync"`` or ``"async"`` gymnasium vector env.
        velocity_range: goal velocities (the paper's [0, 3]); ``validate_tasks`` enforces it.
    """

    name, kind = "ant-vel", "ant"

    def __init__(
        self,
        *,
        device: str | torch.device = "cpu",
        horizon: int = 100,
        vectorization: str = "sync",
        velocity_range: tuple[float, float] = (0.0, 3.0),
    ) -> None:
        super().__init__(device, horizon, vectorization, velocity_range)


class AntDir(_MujocoTask):
    """Ant forward or backward (a fair coin per task).

    r = dir v_x - 0.005 |a|^2 - 0.0005 |clip(cfrc_ext, -1, 1)|^2 + 0.05; terminates as
    :class:`AntVel`.

    Args:
        device: where the returned tensors live (the simulators run on CPU).
        horizon: steps per episode (100 x 0.05 s).
        vectorization: ``"sync"`` or ``"async"`` gymnasium vector env.
    """

    name, kind = "ant-dir", "ant"

    def __init__(
        self,
        *,
        device: str | torch.device = "cpu",
        horizon: int = 100,
        vectorization: str = "sync",
    ) -> None:
        super().__init__(device, horizon, vectorization, None)
