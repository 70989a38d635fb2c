"""Members: the (candidate, seed) pairs one program meta-trains side by side.

Every function of the algorithm takes parameters with a leading member axis P and runs the
one-member computation under ``torch.func.vmap`` over it; one candidate evaluated alone is a
population of one. Members of one program share an architecture (one policy module) and
every configuration field except :data:`PER_MEMBER`, which become ``(P,)`` tensors
(:func:`member_knobs`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from autometa._maml_config import MAMLConfig
from autometa.meta.rollout import Params
from autometa.policy import GraphPolicy

__all__ = [
    "PER_MEMBER",
    "Member",
    "member_knobs",
    "population_key",
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
