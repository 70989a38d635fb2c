"""One meta-iteration of every member: sample a meta-batch, then take a registered outer step.

Outer steps are registered by name in :data:`OUTER_STEPS` (``"trpo"``, ``"adam"``; ProMP's
``"promp"`` in ``autometa.meta._promp``), so a new meta-optimiser is one function and one
registration, chosen by ``MAMLConfig.outer`` or by the meta-learner
(:data:`autometa.meta.META_LEARNERS`). Each takes an :class:`OuterInputs` (the members'
policy, meta-batch, per-member settings, which members are still training, the TRPO backend
choice), the members' meta-parameters ``(P, ...)`` and its ``state``, and returns
``(new_meta, loss, finite)`` with ``(P,)`` loss and flags; ``state`` is what the step keeps
between iterations (Adam's optimiser), made by the entry's ``init``. Every member steps on
its own values only: Adam's update is element-wise, so one optimiser over the stacked
parameters is each member's own Adam.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from autometa._maml_config import MAMLConfig
from autometa._meta_learners import META_LEARNERS
from autometa.errors import EvaluationError
from autometa.meta.maml import (
    MetaBatch,
    MetaObjective,
    derive_seed,
    loss_and_grad,
    sample_meta_batch,
)
from autometa.meta.members import Cohort, cohort_slices, map_members, members_of
from autometa.meta.rollout import Params, cat_tasks
from autometa.meta.trpo import trpo_step
from autometa.policy import GraphPolicy
from autometa.registry import Registry

__all__ = [
    "OUTER_STEPS",
    "OuterInputs",
    "OuterStep",
    "adam_step",
    "check_finite",
    "finite_members",
    "meta_iteration",
    "outer_step_of",
]


@dataclass(frozen=True)
class OuterInputs:
    """What an outer step reads besides the meta-parameters and its state.

    Attributes:
        policy: the members' policy module.
        mb: the members' meta-batch, ``(P, ...)``.
        cfg: the shared configuration.
        knobs: the per-member settings, ``(P,)`` (``autometa.meta.members``).
        active: which members are still training, ``(P,)`` bool.
        traced: TRPO's backend choice (``autometa.meta.backend``; None: by size).
        compiled: TRPO's traced program compiled by inductor where it runs.
    """

    policy: GraphPolicy
    mb: MetaBatch
    cfg: MAMLConfig
    knobs: dict[str, torch.Tensor]
    active: torch.Tensor
    traced: bool | None = None
    compiled: bool = False

    @property
    def data(self) -> tuple:
        """The meta-batch as a ``vmap``-able tuple ``(train, grads, valid, valid_adv)``."""
        return (self.mb.train, self.mb.grads, self.mb.valid, self.mb.valid_adv)


@dataclass(frozen=True)
class OuterStep:
    """A registered meta-optimiser.

    Attributes:
        step: ``step(inputs, meta, state) -> (new_meta, loss, finite)``, see the module
            docstring.
        init: ``init(meta, cfg) -> state`` before the first iteration (None: no state).
    """

    step: Callable[[OuterInputs, Params, Any], tuple[Params, torch.Tensor, torch.Tensor]]
    init: Callable[[Params, MAMLConfig], Any] | None = None


OUTER_STEPS: Registry[OuterStep] = Registry("outer step")
"""Meta-optimisers by name (``"trpo"``, ``"adam"``); ``MAMLConfig.outer`` picks one."""


def outer_step_of(cfg: MAMLConfig) -> OuterStep:
    """The outer step of ``cfg.meta_learner``: its own, or ``cfg.outer`` (MAML's choice)."""
    return OUTER_STEPS.get(META_LEARNERS.get(cfg.meta_learner).outer_step(cfg.outer))


def meta_iteration(
    cohorts: Sequence[Cohort],
    metas: list[Params],
    family,
    cfg: MAMLConfig,
    knobs: dict[str, torch.Tensor],
    generators: list[torch.Generator],
    seeds: list[int],
    iteration: int,
    states: list[Any],
    *,
    active: torch.Tensor,
    traced: bool | None = None,
    compiled: bool = False,
) -> tuple[list[Params], dict[str, torch.Tensor], int]:
    """Sample every member's meta-batch, adapt, and take one outer step per cohort.

    Member ``p`` draws its tasks from ``seeds[p]`` and the iteration index, its reset noise
    likewise and its action noise from ``generators[p]``. ``states`` holds each cohort's
    outer-step state (:class:`OuterStep`'s ``init``).

    Returns:
        ``(new_metas, stats, env_steps)``: ``stats`` holds ``(P,)`` device tensors (pre- and
        post-adaptation mean return, meta-loss, a finiteness flag), read by the caller once;
        ``env_steps`` is per member.
    """
    tasks = cat_tasks(
        [family.sample_tasks(cfg.num_tasks, derive_seed(s, iteration, 1)) for s in seeds]
    )
    batches = sample_meta_batch(
        cohorts,
        metas,
        family,
        tasks,
        cfg,
        knobs["fast_lr"],
        generators,
        [derive_seed(s, iteration, 2) for s in seeds],
    )
    outer = outer_step_of(cfg)
    new_metas, parts = [], []
    for cohort, mb, meta, state, sl in zip(
        cohorts, batches, metas, states, cohort_slices(cohorts)
    ):
        inputs = OuterInputs(
            cohort.policy, mb, cfg, members_of(knobs, sl), active[sl], traced, compiled
        )
        new_meta, loss, finite = outer.step(inputs, meta, state)
        first = mb.train[0][0] if mb.train else mb.valid
        pre = first.episode_returns().mean((1, 2))
        post = mb.valid.episode_returns().mean((1, 2))
        new_metas.append(new_meta)
        parts.append((pre, post, loss, finite & torch.isfinite(pre) & torch.isfinite(post)))
    pre, post, loss, finite = (torch.cat(column) for column in zip(*parts))
    stats = {"pre_return": pre, "post_return": post, "loss": loss, "finite": finite}
    return new_metas, stats, sum(mb.env_steps for mb in batches) // len(seeds)


def finite_members(grads: Params) -> torch.Tensor:
    """Per member, whether every entry of its gradient is finite, ``(P,)``."""
    return torch.stack([torch.isfinite(v).flatten(1).all(1) for v in grads.values()]).all(0)


def _member_loss_and_grad(policy, cfg, meta, data, lr):
    loss, g, _, _ = loss_and_grad(MetaObjective(policy, MetaBatch(*data), cfg, lr), meta)
    return loss, g


def adam_step(
    inputs: OuterInputs, meta: Params, optimizer: torch.optim.Optimizer | None
) -> tuple[Params, torch.Tensor, torch.Tensor]:
    """One Adam step of every member on its meta-loss; ``meta``'s tensors are the
    optimiser's leaves (updated in place)."""
    if optimizer is None:
        raise ValueError("outer='adam' needs an optimizer over the meta-parameters")
    member = partial(_member_loss_and_grad, inputs.policy, inputs.cfg)
    loss, g = map_members(
        member, meta, inputs.data, inputs.knobs["fast_lr"], device=inputs.active.device
    )
    for name, p in meta.items():
        p.grad = g[name]
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return meta, loss, finite_members(g) & torch.isfinite(loss)


def check_finite(stats: dict[str, torch.Tensor], iteration: int) -> None:
    """Raise if one member's ``stats`` (0-d tensors or floats) became NaN or Inf."""
    if not bool(stats["finite"]):
        pre, post, loss = (float(stats[k]) for k in ("pre_return", "post_return", "loss"))
        what = (
            "returns"
            if not (math.isfinite(pre) and math.isfinite(post))
            else ("meta-loss" if not math.isfinite(loss) else "meta-gradient or parameters")
        )
        raise EvaluationError(f"NaN or Inf in the {what} at meta-iteration {iteration}")


def _trpo(inputs: OuterInputs, meta: Params, state: Any):
    """TRPO; one member at a time on the CPU: there the conjugate-gradient products of a
    ``vmap`` over several members round differently from one member's (measured), while a
    member stepped alone is exactly the program of one it would run by itself; so its
    numbers do not depend on what it was batched with. Off the CPU every member at once."""
    device = inputs.active.device
    per_kernel = 1 if device.type == "cpu" else len(inputs.active)
    return trpo_step(
        inputs.policy, inputs.mb, meta, inputs.cfg, inputs.knobs, inputs.active,
        per_kernel=per_kernel, traced=inputs.traced, compiled=inputs.compiled,
    )  # fmt: skip


def _adam_init(meta: Params, cfg: MAMLConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(list(meta.values()), lr=cfg.adam_lr)


OUTER_STEPS.register("trpo", OuterStep(_trpo))
OUTER_STEPS.register("adam", OuterStep(adam_step, _adam_init))
