"""The one inner loop: policy-gradient adaptation steps, batched over tasks and members.

Meta-training (:func:`autometa.meta.maml.sample_meta_batch` and, differentiably,
:func:`autometa.meta.maml.adapted_params`), the held-out test and ``autometa.adapt``
(:func:`autometa.meta.adapt_to_tasks`) all adapt with the pieces here:

- :data:`INNER_LOSSES`: the per-task loss whose gradient is the inner step, by name
  (``"reinforce"``: MAML's; a meta-learner names its own, see
  :data:`autometa.meta.META_LEARNERS`);
- :func:`inner_gradients`: ``vmap(grad(loss))`` over tasks;
- :func:`step_size` and :func:`inner_update`: ``params - lr * grads`` with the scalar
  ``fast_lr`` (times ``test_lr_scale`` after the first step at test time) or Meta-SGD's
  per-parameter ``"alpha.<name>"`` step sizes;
- :func:`sample_inner_loop`: roll out, fit the baseline, step, and again, with fresh
  episodes after every step (no gradient kept), for every member at once;
- :func:`replay_inner_steps`: the same steps on stored episodes as a differentiable function
  of the meta-parameters (what the outer loss differentiates through).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import torch
from torch.func import functional_call, grad, vmap

from autometa._meta_learners import META_LEARNERS
from autometa.meta.baseline import advantages
from autometa.meta.members import Cohort, cohort_slices, map_members, members_of
from autometa.meta.rollout import (
    Batch,
    Params,
    log_prob,
    merge_members,
    rollout,
    split_members,
)
from autometa.policy import GraphPolicy
from autometa.registry import Registry

if TYPE_CHECKING:
    from autometa._maml_config import MAMLConfig

__all__ = [
    "ALPHA",
    "INNER_LOSSES",
    "InnerLoop",
    "InnerLoss",
    "batch_advantages",
    "inner_gradients",
    "inner_loss",
    "inner_loss_of",
    "inner_step",
    "inner_update",
    "member_advantages",
    "replay_inner_steps",
    "sample_inner_loop",
    "split_meta",
    "step_size",
]

ALPHA = "alpha."
"""Prefix of Meta-SGD's per-parameter step sizes among the meta-parameters."""

InnerLoss = Callable[[Params, GraphPolicy, Batch, torch.Tensor], torch.Tensor]
"""``loss(params, policy, batch, advantages) -> scalar`` for one task's episodes."""

INNER_LOSSES: Registry[InnerLoss] = Registry("inner loss")


def split_meta(meta: Params) -> tuple[Params, Params | None]:
    """``(theta, alpha)``: the policy parameters and the Meta-SGD step sizes (or None)."""
    theta = {n: p for n, p in meta.items() if not n.startswith(ALPHA)}
    alpha = {n[len(ALPHA) :]: p for n, p in meta.items() if n.startswith(ALPHA)}
    return theta, (alpha or None)


def inner_loss(
    theta: Params, policy: GraphPolicy, batch: Batch, adv: torch.Tensor
) -> torch.Tensor:
    """One task's REINFORCE loss: ``-mean over valid steps of log pi(a|s) * A``."""
    logp = log_prob(functional_call(policy, theta, (batch.obs,)), batch.actions)
    return -(logp * adv).sum() / batch.alive.sum().clamp_min(1.0)


INNER_LOSSES.register("reinforce", inner_loss)


def inner_loss_of(cfg: MAMLConfig) -> InnerLoss:
    """The inner loss of ``cfg.meta_learner`` (REINFORCE for MAML)."""
    return INNER_LOSSES.get(META_LEARNERS.get(cfg.meta_learner).inner_loss)


def inner_gradients(
    policy: GraphPolicy,
    params: Params,
    stacked: bool,
    batch: Batch,
    adv: torch.Tensor,
    *,
    loss: InnerLoss = inner_loss,
) -> Params:
    """``grad L_i`` for every task at once: ``vmap(grad(loss))``, stacked ``(T, ...)``.

    Differentiable with respect to ``params`` (``torch.func`` composes), which is what makes
    the outer gradient second order. ``loss`` is the inner loss (default REINFORCE).
    """
    per_task = grad(partial(loss, policy=policy))
    return vmap(
        lambda p, b, a: per_task(p, batch=b, adv=a), in_dims=(0 if stacked else None, 0, 0)
    )(params, batch, adv)


