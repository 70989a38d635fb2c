"""Graph -> torch policy: compile a candidate graph once into a plan, then run it.

The policy is functional (no in-place updates, no buffers written in ``forward``) so that
``torch.func.functional_call``, ``vmap`` and ``grad`` can batch it over tasks.
"""

from __future__ import annotations

import math

import gymnasium as gym
import networkx as nx
import torch
import torch.nn.functional as F
from torch import nn

from autometa.errors import BuildError, GraphValidationError
from autometa.graph import INPUT, OUTPUT
from autometa.graph._plan import (
    PlanStep,
    compile_plan,
    count_macs,
    count_params,
    plan_macs,
)
from autometa.ops import OPS

__all__ = [
    "GraphPolicy",
    "PlanStep",
    "build_policy",
    "compile_plan",
    "count_macs",
    "count_params",
    "space_dims",
]


def _fit(x: torch.Tensor, width: int) -> torch.Tensor:
    """Zero-pad or truncate the last dimension of ``x`` to ``width`` (out of place)."""
    have = x.shape[-1]
    if have == width:
        return x
    return F.pad(x, (0, width - have)) if have < width else x[..., :width]


def space_dims(observation_space: gym.Space, action_space: gym.Space) -> tuple[int, int, bool]:
    """``(obs_dim, act_dim, discrete)`` for the spaces a policy can be built for."""
    if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
        raise BuildError(
            f"policies take flat Box observations, got {observation_space}; "
            "flatten or one-hot the observation in the task family"
        )
    if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
        return int(observation_space.shape[0]), int(action_space.shape[0]), False
    if isinstance(action_space, gym.spaces.Discrete):
        return int(observation_space.shape[0]), int(action_space.n), True
    raise BuildError(f"policies act in a flat Box or a Discrete space, got {action_space}")


class GraphPolicy(nn.Module):
    """A stochastic policy whose body is a candidate graph.

    ``forward(obs)`` returns ``(mean, log_std)`` for continuous actions (a diagonal Gaussian
    with a learned state-independent log-std, as in Finn et al. 2017's reference code) or
    ``(logits,)`` for discrete actions. ``distribution(obs)`` wraps them.
    """

    def __init__(
        self,
        graph: nx.DiGraph,
        obs_dim: int,
        act_dim: int,
        discrete: bool = False,
        init_std: float = 1.0,
    ) -> None:
        super().__init__()
        self.obs_dim, self.act_dim, self.discrete = int(obs_dim), int(act_dim), bool(discrete)
        self.steps, self.feature_dim = compile_plan(graph, self.obs_dim)
        self.op_names = {n: a["op"] for n, a in graph.nodes(data=True) if n not in (INPUT, OUTPUT)}
        self.layers = nn.ModuleList()
        self._program: list[tuple] = []
        for step in self.steps:
            if step.node == OUTPUT:
                module: nn.Module = nn.Identity()
            else:
                attrs = graph.nodes[step.node]
                try:
                    module = OPS.get(attrs["op"]).build(step.in_width, step.out_width)
                except Exception as exc:
                    raise BuildError(f"op {attrs['op']!r} of node {step.node!r}: {exc}") from exc
            self.layers.append(module)
            single = len(step.inputs) == 1 and not any(step.pads)
            self._program.append((module, step.inputs, step.merge, step.pads, single, step, ()))
        self._release_dead_values()
        self.head = nn.Linear(self.feature_dim, self.act_dim)
        if not self.discrete:
            self.log_std = nn.Parameter(torch.full((self.act_dim,), math.log(init_std)))

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """Run the graph body on ``obs[..., obs_dim]``; return the head's input features."""
        values = [obs]
        for module, inputs, merge, pads, single, step, dead in self._program:
            if single:
                x = values[inputs[0]]
            elif merge == "concat":
                x = torch.cat([values[i] for i in inputs], dim=-1)
            else:
                x = values[inputs[0]] if not pads[0] else F.pad(values[inputs[0]], (0, pads[0]))
                for i, pad in zip(inputs[1:], pads[1:]):
                    x = x + (F.pad(values[i], (0, pad)) if pad else values[i])
            y = module(x)
            if step.residual:
                y = y + _fit(x, step.out_width)
            values.append(y)
            for i in dead:
                values[i] = None
        return values[-1]

    def _release_dead_values(self) -> None:
        """Note after which step each value is last read, so ``features`` can drop it.

        Dropping dead activations lets the allocator reuse their memory at once, as a
        hand-written ``nn.Sequential`` does; at large batches that is measurably faster.
        """
        last_use: dict[int, int] = {}
        for k, entry in enumerate(self._program):
            for i in entry[1]:
                last_use[i] = k
        dead: dict[int, list[int]] = {}
        for i, k in last_use.items():
            dead.setdefault(k, []).append(i)
        self._program = [
            (*e[:6], tuple(sorted(dead.get(k, ())))) for k, e in enumerate(self._program)
        ]

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Distribution parameters: ``(mean, log_std)`` (Box) or ``(logits,)`` (Discrete)."""
        out = self.head(self.features(obs))
        if self.discrete:
            return (out,)
        return out, self.log_std.expand_as(out)

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Distribution:
        """The action distribution at ``obs`` (independent Normal or Categorical)."""
        params = self(obs)
        if self.discrete:
            return torch.distributions.Categorical(logits=params[0])
        mean, log_std = params
        return torch.distributions.Independent(torch.distributions.Normal(mean, log_std.exp()), 1)

    @property
    def num_params(self) -> int:
        """Number of trainable scalars (body, head and log-std)."""
        return sum(p.numel() for p in self.parameters())

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one forward on a single observation."""
        return plan_macs(self.op_names, self.steps, self.feature_dim, self.act_dim)


def _init_weights(policy: GraphPolicy, generator: torch.Generator | None) -> None:
    """Xavier-uniform weights and zero biases for every dense layer (pytorch-maml-rl's init)."""
    with torch.no_grad():
        for module in policy.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight, generator=generator)
                nn.init.zeros_(module.bias)


def build_policy(
    graph: nx.DiGraph,
    observation_space: gym.Space,
    action_space: gym.Space,
    *,
    seed: int | None = None,
    init_std: float = 1.0,
    device: str | torch.device | None = None,
) -> GraphPolicy:
    """Compile ``graph`` into a :class:`GraphPolicy` for the given gymnasium spaces.

    Args:
        graph: a candidate graph (see ``docs/design.md``).
        observation_space: a flat ``Box``.
        action_space: a flat ``Box`` (Gaussian head) or ``Discrete`` (categorical head).
        seed: seeds the weight initialisation; ``None`` uses torch's global generator.
        init_std: initial standard deviation of the Gaussian head (1.0 in Finn et al. 2017).
        device: where the parameters live.

    Raises:
        BuildError: for unsupported spaces, or an op that fails to build.
        GraphValidationError: for a graph that breaks the structural rules.
    """
    obs_dim, act_dim, discrete = space_dims(observation_space, action_space)
    policy = _build(graph, obs_dim, act_dim, discrete, init_std)
    generator = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    _init_weights(policy, generator)
    return policy.to(device) if device is not None else policy


def _build(graph: nx.DiGraph, obs_dim: int, act_dim: int, discrete: bool, init_std: float):
    if not isinstance(graph, nx.DiGraph):
        raise GraphValidationError(f"expected a networkx.DiGraph, got {type(graph).__name__}")
    return GraphPolicy(graph, obs_dim, act_dim, discrete, init_std)
