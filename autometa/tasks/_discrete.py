"""Bernoulli bandits and random tabular MDPs, the discrete meta-RL tasks of RL^2.

Both follow Duan et al. 2016 (RL^2, §4.1 multi-armed bandits, §4.2 tabular MDPs). There,
a trial is several episodes fed to a recurrent policy; here, as in MAML, each of the E
episodes of a task is a separate rollout, and adaptation happens between batches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from autometa.tasks import _rng
from autometa.tasks.base import State, TaskFamily, TaskParam

__all__ = ["BernoulliBandit", "TabularMDP"]


def _positive_int(family: TaskFamily, option: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise family._option_error(option, f"an int >= {minimum}", value)
    return value


def _one_hot(index: torch.Tensor, size: int) -> torch.Tensor:
    """Float32 one-hot by comparison (no value check, so no host synchronisation on CUDA)."""
    values = torch.arange(size, device=index.device)
    return (index.unsqueeze(-1) == values).to(torch.float32)


class BernoulliBandit(TaskFamily):
    """A k-armed bandit; each task draws every arm's success probability from U[0, 1].

    Pulling arm ``a`` pays 1 with probability ``probs[a]`` and 0 otherwise (Duan et al. 2016,
    §4.1). Defaults: ``arms=5``, ``horizon=10`` pulls per episode, the smallest setting of
    RL^2 (k in {5, 10, 50}, n in {10, 100, 500}) and of pytorch-maml-rl's bandit configs.
    Episodes never terminate early.

    Observation: the constant ``[1.0]`` by default (a feed-forward MAML policy can only learn
    a fixed arm distribution per task). ``observe_last=True`` gives RL^2's inputs instead:
    ``[1, one_hot(previous arm), previous reward]`` (zeros for the arm and reward at reset).

    Args:
        device: where tensors live.
        arms: number of arms k (>= 2).
        horizon: pulls per episode.
        observe_last: observe the previous arm and reward.
    """

    name = "bandit"

    def __init__(
        self,
        *,
        device: str | torch.device = "cpu",
        arms: int = 5,
        horizon: int = 10,
        observe_last: bool = False,
    ) -> None:
        super().__init__(device=device, horizon=horizon)
        self.arms = _positive_int(self, "arms", arms, 2)
        self.observe_last = bool(observe_last)
        self.task_params = {"probs": TaskParam((self.arms,), 0.0, 1.0)}
        size = self.arms + 2 if self.observe_last else 1
        self.single_observation_space = spaces.Box(0.0, 1.0, (size,), np.float32)
        self.single_action_space = spaces.Discrete(self.arms)

    def _sample(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return {"probs": torch.rand((n, self.arms), generator=generator)}

    def _observation(self, arm: torch.Tensor | None, reward: torch.Tensor) -> torch.Tensor:
        one = torch.ones((*reward.shape, 1), dtype=torch.float32, device=self.device)
        if not self.observe_last:
            return one
        if arm is None:
            last = torch.zeros((*reward.shape, self.arms), dtype=torch.float32, device=self.device)
        else:
            last = _one_hot(arm, self.arms)
        return torch.cat([one, last, reward.unsqueeze(-1)], dim=-1)

    def _reset(self, task: State, keys: torch.Tensor) -> tuple[State, torch.Tensor]:
        zero = torch.zeros(keys.shape, dtype=torch.float32, device=self.device)
        return {}, self._observation(None, zero)

    def _step(
        self, state: State, action: torch.Tensor
    ) -> tuple[State, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        probs = state["task.probs"].expand(*action.shape, self.arms)
        p = torch.gather(probs, -1, action.unsqueeze(-1)).squeeze(-1)
        u = _rng.uniform(state["key"], state["t"], 1)[..., 0]
        reward = (u < p).to(torch.float32)
        terminated = torch.zeros_like(action, dtype=torch.bool)
        return {}, self._observation(action, reward), reward, terminated, {}


class TabularMDP(TaskFamily):
    """A random finite MDP per task (Duan et al. 2016, §4.2).

    Each task draws transition probabilities ``P(s' | s, a)`` from a flat Dirichlet (all
    concentrations 1) and mean rewards ``mu(s, a)`` from N(1, 1); a step pays
    ``mu(s, a) + N(0, 1)`` noise. Every episode starts in state 0 ("an episode always starts
    on the first state"). Defaults as in RL^2 and pytorch-maml-rl's ``TabularMDP-v0``:
    10 states, 5 actions, 10 steps per episode. Observation: one-hot of the current state.
    Episodes never terminate early.

    Task parameters: ``transitions`` (n, S, A, S), rows non-negative and summing to 1;
    ``reward_means`` (n, S, A), any finite value.

    Args:
        device: where tensors live.
        states: number of states S (>= 2).
        actions: number of actions A (>= 2).
        horizon: steps per episode.
    """

    name = "tabular-mdp"

    def __init__(
        self,
        *,
        device: str | torch.device = "cpu",
        states: int = 10,
        actions: int = 5,
        horizon: int = 10,
    ) -> None:
        super().__init__(device=device, horizon=horizon)
        self.states = _positive_int(self, "states", states, 2)
        self.actions = _positive_int(self, "actions", actions, 2)
        shape = (self.states, self.actions)
        self.task_params = {
            "transitions": TaskParam((*shape, self.states), 0.0, 1.0),
            "reward_means": TaskParam(shape),
        }
        self.single_observation_space = spaces.Box(0.0, 1.0, (self.states,), np.float32)
        self.single_action_space = spaces.Discrete(self.actions)

    def _sample(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        shape = (n, self.states, self.actions)
        # a flat Dirichlet is normalised i.i.d. Exp(1) draws
        exp = -torch.log1p(-torch.rand((*shape, self.states), generator=generator))
        return {
            "transitions": exp / exp.sum(-1, keepdim=True),
            "reward_means": 1.0 + torch.randn(shape, generator=generator),
        }

    def _validate_more(self, params: Mapping[str, torch.Tensor]) -> None:
        sums = params["transitions"].detach().to("cpu", torch.float64).sum(-1)
        bad = (sums - 1.0).abs() > 1e-4
        if bool(bad.any()):
            task, s, a = (int(i) for i in bad.nonzero()[0])
            raise self._param_error(
                "transitions",
                f"rows must sum to 1; got {float(sums[task, s, a]):g} "
                f"(task {task}, state {s}, action {a})",
            )

    def _reset(self, task: State, keys: torch.Tensor) -> tuple[State, torch.Tensor]:
        s = torch.zeros(keys.shape, dtype=torch.int64, device=self.device)
        return {"s": s}, _one_hot(s, self.states)

    def _step(
        self, state: State, action: torch.Tensor
    ) -> tuple[State, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        s = state["s"]
        task = torch.arange(s.shape[0], device=self.device).unsqueeze(1)
        p = state["task.transitions"][:, 0][task, s, action]  # (T, E, S)
        mean = state["task.reward_means"][:, 0][task, s, action]
        u = _rng.uniform(state["key"], state["t"], 3)
        # inverse-CDF draw of the next state; clamp guards against rounding in the last bin
        below = (torch.cumsum(p, dim=-1) <= u[..., :1]).sum(-1)
        s_next = torch.clamp(below, max=self.states - 1)
        reward = mean + _rng.box_muller(u[..., 1], u[..., 2])
        terminated = torch.zeros_like(s, dtype=torch.bool)
        return {"s": s_next}, _one_hot(s_next, self.states), reward, terminated, {}
