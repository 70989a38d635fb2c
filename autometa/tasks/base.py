"""The task-family contract: sample tasks, then step T tasks x E episodes as tensors."""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from autometa.errors import TaskParameterError
from autometa.tasks import _rng
from autometa.tasks._single import SingleTaskEnv

__all__ = ["Seed", "State", "TaskFamily", "TaskParam"]

Seed = int | torch.Generator
State = dict[str, torch.Tensor]
"""A batch of environment states: named tensors with a leading batch dimension."""

_TRAIN_SALT, _TEST_SALT = 0x7261696E, 0x74657374  # separate streams for training / test tasks


@dataclass(frozen=True)
class TaskParam:
    """One task parameter: its per-task shape and the closed or open interval it must lie in.

    Attributes:
        shape: shape of one task's value (``()`` for a scalar); a batch adds a leading ``n``.
        low: smallest allowed value (``-inf`` for none).
        high: largest allowed value (``inf`` for none).
        open_low: whether ``low`` itself is excluded (``length > 0`` rather than ``>= 0``).
        dtype: ``torch.float32`` or ``torch.int64``.
    """

    shape: tuple[int, ...] = ()
    low: float = -math.inf
    high: float = math.inf
    open_low: bool = False
    dtype: torch.dtype = torch.float32

    def rule(self) -> str:
        """The allowed interval in words, e.g. ``in [-0.5, 0.5]`` or ``> 0``."""
        if math.isinf(self.low) and math.isinf(self.high):
            return "finite"
        if math.isinf(self.high):
            return f"> {self.low:g}" if self.open_low else f">= {self.low:g}"
        if math.isinf(self.low):
            return f"<= {self.high:g}"
        left = "(" if self.open_low else "["
        return f"in {left}{self.low:g}, {self.high:g}]"


