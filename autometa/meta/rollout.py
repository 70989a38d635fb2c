"""Batched rollouts: P members x T tasks x E episodes stepped as one tensor program.

Every tensor of the algorithm has a leading *member* axis P: a member is one (candidate,
seed) pair with its own meta-parameters and random streams, and a single candidate is a
population of one. The members' tasks are concatenated into one ``(P*T, E)`` batch of the
family, so the environment steps once per time step for everyone; each cohort's policy runs
as ``vmap`` over its members' parameters off the CPU and member by member on a CPU
(``autometa.meta._kernel_size.one_member_at_a_time``). Within a member, parameters are either
shared by its tasks or stacked per task (a task dimension after the member one, once adapted).

Member ``p`` draws its reset noise from ``seeds[p]`` and its action noise from
``generators[p]``, and nothing mixes values across members, so its numbers do not depend on
who it runs with (the tests compare a member of eight with the same member alone, bitwise).
The only Python loop is over the ``horizon`` time steps; nothing here synchronises with the
host. On CUDA the time loop of a native family is replayed as one CUDA graph
(``autometa.meta.cuda_graphs``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, NamedTuple

import torch
from gymnasium import spaces
from torch.func import functional_call, vmap

from autometa.meta._kernel_size import one_member_at_a_time
from autometa.meta.cuda_graphs import captured
from autometa.policy import GraphPolicy

if TYPE_CHECKING:
    from autometa.meta.members import Cohort

__all__ = [
    "Batch",
    "Outputs",
    "Params",
    "action_noise",
    "cat_tasks",
    "kl_divergence",
    "log_prob",
    "merge_members",
    "policy_outputs",
    "rollout",
    "run_steps",
    "sample_actions",
    "split_members",
]

Params = dict[str, torch.Tensor]
Outputs = tuple[torch.Tensor, ...]
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


class Batch(NamedTuple):
    """Episodes of T tasks x E episodes x H steps (a pytree, so ``vmap`` can split it by task);
    a population's batch has the member axis first, ``(P, T, E, H, ...)``.

    Attributes:
        obs: observations before each action, ``(T, E, H, obs_dim)``.
        actions: ``(T, E, H, act_dim)`` float (Box) or ``(T, E, H)`` int64 (Discrete).
        rewards: ``(T, E, H)``; zero after an episode ended.
        alive: ``(T, E, H)`` float, 1 where the step was taken before the episode ended.
        log_probs: log-probability of each action under the sampling policy (no gradient).
    """

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    alive: torch.Tensor
    log_probs: torch.Tensor

    def episode_returns(self) -> torch.Tensor:
        """Undiscounted return of every episode, ``(T, E)``."""
        return (self.rewards * self.alive).sum(-1)

    @property
    def env_steps(self) -> int:
        """Transitions stepped to collect this batch (T x E x H; host metadata only)."""
        return int(self.rewards.numel())


def policy_outputs(
    policy: GraphPolicy, params: Params, obs: torch.Tensor, stacked: bool
) -> Outputs:
    """Distribution parameters of ``policy`` at ``obs[T, ...]``.

    Args:
        policy: the module whose forward is evaluated functionally.
        params: shared parameters, or per-task parameters with a leading T when ``stacked``.
        obs: observations with the task dimension first.
        stacked: whether ``params`` carry a task dimension.

    Returns:
        ``(mean, log_std)`` for a Gaussian policy, ``(logits,)`` for a categorical one.
    """
    if not stacked:
        return functional_call(policy, params, (obs,))
    return vmap(lambda p, o: functional_call(policy, p, (o,)))(params, obs)


def log_prob(outputs: Outputs, actions: torch.Tensor) -> torch.Tensor:
    """Log-likelihood of ``actions`` (summed over action dimensions) under ``outputs``."""
    if len(outputs) == 1:
        logits = torch.log_softmax(outputs[0], dim=-1)
        return torch.gather(logits, -1, actions.unsqueeze(-1)).squeeze(-1)
    mean, log_std = outputs
    z = (actions - mean) * torch.exp(-log_std)
    return (-0.5 * z.square() - log_std - _HALF_LOG_2PI).sum(-1)


def kl_divergence(old: Outputs, new: Outputs) -> torch.Tensor:
    """``KL(old || new)`` per sample (the original code's direction), summed over actions."""
    if len(old) == 1:
        p_log = torch.log_softmax(old[0], dim=-1)
        q_log = torch.log_softmax(new[0], dim=-1)
        return (p_log.exp() * (p_log - q_log)).sum(-1)
    (mu0, ls0), (mu1, ls1) = old, new
    var_ratio = torch.exp(2.0 * (ls0 - ls1))
    mahal = (mu0 - mu1).square() * torch.exp(-2.0 * ls1)
    return (ls1 - ls0 + 0.5 * (var_ratio + mahal) - 0.5).sum(-1)


def action_noise(family, batch_shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """The action noise of a whole rollout, drawn at once: ``(horizon, T, E, ...)``.

    Standard normals for a ``Box`` action space, uniforms in [0, 1) for the Gumbel-max draw of
    a ``Discrete`` one. Drawing it before the time loop keeps the loop free of generator state,
    so it can be replayed as a CUDA graph (``autometa.meta.cuda_graphs``).
    """
    space = family.single_action_space
    if isinstance(space, spaces.Discrete):
        shape = (family.horizon, *batch_shape, int(space.n))
        return torch.rand(shape, generator=generator, device=family.device)
    shape = (family.horizon, *batch_shape, *space.shape)
    return torch.randn(shape, generator=generator, device=family.device)


def sample_actions(outputs: Outputs, noise: torch.Tensor) -> torch.Tensor:
    """One action per row from ``outputs``, given that step's slice of :func:`action_noise`."""
    if len(outputs) == 1:
        gumbel = -torch.log(-torch.log(noise.clamp_min(1e-20)))
        return torch.argmax(outputs[0] + gumbel, dim=-1)
    mean, log_std = outputs
    return mean + torch.exp(log_std) * noise.to(mean.dtype)


def run_steps(
    forward: Callable[[torch.Tensor], Outputs],
    family,
    state: dict[str, torch.Tensor],
    obs: torch.Tensor,
    noise: torch.Tensor,
) -> Batch:
    """The time loop of a rollout from a reset ``state``: a fixed sequence of kernels.

    ``forward`` maps the ``(T, E, ...)`` observations (every member's tasks, ``T = P * T_p``)
    to distribution parameters: the members' policies, see :func:`rollout`.
    """
    alive = torch.ones(obs.shape[:2], dtype=obs.dtype, device=obs.device)
    steps: list[tuple[torch.Tensor, ...]] = []
    for t in range(family.horizon):
        outputs = forward(obs)
        action = sample_actions(outputs, noise[t])
        logp = log_prob(outputs, action)
        state, next_obs, reward, terminated, _, _ = family.step(state, action)
        steps.append((obs, action, reward, alive, logp))
        alive = alive * (~terminated).to(alive.dtype)
        obs = next_obs
    return Batch(*(torch.stack(column, dim=2) for column in zip(*steps)))


def split_members(tensor: torch.Tensor, members: int) -> torch.Tensor:
    """``(P*T, ...)`` -> ``(P, T, ...)``."""
    return tensor.reshape(members, tensor.shape[0] // members, *tensor.shape[1:])


def merge_members(tensor: torch.Tensor) -> torch.Tensor:
    """``(P, T, ...)`` -> ``(P*T, ...)``."""
    return tensor.reshape(tensor.shape[0] * tensor.shape[1], *tensor.shape[2:])


def cat_tasks(per_member: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The members' task parameters as one ``(P*T, ...)`` set, member after member."""
    return {k: torch.cat([t[k] for t in per_member]) for k in per_member[0]}


def _cat_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Reset states of the members' tasks as one state of the ``P*T`` tasks.

    Every field with a task dimension is concatenated; a 0-d field (the step counter) is the
    same for every member after a reset and kept once.
    """
    if len(states) == 1:
        return states[0]
    return {
        k: (v if v.dim() == 0 else torch.cat([s[k] for s in states])) for k, v in states[0].items()
    }


@torch.no_grad()
def rollout(
    cohorts: Sequence[Cohort],
    params: Sequence[Params],
    family,
    tasks: dict[str, torch.Tensor],
    episodes: int,
    *,
    stacked: bool,
    generators: list[torch.Generator],
    seeds: list[int],
) -> Batch:
    """Run ``episodes`` episodes of every member's tasks for ``family.horizon`` steps.

    Args:
        cohorts: the program's architectures (``autometa.meta.members.Cohort``: a policy
            module, whose own parameters are not used, and its number of members).
        params: each cohort's parameters, ``(P_c, ...)``; ``(P_c, T, ...)`` when ``stacked``.
        family: a :class:`~autometa.tasks.TaskFamily`.
        tasks: the members' task parameters, concatenated: ``(P*T, ...)``.
        episodes: episodes per task (E).
        stacked: whether ``params`` carry a task dimension after the member one.
        generators: each member's action-noise generator on the family's device.
        seeds: each member's seed of the family's reset noise.

    Returns:
        The :class:`Batch`, ``(P, T, E, H, ...)``; ``alive`` masks the steps after each
        episode terminated.
    """
    members = len(seeds)
    per_task = {k: split_members(v, members) for k, v in tasks.items()}
    resets = [
        family.reset({k: v[p] for k, v in per_task.items()}, num_episodes=episodes, seed=seeds[p])
        for p in range(members)
    ]
    state = _cat_states([s for s, _ in resets])
    obs = torch.cat([o for _, o in resets])
    tasks_each = obs.shape[0] // members
    noise = torch.cat([action_noise(family, (tasks_each, episodes), g) for g in generators], dim=1)
    names, keys = [list(p) for p in params], list(state)
    outputs_of = [
        vmap(partial(policy_outputs, cohort.policy, stacked=stacked)) for cohort in cohorts
    ]
    alone = one_member_at_a_time(family.device)

    def steps(*flat: torch.Tensor) -> Batch:
        offset, cohort_params = 0, []
        for cohort_names in names:
            cohort_params.append(
                dict(zip(cohort_names, flat[offset : offset + len(cohort_names)]))
            )
            offset += len(cohort_names)
        reset = dict(zip(keys, flat[offset : offset + len(keys)]))

        each = [  # each member's own parameters, when the members run one at a time
            [{n: v[i] for n, v in p.items()} for i in range(cohort.size)] if alone else []
            for cohort, p in zip(cohorts, cohort_params)
        ]

        def forward(flat_obs: torch.Tensor) -> Outputs:
            rows, start, parts = flat_obs.shape[0] // members, 0, []
            for cohort, member_outputs, p, own in zip(cohorts, outputs_of, cohort_params, each):
                chunk = flat_obs[start * rows : (start + cohort.size) * rows]
                if alone:  # each member's own code (see one_member_at_a_time)
                    parts.extend(
                        policy_outputs(cohort.policy, q, chunk[i * rows : (i + 1) * rows], stacked)
                        for i, q in enumerate(own)
                    )
                else:
                    outputs = member_outputs(p, split_members(chunk, cohort.size))
                    parts.append(tuple(merge_members(o) for o in outputs))
                start += cohort.size
            if len(parts) == 1 and not alone:
                return parts[0]
            # member by member, one layout for every P: a lone member's outputs may be
            # broadcast views (the state-independent log-std), which element-wise kernels
            # walk differently from the contiguous rows of several members
            return tuple(map(torch.cat, zip(*parts)))

        return run_steps(forward, family, reset, flat[-2], flat[-1])

    inputs = [*(t for p in params for t in p.values()), *state.values(), obs, noise]
    columns = None
    if family.native:  # on CUDA the time loop is replayed as one CUDA graph
        layout = tuple((id(c.policy), c.size, tuple(n)) for c, n in zip(cohorts, names))
        key = ("rollout", family, stacked, layout, tuple(keys))
        columns = captured(cohorts[0].policy, key, steps, inputs)
    batch = Batch(*columns) if columns is not None else steps(*inputs)
    return Batch(*(split_members(column, members) for column in batch))
