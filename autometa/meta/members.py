"""Members: the (candidate, seed) pairs one program meta-trains side by side.

Every function of the algorithm takes parameters with a leading member axis P and runs the
one-member computation over it (:func:`map_members`: ``torch.func.vmap`` off the CPU, member by
member on a CPU); one candidate evaluated alone is a program of one. The members of a program
share every configuration field except :data:`PER_MEMBER`, which become ``(P,)`` tensors
(:func:`member_knobs`). They may have different architectures: the members of one architecture
form a :class:`Cohort` (one policy module, parameters stacked ``(P_c, ...)``), a program is a
list of cohorts, and its members are numbered cohort after cohort. Rollouts step every member's
environments together; everything a member's parameters touch runs per cohort, so each member's
kernels are those of its own architecture.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.func import vmap
from torch.utils._pytree import tree_flatten, tree_map

from autometa._maml_config import MAMLConfig
from autometa.meta._kernel_size import one_member_at_a_time
from autometa.meta.rollout import Params
from autometa.policy import GraphPolicy

__all__ = [
    "PER_MEMBER",
    "Cohort",
    "Member",
    "cohort_slices",
    "map_members",
    "member_knobs",
    "members_of",
    "population_key",
    "select_members",
    "stack_members",
    "widest_layer",
]

PER_MEMBER = ("fast_lr", "max_kl", "cg_damping", "ls_backtrack", "init_std")
"""Configuration fields that may differ between the members of one program."""


@dataclass
class Member:
    """One member's settings: its seed and configuration (which fixes its step sizes)."""

    seed: int
    config: MAMLConfig


def population_key(cfg: MAMLConfig) -> tuple:
    """What members must share to run in one program: every configuration field except
    :data:`PER_MEMBER` (sizes, iterations, discount, baseline, meta-learner, outer step...)."""
    shared = {k: v for k, v in cfg.to_dict().items() if k not in PER_MEMBER}
    return tuple(sorted((k, repr(v)) for k, v in shared.items()))


def stack_members(metas: list[Params]) -> Params:
    """The members' meta-parameters stacked along a new leading member axis."""
    return {name: torch.stack([m[name] for m in metas]) for name in metas[0]}


def member_knobs(members: list[Member], device: torch.device) -> dict[str, torch.Tensor]:
    """The per-member settings (:data:`PER_MEMBER`) as ``(P,)`` float32 tensors on ``device``."""
    return {
        name: torch.tensor(
            [float(getattr(m.config, name)) for m in members], dtype=torch.float32, device=device
        )
        for name in PER_MEMBER
    }


def widest_layer(policy: GraphPolicy) -> int:
    """The largest dimension of any parameter: the width that sizes activation tensors."""
    return max((max(p.shape) for p in policy.parameters() if p.dim() > 0), default=1)


@dataclass(frozen=True)
class Cohort:
    """The members of one architecture in a program: their policy module and how many."""

    policy: GraphPolicy
    size: int


def cohort_slices(cohorts: Sequence[Cohort]) -> list[slice]:
    """Each cohort's members among the program's (numbered cohort after cohort)."""
    out, start = [], 0
    for cohort in cohorts:
        out.append(slice(start, start + cohort.size))
        start += cohort.size
    return out


def members_of(tree, index: int | slice | list[int] | None):
    """Member ``index`` (or the members of a slice or list) of every tensor of a pytree;
    ``None`` puts every tensor on a member axis of one."""
    return tree_map(lambda t: t[index], tree)


def select_members(
    cohorts: Sequence[Cohort], metas: Sequence[Params], chosen: Sequence[int]
) -> tuple[list[Cohort], list[Params]]:
    """The program of the ``chosen`` members (in order, a sorted list): its cohorts and their
    parameters."""
    out_cohorts, out_metas = [], []
    for cohort, meta, where in zip(cohorts, metas, cohort_slices(cohorts)):
        inside = [p - where.start for p in chosen if where.start <= p < where.stop]
        if inside:
            out_cohorts.append(Cohort(cohort.policy, len(inside)))
            out_metas.append(members_of(meta, inside))
    return out_cohorts, out_metas


def map_members(fn: Callable, *args, device: torch.device):
    """``fn`` (written for one member) over the leading member axis of ``args``' tensors.

    Off the CPU it is ``vmap(fn)``: every member in the same kernels. On a CPU the members
    run one at a time, each through ``fn`` itself, and the results are stacked
    (:func:`~autometa.meta._kernel_size.one_member_at_a_time`): there ``vmap`` over several
    members rounds differently from one member's code (measured), so only this keeps a
    member's numbers independent of what it runs with.
    """
    if not one_member_at_a_time(device):
        return vmap(fn)(*args)
    leaves, _ = tree_flatten(args)
    count = next(t.shape[0] for t in leaves if isinstance(t, torch.Tensor) and t.dim() > 0)
    outs = [fn(*members_of(args, i)) for i in range(count)]
    return tree_map(lambda *column: torch.stack(column), outs[0], *outs[1:])