class TaskFamily(abc.ABC):
    """A distribution of RL tasks, stepped as a batch of T tasks x E episodes.

    Shaped like gymnasium's ``VectorEnv`` with two batch dimensions instead of one:

    - ``sample_tasks(n, seed)`` draws task parameters, a ``dict[str, Tensor]`` whose tensors
      all have leading dimension ``n`` (the tasks ``T``), on ``device``. Draws happen on a CPU
      generator and are then moved, so a seed gives the same tasks on every device.
    - ``test_tasks(n, seed)`` draws fixed held-out tasks from a stream separate from
      ``sample_tasks`` (the same seed gives different tasks), so every candidate of a search is
      judged on the same test tasks.
    - ``validate_tasks(params)`` raises :class:`~autometa.errors.TaskParameterError` naming the
      family and the parameter when a value is missing, misshapen or out of range. ``reset``
      checks only keys and shapes (no host-device synchronisation); call ``validate_tasks`` once
      on parameters that did not come from ``sample_tasks``.
    - ``reset(params, num_episodes=E, seed=s)`` returns ``(state, obs)``; ``obs`` has shape
      ``(T, E, *single_observation_space.shape)``, float32. Reset noise is derived from ``seed``
      (an int or a ``torch.Generator``) per slot ``(task, episode)``, so the same seed gives the
      same rollout, and slot ``(i, j)`` equals ``single_env(task i, slot=(i, j))`` reset with
      the same seed.
    - ``step(state, action)`` returns ``(state, obs, reward, terminated, truncated, info)``.
      ``action`` is ``(T, E, *act_shape)`` float for a ``Box`` action space or ``(T, E)``
      int64 for ``Discrete``; ``reward`` is ``(T, E)`` float32, ``terminated`` and
      ``truncated`` are ``(T, E)`` bool, ``info`` a dict of tensors (often empty).

    ``state`` is a flat dict of tensors and nothing else: ``"t"`` (0-d int64, steps taken),
    ``"done"`` (T, E bool), ``"obs"`` (last observation), ``"key"`` (T, E int64 noise keys),
    ``"task.<name>"`` (the parameters with an episode axis of size 1) and the family's own
    dynamic fields. ``step`` never modifies its inputs; it returns a new dict. Native families
    (``native = True``) are pure torch: no Python loop over tasks or episodes, no ``.item()``,
    every tensor created on ``device``, so a rollout on CUDA never waits for the host and its
    time loop can be replayed as a CUDA graph (``autometa.meta.cuda_graphs``; a step that
    copies host data to the device cannot be captured and runs eagerly).
    Gymnasium-backed adapters (``native = False``) keep the simulators outside
    the dict, so only the state returned by the latest ``reset``/``step`` may be stepped.

    Rollout semantics (what the MAML evaluator relies on):

    - Call ``reset`` once, then ``step`` exactly ``horizon`` times.
    - An episode that terminates early is *absorbing*: every later step returns reward 0,
      ``terminated=True`` and the unchanged last observation; its dynamics are frozen. A
      consumer masks with ``alive = ~(terminated | truncated)`` of the previous step and needs
      no Python control flow.
    - ``truncated`` is True for every slot from step ``horizon`` on (like gymnasium's
      ``TimeLimit``, also for slots that terminated earlier).
    - Compared with ``gymnasium.vector.VectorEnv``: this is ``AutoresetMode.DISABLED`` with a
      fixed-length batch; there is no ``NEXT_STEP`` / ``SAME_STEP`` autoreset inside a rollout.
      A new batch of episodes always starts with ``reset``.

    Subclasses set ``name``, ``horizon``, ``single_observation_space``,
    ``single_action_space`` and ``task_params``, and implement ``_sample``, ``_reset`` and
    ``_step``.
    """

    name: str = ""
    """Registered name (``make_task`` sets it to the name it was called with)."""
    native: bool = True
    """True for pure-torch device-native families, False for gymnasium-backed adapters."""
    horizon: int
    single_observation_space: spaces.Box
    single_action_space: spaces.Box | spaces.Discrete
    task_params: dict[str, TaskParam]

    def __init__(self, *, device: str | torch.device = "cpu", horizon: int) -> None:
        self.device = torch.device(device)
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise self._option_error("horizon", "a positive int", horizon)
        self.horizon = horizon

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, device={str(self.device)!r})"

    # -- errors ---------------------------------------------------------------------------

    def _param_error(self, param: str, message: str) -> TaskParameterError:
        return TaskParameterError(f"{self.name}: task parameter {param!r} {message}")

    def _option_error(self, option: str, expected: str, got: object) -> TaskParameterError:
        return TaskParameterError(
            f"{self.name}: option {option!r} must be {expected}; got {got!r}"
        )

    # -- tasks ----------------------------------------------------------------------------

    @abc.abstractmethod
    def _sample(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Draw ``n`` tasks with ``generator`` (on CPU); the base class moves them to device."""

    def sample_tasks(self, n: int, seed: Seed) -> dict[str, torch.Tensor]:
        """Draw ``n`` training tasks from the family's distribution.

        Args:
            n: number of tasks (T).
            seed: an int (the same int always gives the same tasks) or a ``torch.Generator``
                from which a seed is drawn.

        Returns:
            The task parameters, each tensor with leading dimension ``n``, on ``device``.
        """
        return self._draw(n, seed, _TRAIN_SALT)

    def test_tasks(self, n: int, seed: Seed) -> dict[str, torch.Tensor]:
        """Draw ``n`` held-out tasks from a stream that ``sample_tasks`` never uses."""
        return self._draw(n, seed, _TEST_SALT)

    def _draw(self, n: int, seed: Seed, salt: int) -> dict[str, torch.Tensor]:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{self.name}: the number of tasks must be a positive int; got {n!r}")
        if isinstance(seed, torch.Generator):
            seed = int(torch.randint(0, 2**62, (1,), generator=seed, device=seed.device))
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"{self.name}: seed must be a non-negative int; got {seed!r}")
        state = np.random.SeedSequence([seed, salt]).generate_state(2, np.uint32)
        generator = torch.Generator("cpu").manual_seed(int(state[0]) << 32 | int(state[1]))
        params = self._sample(n, generator)
        return {
            k: v.to(device=self.device, dtype=self.task_params[k].dtype) for k, v in params.items()
        }

    def validate_tasks(self, params: Mapping[str, torch.Tensor]) -> None:
        """Check keys, shapes and value ranges of ``params``.

        Raises:
            TaskParameterError: naming the family and the first offending parameter.
        """
        n = self._check_structure(params)
        for key, spec in self.task_params.items():
            value = params[key].detach().to("cpu", torch.float64).reshape(n, -1)
            bad = ~torch.isfinite(value)
            if spec.open_low:
                bad |= value <= spec.low
            else:
                bad |= value < spec.low
            bad |= value > spec.high
            if bool(bad.any()):
                task, flat = (int(i) for i in bad.nonzero()[0])
                got = value[task].tolist()
                if len(got) == 1:
                    shown = f"{got[0]:g}"
                elif len(got) <= 4:
                    shown = "[" + ", ".join(f"{v:g}" for v in got) + "]"
                else:
                    index = tuple(int(i) for i in np.unravel_index(flat, spec.shape))
                    shown = f"{got[flat]:g} at index {index}"
                raise self._param_error(key, f"must be {spec.rule()}; got {shown} (task {task})")
        self._validate_more(params)

    def _validate_more(self, params: Mapping[str, torch.Tensor]) -> None:
        """Family-specific checks beyond the per-parameter interval (e.g. rows summing to 1)."""
        return None

    def _check_structure(self, params: Mapping[str, torch.Tensor]) -> int:
        """Check keys and shapes (host metadata only, no synchronisation); return T."""
        expected = ", ".join(self.task_params)
        for key in params:
            if key not in self.task_params:
                raise self._param_error(
                    key, f"is not a parameter of this family; expected {expected}"
                )
        counts = {}
        for key, spec in self.task_params.items():
            if key not in params:
                raise self._param_error(key, f"is missing; expected {expected}")
            value = params[key]
            if not isinstance(value, torch.Tensor):
                raise self._param_error(key, f"must be a torch.Tensor; got {type(value).__name__}")
            if value.dim() != 1 + len(spec.shape) or tuple(value.shape[1:]) != spec.shape:
                shape = (
                    "(n, " + ", ".join(str(d) for d in spec.shape) + ")" if spec.shape else "(n,)"
                )
                raise self._param_error(key, f"must have shape {shape}; got {tuple(value.shape)}")
            counts[key] = value.shape[0]
        if len(set(counts.values())) != 1 or 0 in counts.values():
            got = ", ".join(f"{k}: {v}" for k, v in counts.items())
            raise TaskParameterError(
                f"{self.name}: task parameters must share one positive number of tasks; got {got}"
            )
        return next(iter(counts.values()))

    # -- rollouts ---------------------------------------------------------------------------

    def reset(
        self, params: Mapping[str, torch.Tensor], num_episodes: int = 1, seed: Seed | None = None
    ) -> tuple[State, torch.Tensor]:
        """Start ``num_episodes`` episodes of every task in ``params``.

        Args:
            params: task parameters from ``sample_tasks`` / ``test_tasks`` (T tasks).
            num_episodes: episodes per task (E).
            seed: int or ``torch.Generator`` for the reset noise; None draws fresh entropy.

        Returns:
            ``(state, obs)`` with ``obs`` of shape ``(T, E, *obs_shape)``, float32.
        """
        n = self._check_structure(params)
        if isinstance(num_episodes, bool) or not isinstance(num_episodes, int) or num_episodes < 1:
            raise ValueError(
                f"{self.name}: num_episodes must be a positive int; got {num_episodes!r}"
            )
        tasks = torch.arange(n, device=self.device, dtype=torch.int64)
        episodes = torch.arange(num_episodes, device=self.device, dtype=torch.int64)
        return self._start(params, _rng.slot_keys(self._root_key(seed), tasks, episodes))

    def _root_key(self, seed: Seed | None) -> int | torch.Tensor:
        if isinstance(seed, torch.Generator):
            key = torch.randint(0, 2**32, (), generator=seed, device=seed.device)
            return key.to(self.device)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"{self.name}: seed must be a non-negative int; got {seed!r}")
        return _rng.key_from_seed(seed)

    def _start(
        self, params: Mapping[str, torch.Tensor], keys: torch.Tensor
    ) -> tuple[State, torch.Tensor]:
        """Reset with explicit per-slot keys (shared by ``reset`` and the single-task view)."""
        task = {f"task.{k}": v.to(self.device).unsqueeze(1) for k, v in params.items()}
        dynamic, obs = self._reset(task, keys)
        state: State = {
            **task,
            **dynamic,
            "t": torch.zeros((), dtype=torch.int64, device=self.device),
            "done": torch.zeros(keys.shape, dtype=torch.bool, device=self.device),
            "obs": obs,
            "key": keys,
        }
        return state, obs

    def step(
        self, state: State, action: torch.Tensor
    ) -> tuple[State, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Advance every slot by one step; see the class docstring for absorbing semantics."""
        done = state["done"]
        action = self._check_action(action, done.shape)
        dynamic, obs, reward, terminated, info = self._step(state, action)
        new = dict(state)
        frozen_obs = torch.where(_expand(done, obs), state["obs"], obs)
        for k, v in dynamic.items():  # a field that is the observation is frozen only once
            new[k] = frozen_obs if v is obs else torch.where(_expand(done, v), state[k], v)
        obs = frozen_obs
        reward = reward.masked_fill(done, 0.0)
        terminated = done | terminated
        t = state["t"] + 1
        truncated = torch.ge(t.expand(done.shape), self.horizon)
        new.update(t=t, done=terminated, obs=obs)
        return new, obs, reward, terminated, truncated, info

    def _check_action(self, action: torch.Tensor, batch: torch.Size) -> torch.Tensor:
        space = self.single_action_space
        if not isinstance(action, torch.Tensor):
            action = torch.as_tensor(np.asarray(action), device=self.device)
        if isinstance(space, spaces.Discrete):
            if tuple(action.shape) != tuple(batch) or action.is_floating_point():
                raise ValueError(
                    f"{self.name}: actions must be an integer tensor of shape {tuple(batch)}; "
                    f"got {action.dtype} of shape {tuple(action.shape)}"
                )
            return action.to(self.device, torch.int64)
        want = (*batch, *space.shape)
        if tuple(action.shape) != want:
            raise ValueError(
                f"{self.name}: actions must have shape {want}; got {tuple(action.shape)}"
            )
        return action.to(self.device, torch.float32)

    @abc.abstractmethod
    def _reset(self, task: State, keys: torch.Tensor) -> tuple[State, torch.Tensor]:
        """Return the dynamic state fields and the first observation for every slot.

        ``task`` holds the ``"task.<name>"`` tensors of shape ``(T, 1, ...)``; ``keys`` is the
        ``(T, E)`` int64 noise keys (draw with ``_rng.uniform(keys, _rng.RESET_COUNTER, n)``).
        """

    @abc.abstractmethod
    def _step(
        self, state: State, action: torch.Tensor
    ) -> tuple[State, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Return ``(dynamic, obs, reward, terminated, info)`` as if no slot were done.

        The base class freezes finished slots, zeroes their reward and sets ``truncated``.
        Step noise: ``_rng.uniform(state["key"], state["t"], n)``.
        """

    # -- single-instance view ---------------------------------------------------------------

    def single_env(
        self, params: Mapping[str, torch.Tensor], slot: tuple[int, int] = (0, 0)
    ) -> gym.Env:
        """A gymnasium ``Env`` running one task: the reference for the batched stepping.

        Args:
            params: one task, either with a leading dimension of 1 or without one.
            slot: the ``(task, episode)`` slot of a batched ``reset`` whose noise this env
                reproduces when reset with the same seed.

        Returns:
            An env whose ``reset(seed=s)`` and ``step`` match slot ``slot`` of
            ``reset(..., seed=s)`` step for step; it ends episodes at ``horizon``.
        """
        return SingleTaskEnv(self, params, slot)


def _expand(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """View a ``(T, E)`` mask with trailing singleton dims so it broadcasts against ``like``."""
    return mask.reshape(mask.shape + (1,) * (like.dim() - mask.dim()))
