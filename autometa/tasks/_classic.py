"""CartPole and Pendulum with sampled physics, stepped in torch.

The dynamics are those of gymnasium's ``CartPole-v1`` and ``Pendulum-v1`` (same equations,
integrator, time step, thresholds and rewards); each task draws its own physical constants.
The parameter ranges are this project's choice: an interval around gymnasium's defaults wide
enough that a single fixed policy does not solve every task.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from autometa.tasks import _rng
from autometa.tasks.base import State, TaskFamily, TaskParam

__all__ = ["CartPole", "Pendulum"]

_Range = tuple[float, float]


class _SampledPhysics(TaskFamily):
    """Shared plumbing: every task parameter is a positive scalar drawn uniformly in a range."""

    ranges: dict[str, _Range]

    def _set_ranges(self, ranges: dict[str, _Range]) -> None:
        for option, (low, high) in ranges.items():
            if not (0 < low <= high < math.inf):
                raise self._option_error(
                    f"{option}_range", "a (low, high) pair with 0 < low <= high", (low, high)
                )
        self.ranges = {k: (float(lo), float(hi)) for k, (lo, hi) in ranges.items()}
        self.task_params = {k: TaskParam((), 0.0, math.inf, open_low=True) for k in ranges}

    def _sample(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return {
            key: low + (high - low) * torch.rand(n, generator=generator)
            for key, (low, high) in self.ranges.items()
        }


class CartPole(_SampledPhysics):
    """Balance a pole on a cart; each task has its own gravity, masses and pole length.

    Dynamics, time step (0.02 s, Euler), push force (10 N), failure thresholds (|x| > 2.4,
    |theta| > 12 degrees), reward (+1 per step, including the failing one) and reset noise
    (U(-0.05, 0.05) on all four state variables) are gymnasium's ``CartPole-v1``
    (Barto, Sutton & Anderson 1983). Horizon 200, the limit of ``CartPole-v0``.

    Task parameters (defaults in brackets, sampled uniformly from these ranges):

    - ``gravity`` in [4.9, 14.7] m/s^2 (9.8),
    - ``masscart`` in [0.5, 2.0] kg (1.0),
    - ``masspole`` in [0.05, 0.2] kg (0.1),
    - ``length``, half the pole's length as in gymnasium, in [0.25, 1.0] m (0.5).

    Any positive value is accepted by ``validate_tasks``.

    Args:
        device: where tensors live.
        horizon: steps per episode.
        gravity_range: sampling interval of ``gravity`` (and likewise for the others).
    """

    name = "cartpole"
    force_mag = 10.0
    tau = 0.02
    x_threshold = 2.4
    theta_threshold = 12 * 2 * math.pi / 360

    def __init__(
        self,
        *,
        device: str | torch.device = "cpu",
        horizon: int = 200,
        gravity_range: _Range = (4.9, 14.7),
        masscart_range: _Range = (0.5, 2.0),
        masspole_range: _Range = (0.05, 0.2),
        length_range: _Range = (0.25, 1.0),
    ) -> None:
        super().__init__(device=device, horizon=horizon)
        self._set_ranges(
            {
                "gravity": gravity_range,
                "masscart": masscart_range,
                "masspole": masspole_range,
                "length": length_range,
            }
        )
        high = np.array(
            [2 * self.x_threshold, np.inf, 2 * self.theta_threshold, np.inf], dtype=np.float32
        )
        self.single_observation_space = spaces.Box(-high, high, dtype=np.float32)
        self.single_action_space = spaces.Discrete(2)

    def _reset(self, task: State, keys: torch.Tensor) -> tuple[State, torch.Tensor]:
        x = 0.1 * _rng.uniform(keys, _rng.RESET_COUNTER, 4) - 0.05
        return {"x": x}, x

    def _step(
        self, state: State, action: torch.Tensor
    ) -> tuple[State, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        g, mc, mp, length = (
            state[f"task.{k}"] for k in ("gravity", "masscart", "masspole", "length")
        )
        x, x_dot, theta, theta_dot = state["x"].unbind(-1)
        force = torch.where(action == 1, self.force_mag, -self.force_mag)
        cos, sin = torch.cos(theta), torch.sin(theta)
        total_mass = mp + mc
        polemass_length = mp * length
        temp = (force + polemass_length * theta_dot**2 * sin) / total_mass
        theta_acc = (g * sin - cos * temp) / (length * (4.0 / 3.0 - mp * cos**2 / total_mass))
        x_acc = temp - polemass_length * theta_acc * cos / total_mass
        new = torch.stack(
            [
                x + self.tau * x_dot,
                x_dot + self.tau * x_acc,
                theta + self.tau * theta_dot,
                theta_dot + self.tau * theta_acc,
            ],
            dim=-1,
        )
        failed = (new[..., 0].abs() > self.x_threshold) | (
            new[..., 2].abs() > self.theta_threshold
        )
        reward = torch.ones_like(failed, dtype=torch.float32)
        return {"x": new}, new, reward, failed, {}


class Pendulum(_SampledPhysics):
    """Swing a pendulum up and hold it; each task has its own gravity, mass and length.

    Dynamics (semi-implicit Euler, dt = 0.05 s, speed clipped to 8 rad/s), observation
    ``[cos theta, sin theta, theta_dot]``, torque in [-2, 2] and reward
    ``-(theta^2 + 0.1 theta_dot^2 + 0.001 u^2)`` (angle normalised to [-pi, pi), taken before
    the move) are gymnasium's ``Pendulum-v1``; reset draws theta in U(-pi, pi) and theta_dot
    in U(-1, 1). It never terminates; horizon 200 as in gymnasium.

    Task parameters (defaults in brackets, sampled uniformly from these ranges):

    - ``g`` in [5.0, 15.0] m/s^2 (10.0),
    - ``m`` in [0.5, 1.5] kg (1.0),
    - ``l`` in [0.5, 1.5] m (1.0).

    Any positive value is accepted by ``validate_tasks``.

    Args:
        device: where tensors live.
        horizon: steps per episode.
        g_range: sampling interval of ``g`` (and likewise for ``m``, ``l``).
    """

    name = "pendulum"
    max_speed = 8.0
    max_torque = 2.0
    dt = 0.05

    def __init__(
        self,
        *,
        device: str | torch.device = "cpu",
        horizon: int = 200,
        g_range: _Range = (5.0, 15.0),
        m_range: _Range = (0.5, 1.5),
        l_range: _Range = (0.5, 1.5),
    ) -> None:
        super().__init__(device=device, horizon=horizon)
        self._set_ranges({"g": g_range, "m": m_range, "l": l_range})
        high = np.array([1.0, 1.0, self.max_speed], dtype=np.float32)
        self.single_observation_space = spaces.Box(-high, high, dtype=np.float32)
        self.single_action_space = spaces.Box(
            -self.max_torque, self.max_torque, (1,), dtype=np.float32
        )

    @staticmethod
    def _observe(theta: torch.Tensor, theta_dot: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.cos(theta), torch.sin(theta), theta_dot], dim=-1)

    def _reset(self, task: State, keys: torch.Tensor) -> tuple[State, torch.Tensor]:
        u = _rng.uniform(keys, _rng.RESET_COUNTER, 2)
        theta = math.pi * (2.0 * u[..., 0] - 1.0)
        theta_dot = 2.0 * u[..., 1] - 1.0
        return {"theta": theta, "theta_dot": theta_dot}, self._observe(theta, theta_dot)

    def _step(
        self, state: State, action: torch.Tensor
    ) -> tuple[State, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        g, m, length = state["task.g"], state["task.m"], state["task.l"]
        theta, theta_dot = state["theta"], state["theta_dot"]
        u = torch.clamp(action[..., 0], -self.max_torque, self.max_torque)
        angle = torch.remainder(theta + math.pi, 2 * math.pi) - math.pi
        cost = angle**2 + 0.1 * theta_dot**2 + 0.001 * u**2
        new_dot = (
            theta_dot
            + (3.0 * g / (2.0 * length) * torch.sin(theta) + 3.0 / (m * length**2) * u) * self.dt
        )
        new_dot = torch.clamp(new_dot, -self.max_speed, self.max_speed)
        new_theta = theta + new_dot * self.dt
        terminated = torch.zeros_like(theta, dtype=torch.bool)
        dynamic = {"theta": new_theta, "theta_dot": new_dot}
        return dynamic, self._observe(new_theta, new_dot), -cost, terminated, {}
