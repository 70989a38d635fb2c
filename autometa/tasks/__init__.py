"""Task families: distributions of RL tasks stepped as batches of T tasks x E episodes.

>>> from autometa.tasks import make_task
>>> family = make_task("navigation2d", device="cpu")
>>> params = family.sample_tasks(4, seed=0)
>>> state, obs = family.reset(params, num_episodes=3, seed=0)
>>> tuple(obs.shape)
(4, 3, 2)

Families are registered by name in ``TASKS``; ``register_task`` adds your own (see
``docs/tasks.md``). The MuJoCo families import ``mujoco`` only when they are made.
"""

from __future__ import annotations

from typing import Any

import torch

from autometa._task_names import TASKS, register_task
from autometa.tasks._gym import GymTaskFamily, TaskEnv
from autometa.tasks.base import State, TaskFamily, TaskParam
from autometa.tasks.check import check_task_family

__all__ = [
    "TASKS",
    "GymTaskFamily",
    "TaskEnv",
    "State",
    "TaskFamily",
    "TaskParam",
    "check_task_family",
    "make_task",
    "register_task",
]


def make_task(name: str, device: str | torch.device = "cpu", **options: Any) -> TaskFamily:
    """Build the task family registered as ``name`` on ``device``.

    Raises:
        UnknownNameError: ``name`` is not registered (the message lists the valid names).
        TaskParameterError: an option is out of range.
    """
    family = TASKS.make(name, device=device, **options)
    if not isinstance(family, TaskFamily):
        raise TypeError(f"task family {name!r} built a {type(family).__name__}, not a TaskFamily")
    family.name = name
    return family
