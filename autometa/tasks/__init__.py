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

from autometa.registry import Registry
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

TASKS: Registry[Any] = Registry("task family")
"""Registered task families: name -> class or factory (lazy ``"module:attr"`` entries)."""

for _name, _entry in [
    ("navigation2d", "autometa.tasks._navigation:Navigation2D"),
    ("navigation2d-sparse", "autometa.tasks._navigation:SparseNavigation2D"),
    ("cartpole", "autometa.tasks._classic:CartPole"),
    ("pendulum", "autometa.tasks._classic:Pendulum"),
    ("bandit", "autometa.tasks._discrete:BernoulliBandit"),
    ("tabular-mdp", "autometa.tasks._discrete:TabularMDP"),
    ("halfcheetah-vel", "autometa.tasks._mujoco:HalfCheetahVel"),
    ("halfcheetah-dir", "autometa.tasks._mujoco:HalfCheetahDir"),
    ("ant-vel", "autometa.tasks._mujoco:AntVel"),
    ("ant-dir", "autometa.tasks._mujoco:AntDir"),
]:
    TASKS.register(_name, _entry)


def register_task(name: str, entry: Any = None, *, overwrite: bool = False) -> Any:
    """Register a task-family class or factory (or a ``"module:attr"`` string) under ``name``.

    Without ``entry`` it returns a decorator. The factory is called as
    ``entry(device=..., **options)`` by :func:`make_task`.
    """
    return TASKS.register(name, entry, overwrite=overwrite)


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
