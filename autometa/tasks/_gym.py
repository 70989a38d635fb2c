"""Turn any gymnasium env plus a task sampler into a task family, batched by a vector env."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

from autometa.tasks import _rng
from autometa.tasks._single import one_task
from autometa.tasks.base import State, TaskFamily, TaskParam

__all__ = ["GymTaskFamily", "TaskEnv"]

SampleFn = Callable[[int, torch.Generator], Mapping[str, Any]]
SetTaskFn = Callable[[gym.Env, dict[str, Any]], None]
RewardFn = Callable[[dict[str, Any], np.ndarray, float, dict[str, Any]], float]


class TaskEnv(gym.Wrapper):
    """Holds one task on one env: applies it with ``set_task``, rewrites the reward, absorbs.

    Setting the ``task`` attribute (gymnasium vector envs do it with ``set_attr``) calls
    ``set_task(env, task)``. With ``hide_termination`` (inside a task family's vector env)
    a terminated episode is reported in ``info["task_terminated"]`` and never to the vector
    env, so the vector env needs no autoreset; later steps return the last observation and
    reward 0 without stepping the simulator.
    """

    def __init__(
        self,
        env: gym.Env,
        set_task: SetTaskFn | None = None,
        reward_fn: RewardFn | None = None,
        hide_termination: bool = True,
    ) -> None:
        super().__init__(env)
        self._set_task, self._reward_fn = set_task, reward_fn
        self._hide = hide_termination
        self._task: dict[str, Any] = {}
        self._ended = False
        self._last: Any = None

    @property
    def task(self) -> dict[str, Any]:
        """The current task's parameters (one task, plain Python / numpy values)."""
        return self._task

    @task.setter
    def task(self, task: dict[str, Any]) -> None:
        self._task = dict(task)
        if self._set_task is not None:
            self._set_task(self.env, self._task)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Reset the wrapped env and leave the absorbing state."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._ended, self._last = False, obs
        return obs, info

    def step(self, action: Any):
        """Step the wrapped env, or return the absorbing transition after the episode ended."""
        if self._ended:
            return self._last, 0.0, False, False, {"task_terminated": True}
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self._reward_fn is not None:
            reward = self._reward_fn(self._task, np.asarray(action), float(reward), info)
        ended = bool(terminated or truncated)
        self._ended, self._last = ended, obs
        if not self._hide:
            return obs, float(reward), bool(terminated), bool(truncated), info
        return obs, float(reward), False, False, {**info, "task_terminated": ended}


class _SlotSeeded(gym.Wrapper):
    """Maps ``reset(seed=s)`` onto the seed that slot ``(i, j)`` gets from a batched reset."""

    def __init__(self, env: gym.Env, slot: tuple[int, int]) -> None:
        super().__init__(env)
        self.slot = slot

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            i, j = (torch.tensor([k]) for k in self.slot)
            seed = int(_rng.slot_keys(_rng.key_from_seed(seed), i, j)[0, 0])
        return self.env.reset(seed=seed, options=options)


def _make(env_fn: Callable[[], gym.Env], set_task: Any, reward_fn: Any, hide: bool) -> TaskEnv:
    return TaskEnv(env_fn(), set_task, reward_fn, hide_termination=hide)


def _float32_box(space: spaces.Space) -> spaces.Box:
    if not isinstance(space, spaces.Box):
        raise TypeError(f"GymTaskFamily needs a Box observation space; got {space}")
    low, high = space.low.astype(np.float32), space.high.astype(np.float32)
    return spaces.Box(low, high, dtype=np.float32)


class GymTaskFamily(TaskFamily):
    """A task family over any gymnasium env: T x E copies stepped by a gymnasium vector env.

    Args:
        env_fn: builds one env (no arguments). Leave time limits to ``horizon``: an inner
            truncation ends the episode like a termination.
        sample_fn: ``sample_fn(n, generator) -> {name: array of leading dim n}`` draws tasks.
        set_task: ``set_task(env, task)`` puts one task (``{name: value}``, values as numpy
            arrays or floats) on an env built by ``env_fn``; None when ``reward_fn`` alone
            reads the task.
        reward_fn: optional ``reward_fn(task, action, reward, info) -> float`` replacing the
            env's reward (``info`` is the env's step info).
        task_params: shapes and allowed ranges per parameter; by default inferred from one
            sampled task, with no range limits.
        horizon: steps per episode.
        name: the family's name in messages (``make_task`` sets the registered name).
        device: where the returned tensors live; the simulators always run on CPU.
        vectorization: ``"sync"`` (one process) or ``"async"`` (a subprocess per copy).

    Box actions are clipped to the action space before they reach the env. Only the state
    returned by the latest ``reset``/``step`` may be stepped (the simulators are not in it).
    """

    native = False

    def __init__(
        self,
        env_fn: Callable[[], gym.Env],
        sample_fn: SampleFn,
        set_task: SetTaskFn | None = None,
        *,
        reward_fn: RewardFn | None = None,
        task_params: dict[str, TaskParam] | None = None,
        horizon: int,
        name: str = "gym",
        device: str | torch.device = "cpu",
        vectorization: str = "sync",
    ) -> None:
        self.name = name
        super().__init__(device=device, horizon=horizon)
        if vectorization not in ("sync", "async"):
            raise self._option_error("vectorization", "'sync' or 'async'", vectorization)
        self.vectorization = vectorization
        self._sample_fn = sample_fn
        self._env_fn = functools.partial(_make, env_fn, set_task, reward_fn)
        probe = env_fn()
        self.single_observation_space = _float32_box(probe.observation_space)
        act = probe.action_space
        if isinstance(act, spaces.Box):
            act = spaces.Box(act.low.astype(np.float32), act.high.astype(np.float32))
        elif not isinstance(act, spaces.Discrete):
            raise TypeError(f"GymTaskFamily needs a Box or Discrete action space; got {act}")
        self.single_action_space = act
        probe.close()
        if task_params is None:
            one = self._convert(sample_fn(1, torch.Generator().manual_seed(0)))
            task_params = {k: TaskParam(tuple(v.shape[1:])) for k, v in one.items()}
        self.task_params = dict(task_params)
        self._vec: SyncVectorEnv | AsyncVectorEnv | None = None
        self._cursor = (0, 0)  # (generation, steps) of the only state that may be stepped

    @staticmethod
    def _convert(params: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        return {k: torch.as_tensor(np.asarray(v), dtype=torch.float32) for k, v in params.items()}

    def _sample(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return self._convert(self._sample_fn(n, generator))

    def _vector(self, num_envs: int) -> SyncVectorEnv | AsyncVectorEnv:
        if self._vec is None or self._vec.num_envs != num_envs:
            self.close()
            fns = [functools.partial(self._env_fn, True)] * num_envs
            cls = SyncVectorEnv if self.vectorization == "sync" else AsyncVectorEnv
            self._vec = cls(fns, autoreset_mode=AutoresetMode.DISABLED)
        return self._vec

    def close(self) -> None:
        """Close the vector env (it is rebuilt on the next ``reset``)."""
        if self._vec is not None:
            self._vec.close()
            self._vec = None

    def _reset(self, task: State, keys: torch.Tensor) -> tuple[State, torch.Tensor]:
        num_tasks, num_episodes = keys.shape
        vec = self._vector(num_tasks * num_episodes)
        per_task = [
            {k[len("task.") :]: v[i, 0].cpu().numpy() for k, v in task.items()}
            for i in range(num_tasks)
        ]
        vec.set_attr("task", [per_task[i] for i in range(num_tasks) for _ in range(num_episodes)])
        obs, _ = vec.reset(seed=keys.cpu().flatten().tolist())
        generation = self._cursor[0] + 1
        self._cursor = (generation, 0)
        dynamic = {"generation": torch.tensor(generation, device=self.device)}
        return dynamic, self._to_tensor(obs, keys.shape)

    def _to_tensor(self, array: np.ndarray, batch: tuple[int, ...]) -> torch.Tensor:
        out = torch.as_tensor(np.asarray(array), dtype=torch.float32)
        return out.reshape(*batch, *out.shape[1:]).to(self.device)

    def _step(
        self, state: State, action: torch.Tensor
    ) -> tuple[State, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        cursor = (int(state["generation"]), int(state["t"]))
        if self._vec is None or cursor != self._cursor:
            raise RuntimeError(
                f"{self.name}: only the state returned by the latest reset/step can be stepped"
            )
        batch = tuple(state["done"].shape)
        n = batch[0] * batch[1]
        act = action.detach().cpu().numpy()
        space = self.single_action_space
        if isinstance(space, spaces.Box):
            act = np.clip(act.reshape(n, *space.shape), space.low, space.high)
        else:
            act = act.reshape(n)
        obs, reward, _, _, info = self._vec.step(act)
        self._cursor = (cursor[0], cursor[1] + 1)
        ended = np.asarray(info.get("task_terminated", np.zeros(n, bool)), dtype=bool)
        terminated = torch.as_tensor(ended).reshape(batch).to(self.device)
        obs_t, reward_t = self._to_tensor(obs, batch), self._to_tensor(reward, batch)
        return {}, obs_t, reward_t, terminated, {}

    def single_env(
        self, params: Mapping[str, torch.Tensor], slot: tuple[int, int] = (0, 0)
    ) -> gym.Env:
        """One copy of the env with one task and a ``horizon`` time limit.

        ``reset(seed=s)`` seeds it as slot ``slot`` of ``reset(..., seed=s)`` is seeded.
        """
        task = one_task(self, params)
        env = self._env_fn(False)
        env.task = {k: v[0].cpu().numpy() for k, v in task.items()}
        return _SlotSeeded(gym.wrappers.TimeLimit(env, self.horizon), slot)
