"""A single-instance gymnasium view of a task family: one task, one episode at a time.

It sits below ``base``: it only calls a family's methods, so it needs ``TaskFamily`` for
annotations alone, and ``TaskFamily.single_env`` returns one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from autometa.tasks import _rng

if TYPE_CHECKING:
    from autometa.tasks.base import TaskFamily

__all__ = ["SingleTaskEnv", "one_task"]


def one_task(family: TaskFamily, params: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Return one task's parameters with a leading dimension of 1, validated."""
    task = {}
    for key, value in params.items():
        value = torch.as_tensor(value)
        spec = family.task_params.get(key)
        if spec is not None and value.dim() == len(spec.shape):
            value = value.unsqueeze(0)
        task[key] = value.to(family.device)
    family.validate_tasks(task)
    n = next(iter(task.values())).shape[0]
    if n != 1:
        raise ValueError(f"{family.name}: single_env takes one task; got {n}")
    return task


class SingleTaskEnv(gym.Env):
    """Runs slot ``(i, j)`` of a native family through the batched code with T = E = 1.

    ``reset(seed=s)`` reproduces the reset noise of slot ``slot`` of
    ``family.reset(params, num_episodes, seed=s)``; without a seed it draws one from
    ``self.np_random``, so gymnasium's seeding contract holds.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self, family: TaskFamily, params: Mapping[str, Any], slot: tuple[int, int] = (0, 0)
    ) -> None:
        self.family = family
        self.task = one_task(family, params)
        self.slot = (int(slot[0]), int(slot[1]))
        self.observation_space = family.single_observation_space
        self.action_space = family.single_action_space
        self._state: dict[str, torch.Tensor] | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode; ``seed`` seeds the reset noise exactly like the batched reset."""
        super().reset(seed=seed)
        if seed is None:
            seed = int(self.np_random.integers(0, 2**62))
        device = self.family.device
        keys = _rng.slot_keys(
            _rng.key_from_seed(seed),
            torch.tensor([self.slot[0]], device=device),
            torch.tensor([self.slot[1]], device=device),
        )
        self._state, obs = self.family._start(self.task, keys)
        return obs[0, 0].cpu().numpy(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One step of the family's dynamics; absorbing after termination like the batch."""
        if self._state is None:
            raise gym.error.ResetNeeded("call reset before step")
        space = self.action_space
        if isinstance(space, spaces.Discrete):
            batch = torch.tensor([[int(action)]], dtype=torch.int64)
        else:
            batch = torch.as_tensor(np.asarray(action, dtype=np.float32)).reshape(
                1, 1, *space.shape
            )
        self._state, obs, reward, terminated, truncated, _ = self.family.step(self._state, batch)
        return (
            obs[0, 0].cpu().numpy(),
            float(reward[0, 0]),
            bool(terminated[0, 0]),
            bool(truncated[0, 0]),
            {},
        )
