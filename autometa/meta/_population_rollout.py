"""A population's rollouts: every member's tasks stepped at once, each with its own streams.

The members' tasks are concatenated into one ``(P*T, E)`` batch of the family, so the
environment steps once per time step for everyone, and the policy runs as ``vmap`` over the
members' parameters; member ``p`` draws its reset noise and action noise from its own seeds
and generator, exactly what :func:`~autometa.meta.rollout.rollout` draws for it alone.
"""

from __future__ import annotations

import torch
from torch.func import vmap

from autometa.meta.cuda_graphs import captured
from autometa.meta.rollout import Batch, Outputs, Params, action_noise, policy_outputs, run_steps
from autometa.policy import GraphPolicy

__all__ = ["cat_tasks", "merge_members", "population_rollout", "split_members"]


def split_members(tensor: torch.Tensor, members: int) -> torch.Tensor:
    """``(P*T, ...)`` -> ``(P, T, ...)``."""
    return tensor.reshape(members, tensor.shape[0] // members, *tensor.shape[1:])


def merge_members(tensor: torch.Tensor) -> torch.Tensor:
    """``(P, T, ...)`` -> ``(P*T, ...)``."""
    return tensor.reshape(tensor.shape[0] * tensor.shape[1], *tensor.shape[2:])


def cat_tasks(per_member: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.cat([t[k] for t in per_member]) for k in per_member[0]}


def _cat_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Reset states of the members' tasks as one state of the ``P*T`` tasks.

    Every field with a task dimension is concatenated; a 0-d field (the step counter) is the
    same for every member after a reset and kept once.
    """
    return {
        k: (v if v.dim() == 0 else torch.cat([s[k] for s in states])) for k, v in states[0].items()
    }


def population_rollout(
    policy: GraphPolicy,
    params: Params,
    stacked: bool,
    family,
    tasks: dict[str, torch.Tensor],
    episodes: int,
    generators: list[torch.Generator],
    seeds: list[int],
) -> Batch:
    """Roll out every member's tasks at once; returns a :class:`Batch` shaped ``(P, T, ...)``.

    Member ``p`` uses ``params[...][p]`` (with a task dimension after it when ``stacked``),
    its slice of ``tasks`` (``(P*T, ...)``), reset noise from ``seeds[p]`` and action noise
    from ``generators[p]``: what :func:`~autometa.meta.rollout.rollout` draws for it alone.
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
    names, keys = list(params), list(state)

    def steps(*flat: torch.Tensor) -> Batch:
        split = len(names) + len(keys)
        member_params = dict(zip(names, flat[: len(names)]))
        member_outputs = vmap(lambda p, o: policy_outputs(policy, p, o, stacked))

        def forward(flat_obs: torch.Tensor) -> Outputs:
            outputs = member_outputs(member_params, split_members(flat_obs, members))
            return tuple(merge_members(o) for o in outputs)

        reset = dict(zip(keys, flat[len(names) : split]))
        return run_steps(forward, family, reset, flat[split], flat[split + 1])

    inputs = [*params.values(), *state.values(), obs, noise]
    with torch.no_grad():
        columns = None
        if family.native:  # on CUDA the time loop is replayed as one CUDA graph
            key = ("population-rollout", family, stacked, members, tuple(names), tuple(keys))
            columns = captured(policy, key, steps, inputs)
        batch = Batch(*columns) if columns is not None else steps(*inputs)
    return Batch(*(split_members(column, members) for column in batch))
