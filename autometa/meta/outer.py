"""One meta-iteration: sample a meta-batch, then take a registered outer step on it.

Outer steps are registered by name in :data:`OUTER_STEPS` (``"trpo"``, ``"adam"``; ProMP's
``"promp"`` in ``autometa.meta._promp``), so a new meta-optimiser is one function and one
registration, chosen by ``MAMLConfig.outer`` or by the meta-learner
(:data:`autometa.meta.META_LEARNERS`). Each
takes ``(objective, meta, cfg, state)`` and returns ``(new_meta, loss, finite_flag)``;
``state`` is what the step keeps between iterations (Adam's optimiser), made by the entry's
``init``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from autometa._maml_config import MAMLConfig
from autometa._meta_learners import META_LEARNERS
from autometa.errors import EvaluationError
from autometa.meta.maml import MetaObjective, derive_seed, loss_and_grad, sample_meta_batch
from autometa.meta.rollout import Params
from autometa.meta.trpo import trpo_step
from autometa.policy import GraphPolicy
from autometa.registry import Registry

__all__ = [
    "OUTER_STEPS",
    "OuterStep",
    "adam_step",
    "check_finite",
    "meta_iteration",
    "outer_step_of",
]


@dataclass(frozen=True)
class OuterStep:
    """A registered meta-optimiser.

    Attributes:
        step: ``step(objective, meta, cfg, state, traced) -> (new_meta, loss, finite)``.
        init: ``init(meta, cfg) -> state`` before the first iteration (None: no state).
    """

    step: Callable[..., tuple[Params, torch.Tensor, torch.Tensor]]
    init: Callable[[Params, MAMLConfig], Any] | None = None


OUTER_STEPS: Registry[OuterStep] = Registry("outer step")
"""Meta-optimisers by name (``"trpo"``, ``"adam"``); ``MAMLConfig.outer`` picks one."""


def outer_step_of(cfg: MAMLConfig) -> OuterStep:
    """The outer step of ``cfg.meta_learner``: its own, or ``cfg.outer`` (MAML's choice)."""
    return OUTER_STEPS.get(META_LEARNERS.get(cfg.meta_learner).outer_step(cfg.outer))


def meta_iteration(
    policy: GraphPolicy,
    meta: Params,
    family,
    cfg: MAMLConfig,
    generator: torch.Generator,
    seed: int,
    iteration: int,
    state: Any = None,
    traced: bool | None = None,
) -> tuple[Params, dict[str, torch.Tensor], int]:
    """Sample a meta-batch, adapt, and take one outer step.

    ``state`` is the outer step's state (:class:`OuterStep`'s ``init``); ``traced`` is passed
    to :func:`~autometa.meta.trpo.trpo_step` (None: by size).

    Returns:
        ``(new_meta, stats, env_steps)``; ``stats`` holds device tensors (pre- and
        post-adaptation mean return, meta-loss, a finiteness flag), read by the caller once.
    """
    tasks = family.sample_tasks(cfg.num_tasks, derive_seed(seed, iteration, 1))
    mb = sample_meta_batch(
        policy, meta, family, tasks, cfg, generator, derive_seed(seed, iteration, 2)
    )
    obj = MetaObjective(policy, mb, cfg)
    outer = outer_step_of(cfg)
    new_meta, loss, finite = outer.step(obj, meta, cfg, state, traced)
    pre = (
        mb.train[0][0].episode_returns().mean() if mb.train else mb.valid.episode_returns().mean()
    )
    post = mb.valid.episode_returns().mean()
    finite = finite & torch.isfinite(pre) & torch.isfinite(post)
    stats = {"pre_return": pre, "post_return": post, "loss": loss, "finite": finite}
    return new_meta, stats, mb.env_steps


def adam_step(
    obj: MetaObjective, meta: Params, optimizer: torch.optim.Optimizer | None
) -> tuple[Params, torch.Tensor, torch.Tensor]:
    """One Adam step on the meta-loss; ``meta``'s tensors are the optimiser's leaves."""
    if optimizer is None:
        raise ValueError("outer='adam' needs an optimizer over the meta-parameters")
    loss, g, _, _ = loss_and_grad(obj, meta)
    finite = torch.stack([torch.isfinite(v).all() for v in g.values()]).all()
    for name, p in meta.items():
        p.grad = g[name]
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return meta, loss, finite & torch.isfinite(loss)


def check_finite(stats: dict[str, torch.Tensor], iteration: int) -> None:
    """The one host synchronisation per iteration: raise if anything became NaN or Inf."""
    if not bool(stats["finite"]):
        pre, post, loss = (float(stats[k]) for k in ("pre_return", "post_return", "loss"))
        what = (
            "returns"
            if not (math.isfinite(pre) and math.isfinite(post))
            else ("meta-loss" if not math.isfinite(loss) else "meta-gradient or parameters")
        )
        raise EvaluationError(f"NaN or Inf in the {what} at meta-iteration {iteration}")


def _trpo(obj: MetaObjective, meta: Params, cfg: MAMLConfig, state: Any, traced: bool | None):
    return trpo_step(obj, meta, cfg, traced=traced)


def _adam(obj: MetaObjective, meta: Params, cfg: MAMLConfig, state: Any, traced: bool | None):
    return adam_step(obj, meta, state)


def _adam_init(meta: Params, cfg: MAMLConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(list(meta.values()), lr=cfg.adam_lr)


OUTER_STEPS.register("trpo", OuterStep(_trpo))
OUTER_STEPS.register("adam", OuterStep(_adam, _adam_init))
