"""The registry of task families by name, free of torch.

Published as ``autometa.tasks.TASKS``; it lives here, below every package, so that a task
name is checked (``autometa validate --task``) without importing torch. Each built-in
family is a lazy ``"module:attr"`` entry, imported when the family is made.
"""

from __future__ import annotations

from typing import Any

from autometa.registry import Registry

__all__ = ["TASKS", "register_task"]

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
    ``entry(device=..., **options)`` by ``autometa.tasks.make_task``.
    """
    return TASKS.register(name, entry, overwrite=overwrite)