def inner_update(params: Params, grads: Params, lr: float | torch.Tensor | Params) -> Params:
    """``params - lr * grads`` (broadcasts shared params against stacked gradients)."""
    if isinstance(lr, dict):
        return {n: params[n] - lr[n] * grads[n] for n in params}
    return {n: params[n] - lr * grads[n] for n in params}


def step_size(
    fast_lr: float | torch.Tensor, alpha: Params | None, scale: float = 1.0
) -> float | torch.Tensor | Params:
    """The inner step size: Meta-SGD's ``alpha`` when learned, else ``fast_lr``; times ``scale``.

    ``fast_lr`` is ``MAMLConfig.fast_lr``, or the members' ``(P,)`` tensor.
    ``scale`` is 1 during meta-training and for the first test step, ``test_lr_scale`` after.
    """
    if scale == 1.0:
        return alpha if alpha is not None else fast_lr
    if alpha is not None:
        return {n: a * scale for n, a in alpha.items()}
    return fast_lr * scale


def inner_step(
    policy: GraphPolicy,
    params: Params,
    stacked: bool,
    batch: Batch,
    adv: torch.Tensor,
    lr: float | torch.Tensor | Params,
    *,
    loss: InnerLoss = inner_loss,
) -> tuple[Params, Params]:
    """One member's inner step on every task: ``(gradients, params - lr * gradients)``.

    :func:`sample_inner_loop` runs it over the members (``members.map_members``).
    """
    g = inner_gradients(policy, params, stacked, batch, adv, loss=loss)
    return g, inner_update(params, g, lr)


def batch_advantages(batch: Batch, cfg: MAMLConfig) -> torch.Tensor:
    """Baseline-subtracted (GAE) advantages of ``batch`` with ``cfg``'s settings."""
    return advantages(
        batch, cfg.gamma, cfg.gae_lambda, cfg.normalize_advantages, cfg.baseline_ridge
    )


@dataclass
class InnerLoop:
    """What :func:`sample_inner_loop` produced for every member (data only; no autograd graph).

    Attributes:
        batches: ``steps + 1`` batches ``(P, T, ...)``: the episodes each step was taken on,
            then the episodes of the adapted policies.
        advantages: the advantages of each step's batch (and of the last batch when asked).
        grads: each step's inner gradients, one ``(P_c, T, ...)`` dict per cohort.
        params: each cohort's adapted parameters (``(P_c, T, ...)`` after at least one step,
            else its members' own ``(P_c, ...)``).
        stacked: whether ``params`` carry a task dimension.
    """

    batches: list[Batch]
    advantages: list[torch.Tensor]
    grads: list[list[Params]]
    params: list[Params]
    stacked: bool


def member_advantages(batch: Batch, cfg: MAMLConfig) -> torch.Tensor:
    """Advantages of every member's tasks, ``(P, T, E, H)``, in one fit over the ``P*T`` tasks
    (each task's baseline is its own, so a member's values do not depend on the others)."""
    flat = Batch(*(merge_members(column) for column in batch))
    return split_members(batch_advantages(flat, cfg), batch.rewards.shape[0])


def _member_step(policy, stacked, loss, params, batch, adv, lr):
    return inner_step(policy, params, stacked, batch, adv, lr, loss=loss)


