"""Conformance checks for task families, in the manner of gymnasium's ``check_env``.

``check_task_family(family)`` chains the small ``check_*`` functions below; each raises an
``AssertionError`` that says what was expected and what was found. Run it in the tests of any
new family (the project's own tests run it over every registered family).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from gymnasium import spaces

from autometa.tasks.base import TaskFamily

__all__ = [
    "check_absorbing",
    "check_determinism",
    "check_reset",
    "check_rollout",
    "check_single_env",
    "check_spaces",
    "check_task_family",
    "check_tasks",
    "random_actions",
]

Params = Mapping[str, torch.Tensor]


def _fail(family: TaskFamily, message: str) -> AssertionError:
    return AssertionError(f"{family.name}: {message}")


def random_actions(
    family: TaskFamily, num_tasks: int, num_episodes: int, steps: int, seed: int
) -> torch.Tensor:
    """Uniform actions from the action space, shape ``(steps, T, E, *act_shape)``."""
    gen = torch.Generator("cpu").manual_seed(seed)
    space = family.single_action_space
    if isinstance(space, spaces.Discrete):
        high = int(space.n) + int(space.start)
        a = torch.randint(int(space.start), high, (steps, num_tasks, num_episodes), generator=gen)
    else:
        low, high = torch.as_tensor(space.low), torch.as_tensor(space.high)
        u = torch.rand((steps, num_tasks, num_episodes, *space.shape), generator=gen)
        a = low + (high - low) * u
    return a.to(family.device)


def check_spaces(family: TaskFamily) -> None:
    """Name, device, horizon and spaces have the documented types."""
    if not (isinstance(family.name, str) and family.name):
        raise _fail(family, f"name must be a non-empty str; got {family.name!r}")
    if not isinstance(family.device, torch.device):
        raise _fail(family, f"device must be a torch.device; got {type(family.device).__name__}")
    if not (isinstance(family.horizon, int) and family.horizon >= 1):
        raise _fail(family, f"horizon must be a positive int; got {family.horizon!r}")
    obs = family.single_observation_space
    if not (isinstance(obs, spaces.Box) and obs.dtype == np.float32):
        raise _fail(family, f"single_observation_space must be a float32 Box; got {obs}")
    act = family.single_action_space
    if not (
        isinstance(act, spaces.Discrete)
        or (isinstance(act, spaces.Box) and act.dtype == np.float32)
    ):
        raise _fail(family, f"single_action_space must be a float32 Box or Discrete; got {act}")


def check_tasks(family: TaskFamily, num_tasks: int, seed: int) -> None:
    """Sampled tasks: keys, leading dim, device, validity, seeding, train/test streams apart."""
    params = family.sample_tasks(num_tasks, seed)
    if set(params) != set(family.task_params):
        raise _fail(
            family,
            f"sample_tasks keys {sorted(params)} != task_params {sorted(family.task_params)}",
        )
    for key, value in params.items():
        if value.shape[0] != num_tasks or value.device != family.device:
            raise _fail(
                family,
                f"task parameter {key!r} has shape {tuple(value.shape)} on "
                f"{value.device}; expected leading dim {num_tasks} on {family.device}",
            )
    family.validate_tasks(params)
    family.validate_tasks(family.test_tasks(num_tasks, seed))
    if not _same(params, family.sample_tasks(num_tasks, seed)):
        raise _fail(family, "sample_tasks with the same seed gave different tasks")
    if _same(params, family.test_tasks(num_tasks, seed)):
        raise _fail(family, "test_tasks gave the training tasks of the same seed")


def check_reset(family: TaskFamily, params: Params, num_episodes: int, seed: int) -> None:
    """Reset returns a dict of tensors and ``(T, E, *obs_shape)`` float32 observations in space."""
    state, obs = family.reset(params, num_episodes=num_episodes, seed=seed)
    num_tasks = next(iter(params.values())).shape[0]
    _check_obs(family, obs, num_tasks, num_episodes)
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise _fail(family, f"state must hold only tensors; {bad} are not")


def _check_obs(family: TaskFamily, obs: torch.Tensor, num_tasks: int, num_episodes: int) -> None:
    space = family.single_observation_space
    want = (num_tasks, num_episodes, *space.shape)
    if tuple(obs.shape) != want or obs.dtype != torch.float32 or obs.device != family.device:
        raise _fail(
            family,
            f"observations must be float32 {want} on {family.device}; "
            f"got {obs.dtype} {tuple(obs.shape)} on {obs.device}",
        )
    flat = obs.detach().cpu().numpy().reshape(-1, *space.shape)
    outside = [i for i, o in enumerate(flat) if not space.contains(o)]
    if outside:
        raise _fail(family, f"observation {flat[outside[0]].tolist()} is outside {space}")


def check_rollout(
    family: TaskFamily, params: Params, num_episodes: int, seed: int
) -> list[tuple[torch.Tensor, ...]]:
    """Step ``horizon`` times: shapes, dtypes, observations in space, inputs left unchanged,
    ``truncated`` exactly from step ``horizon``. Returns ``(obs, reward, terminated,
    truncated)`` per step (the reset observation first, with empty other entries)."""
    num_tasks = next(iter(params.values())).shape[0]
    batch = (num_tasks, num_episodes)
    actions = random_actions(family, num_tasks, num_episodes, family.horizon, seed)
    state, obs = family.reset(params, num_episodes=num_episodes, seed=seed)
    trace: list[tuple[torch.Tensor, ...]] = [(obs,)]
    for t in range(family.horizon):
        before = {k: v.clone() for k, v in state.items()}
        state_new, obs, reward, terminated, truncated, info = family.step(state, actions[t])
        if family.native and not _same(before, state):
            raise _fail(family, "step changed its input state in place")
        state = state_new
        _check_obs(family, obs, *batch)
        for label, value, dtype in [
            ("reward", reward, torch.float32),
            ("terminated", terminated, torch.bool),
            ("truncated", truncated, torch.bool),
        ]:
            if tuple(value.shape) != batch or value.dtype != dtype:
                raise _fail(
                    family,
                    f"{label} must be {dtype} of shape {batch}; "
                    f"got {value.dtype} {tuple(value.shape)}",
                )
        if not isinstance(info, dict):
            raise _fail(family, f"info must be a dict; got {type(info).__name__}")
        if bool(truncated.any()) != (t + 1 >= family.horizon) or not bool(
            torch.isfinite(reward).all()
        ):
            raise _fail(
                family,
                f"at step {t + 1} of {family.horizon}: truncated={truncated.tolist()}, "
                "rewards finite: " + str(bool(torch.isfinite(reward).all())),
            )
        trace.append((obs, reward, terminated, truncated))
    if not bool(trace[-1][3].all()):
        raise _fail(family, f"truncated must be True everywhere at step {family.horizon}")
    return trace


def check_absorbing(family: TaskFamily, trace: list[tuple[torch.Tensor, ...]]) -> None:
    """After a slot terminates: reward 0, ``terminated`` stays True, observation unchanged."""
    for t in range(2, len(trace)):
        prev_obs, _, dead, _ = trace[t - 1]
        obs, reward, term, _ = trace[t]
        if bool((dead & ~term).any()):
            raise _fail(family, f"a terminated slot came back to life at step {t}")
        if bool((reward[dead] != 0).any()):
            raise _fail(family, f"a terminated slot got a non-zero reward at step {t}")
        if not torch.equal(obs[dead], prev_obs[dead]):
            raise _fail(family, f"a terminated slot's observation changed at step {t}")


def check_determinism(family: TaskFamily, params: Params, num_episodes: int, seed: int) -> None:
    """Two rollouts with the same seed and actions are identical."""
    first = check_rollout(family, params, num_episodes, seed)
    second = check_rollout(family, params, num_episodes, seed)
    for t, (a, b) in enumerate(zip(first, second)):
        if not all(torch.equal(x, y) for x, y in zip(a, b)):
            raise _fail(family, f"two rollouts with seed {seed} differ at step {t}")


def check_single_env(
    family: TaskFamily,
    params: Params,
    num_episodes: int,
    seed: int,
    slots: tuple[tuple[int, int], ...] = ((0, 0), (-1, -1)),
) -> None:
    """The single-instance view of slot ``(i, j)`` reproduces the batch step for step."""
    num_tasks = next(iter(params.values())).shape[0]
    actions = random_actions(family, num_tasks, num_episodes, family.horizon, seed)
    state, obs = family.reset(params, num_episodes=num_episodes, seed=seed)
    batch = [(obs, None, None, None)]
    for t in range(family.horizon):
        state, obs, reward, terminated, truncated, _ = family.step(state, actions[t])
        batch.append((obs, reward, terminated, truncated))
    for i, j in slots:
        i, j = i % num_tasks, j % num_episodes
        env = family.single_env({k: v[i] for k, v in params.items()}, slot=(i, j))
        obs, _ = env.reset(seed=seed)
        _expect_equal(family, (i, j), 0, "observation", obs, batch[0][0][i, j])
        for t in range(family.horizon):
            a = actions[t, i, j].cpu().numpy()
            obs, reward, term, trunc, _ = env.step(int(a) if a.ndim == 0 else a)
            b_obs, b_reward, b_term, b_trunc = batch[t + 1]
            _expect_equal(family, (i, j), t + 1, "observation", obs, b_obs[i, j])
            _expect_equal(family, (i, j), t + 1, "reward", reward, b_reward[i, j])
            _expect_equal(family, (i, j), t + 1, "terminated", term, b_term[i, j])
            _expect_equal(family, (i, j), t + 1, "truncated", trunc, b_trunc[i, j])


def _expect_equal(family: TaskFamily, slot, t: int, what: str, single, batched) -> None:
    single = np.asarray(single)
    batched = batched.detach().cpu().numpy()
    if single.shape != batched.shape or not np.array_equal(single, batched):
        raise _fail(
            family,
            f"single env of slot {slot} differs from the batch at step {t}: "
            f"{what} {single.tolist()} != {batched.tolist()}",
        )


def check_task_family(
    family: TaskFamily, *, num_tasks: int = 3, num_episodes: int = 2, seed: int = 0
) -> None:
    """Run every check on ``family``; raise ``AssertionError`` on the first failure."""
    check_spaces(family)
    check_tasks(family, num_tasks, seed)
    params = family.sample_tasks(num_tasks, seed)
    check_reset(family, params, num_episodes, seed)
    trace = check_rollout(family, params, num_episodes, seed)
    check_absorbing(family, trace)
    check_determinism(family, params, num_episodes, seed)
    if family.native:
        check_single_env(family, params, num_episodes, seed)


def _same(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> bool:
    return set(a) == set(b) and all(
        a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a
    )
