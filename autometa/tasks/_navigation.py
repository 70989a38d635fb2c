"""2D navigation (Finn et al. 2017, §5.3): a point agent moves towards a hidden goal."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from autometa.tasks.base import State, TaskFamily, TaskParam

__all__ = ["Navigation2D", "SparseNavigation2D"]


class Navigation2D(TaskFamily):
    """Point robot in the plane; each task is a goal position (Finn et al. 2017, §5.3).

    Follows the original code (``maml_examples/point_env_randgoal.py`` in ``cbfinn/maml_rl``;
    the differences between the sources are numbered in ``docs/references.md``):

    - start at (0, 0); observation = position (``oracle=True`` appends the goal, 4-D);
    - the policy acts in ``[-1, 1]^2``; the env moves by
      ``clip(action_scale * action, -max_speed, max_speed)``. The defaults
      (``action_scale=0.1``, ``max_speed=0.1``) are the original code's rescaling of [-1, 1]
      onto +-0.1; ``action_scale=1.0`` gives pytorch-maml-rl's raw clipped velocities
      (difference #3), and the action space becomes ``[-max_speed, max_speed] / action_scale``;
    - reward = minus the Euclidean distance to the goal after the move (the code's definition;
      the paper says "squared", difference #1);
    - terminated when ``|dx| < goal_tolerance`` and ``|dy| < goal_tolerance`` (a box, as in the
      code; difference #2); horizon 100;
    - goals uniform in ``[goal_low, goal_high]^2 = [-0.5, 0.5]^2``; goals outside that arena
      are rejected by ``validate_tasks``.

    Args:
        device: where tensors live.
        horizon: steps per episode.
        goal_low: lower corner of the goal arena.
        goal_high: upper corner of the goal arena.
        action_scale: velocity per unit of action.
        max_speed: largest velocity per coordinate and step.
        goal_tolerance: per-coordinate distance that counts as reaching the goal.
        oracle: observe the goal as well (the paper's oracle baseline).
    """

    name = "navigation2d"

    def __init__(
        self,
        *,
        device: str | torch.device = "cpu",
        horizon: int = 100,
        goal_low: float = -0.5,
        goal_high: float = 0.5,
        action_scale: float = 0.1,
        max_speed: float = 0.1,
        goal_tolerance: float = 0.01,
        oracle: bool = False,
    ) -> None:
        super().__init__(device=device, horizon=horizon)
        if not goal_low < goal_high:
            raise self._option_error("goal_high", f"greater than goal_low={goal_low!r}", goal_high)
        for option, value in [
            ("action_scale", action_scale),
            ("max_speed", max_speed),
            ("goal_tolerance", goal_tolerance),
        ]:
            if not (isinstance(value, int | float) and np.isfinite(value) and value > 0):
                raise self._option_error(option, "a positive number", value)
        self.goal_low, self.goal_high = float(goal_low), float(goal_high)
        self.action_scale, self.max_speed = float(action_scale), float(max_speed)
        self.goal_tolerance, self.oracle = float(goal_tolerance), bool(oracle)
        self.task_params = {"goal": TaskParam((2,), self.goal_low, self.goal_high)}
        bound = np.float32(self.max_speed / self.action_scale)
        self.single_action_space = spaces.Box(-bound, bound, (2,), np.float32)
        reach = 1.01 * horizon * self.max_speed  # farthest reach, plus float32 rounding slack
        low = [-reach, -reach] + ([self.goal_low] * 2 if oracle else [])
        high = [reach, reach] + ([self.goal_high] * 2 if oracle else [])
        self.single_observation_space = spaces.Box(
            np.array(low, np.float32), np.array(high, np.float32), dtype=np.float32
        )

    def _sample(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        width = self.goal_high - self.goal_low
        return {"goal": self.goal_low + width * torch.rand((n, 2), generator=generator)}

    def _observe(self, position: torch.Tensor, state: State) -> torch.Tensor:
        if not self.oracle:
            return position
        return torch.cat([position, state["task.goal"].expand_as(position)], dim=-1)

    def _reset(self, task: State, keys: torch.Tensor) -> tuple[State, torch.Tensor]:
        position = torch.zeros((*keys.shape, 2), dtype=torch.float32, device=self.device)
        return {"position": position}, self._observe(position, task)

    def _step(
        self, state: State, action: torch.Tensor
    ) -> tuple[State, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        # clip(scale * a, -max_speed, max_speed) == scale * clip(a, -bound, bound)
        bound = self.max_speed / self.action_scale
        position = torch.add(
            state["position"], action.clamp(-bound, bound), alpha=self.action_scale
        )
        offset = position - state["task.goal"]
        dx, dy = offset.unbind(-1)
        distance = torch.hypot(dx, dy)
        terminated = torch.maximum(dx.abs(), dy.abs()) < self.goal_tolerance
        return (
            {"position": position},
            self._observe(position, state),
            self._reward(distance),
            terminated,
            {},
        )

    def _reward(self, distance: torch.Tensor) -> torch.Tensor:
        return -distance


class SparseNavigation2D(Navigation2D):
    """2D navigation with a reward only near the goal: ``1 - d`` when ``d <= radius``, else 0.

    The shape of the reward (dense reward plus one inside the goal radius, zero outside, with
    ``radius = 0.2``) follows the sparse point robot of Rakelly et al. 2019 (PEARL); goals,
    dynamics, termination and horizon are those of :class:`Navigation2D`.

    Args:
        radius: distance to the goal within which reward is given.
        **options: as for :class:`Navigation2D`.
    """

    name = "navigation2d-sparse"

    def __init__(self, *, radius: float = 0.2, **options: Any) -> None:
        super().__init__(**options)
        if not (isinstance(radius, int | float) and np.isfinite(radius) and radius > 0):
            raise self._option_error("radius", "a positive number", radius)
        self.radius = float(radius)

    def _reward(self, distance: torch.Tensor) -> torch.Tensor:
        return torch.where(distance <= self.radius, 1.0 - distance, torch.zeros_like(distance))