def sample_inner_loop(
    cohorts: Sequence[Cohort],
    metas: Sequence[Params],
    family,
    tasks: dict[str, torch.Tensor],
    cfg: MAMLConfig,
    steps: int,
    *,
    fast_lr: torch.Tensor,
    episodes: int,
    generators: list[torch.Generator],
    seeds: Sequence[Sequence[int]],
    scales: Sequence[float] | None = None,
    last_advantages: bool = False,
) -> InnerLoop:
    """Adapt every member to its tasks with ``steps`` inner steps, sampling fresh episodes
    before each (pytorch-maml-rl's sampler).

    Each step rolls out ``episodes`` episodes per task with the current parameters (every
    member's environments together), fits the baseline and takes one step of
    ``cfg.meta_learner``'s inner loss, every member with its own step size and each cohort
    in its own kernels; a last rollout measures the adapted policies. Nothing is
    differentiated through (see :func:`replay_inner_steps`).

    Args:
        cohorts: the program's architectures (``autometa.meta.members.Cohort``).
        metas: each cohort's meta-parameters ``(P_c, ...)`` (theta and, with Meta-SGD,
            ``"alpha.<name>"`` step sizes).
        family: the task family.
        tasks: the members' tasks, concatenated ``(P*T, ...)``.
        cfg: the shared configuration (baseline, meta-learner).
        steps: inner steps.
        fast_lr: each member's ``fast_lr``, ``(P,)``.
        episodes: episodes per task and rollout.
        generators: each member's action-noise generator.
        seeds: ``seeds[k][p]``: member ``p``'s reset seed of rollout ``k`` (``steps + 1``).
        scales: step-size factor of each step (default 1: meta-training's schedule).
        last_advantages: also compute the last batch's advantages (the outer loss needs them).
    """
    split = [split_meta({n: p.detach() for n, p in meta.items()}) for meta in metas]
    params = [theta for theta, _ in split]
    loss = inner_loss_of(cfg)
    where = cohort_slices(cohorts)
    stacked = False
    batches, advs, grads = [], [], []
    for k in range(steps + 1):
        batch = rollout(
            cohorts,
            params,
            family,
            tasks,
            episodes,
            stacked=stacked,
            generators=generators,
            seeds=list(seeds[k]),
        )
        batches.append(batch)
        if k == steps:
            if last_advantages:
                advs.append(member_advantages(batch, cfg))
            break
        adv = member_advantages(batch, cfg)
        scale = 1.0 if scales is None else scales[k]
        step_grads, adapted = [], []
        for cohort, (_, alpha), theta, sl in zip(cohorts, split, params, where):
            lr = step_size(fast_lr[sl], alpha, scale)
            step = partial(_member_step, cohort.policy, stacked, loss)
            with torch.no_grad():
                g, new = map_members(
                    step, theta, members_of(batch, sl), adv[sl], lr, device=adv.device
                )
            step_grads.append(g)
            adapted.append(new)
        params, stacked = adapted, True
        advs.append(adv)
        grads.append(step_grads)
    return InnerLoop(batches, advs, grads, params, stacked)


def replay_inner_steps(
    meta: Params,
    policy: GraphPolicy,
    train: list[tuple[Batch, torch.Tensor]],
    cfg: MAMLConfig,
    fixed_grads: list[Params] | None = None,
    lr: float | torch.Tensor | None = None,
) -> list[tuple[Params, bool]]:
    """The inner steps on stored episodes, differentiable in ``meta``.

    Args:
        meta: meta-parameters (theta and, with Meta-SGD, alpha).
        policy: the policy module.
        train: one ``(batch, advantages)`` per inner step, sampled beforehand.
        cfg: the configuration (``fast_lr``, the meta-learner's inner loss).
        fixed_grads: precomputed inner gradients; given, they are used as constants, which is
            first-order MAML (no second derivatives through the inner step).
        lr: the step size in place of ``cfg.fast_lr`` (the member's own, a tensor, when run
            for a member of a program); Meta-SGD's learned step sizes take precedence.

    Returns:
        ``(params, stacked)`` before every step and after the last: theta itself (not
        stacked) first, then the stacked per-task parameters after each step.
    """
    theta, alpha = split_meta(meta)
    step = step_size(cfg.fast_lr if lr is None else lr, alpha)
    loss = inner_loss_of(cfg)
    params, stacked = theta, False
    out = [(params, stacked)]
    for k, (batch, adv) in enumerate(train):
        g = (
            fixed_grads[k]
            if fixed_grads is not None
            else inner_gradients(policy, params, stacked, batch, adv, loss=loss)
        )
        params, stacked = inner_update(params, g, step), True
        out.append((params, stacked))
    return out
