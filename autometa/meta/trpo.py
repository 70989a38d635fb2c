"""TRPO meta-update (Schulman et al. 2015) through the inner loop, as in Finn et al. 2017 §5.3.

Direction: conjugate gradient on ``(H + damping I) x = g``, where ``H`` is the Hessian of the
mean KL between the old and new post-adaptation policies with respect to the *initial*
parameters (through the inner step). Step: ``sqrt(2 max_kl / x^T H x) x``, then a backtracking
line search that accepts when the surrogate improves and the KL stays within ``max_kl``.

The Hessian-vector product is computed in Gauss-Newton form ``J^T M J v``: ``J`` is the
Jacobian of the post-adaptation distribution parameters with respect to the meta-parameters
(a ``jvp`` for ``J v`` and the stored ``vjp`` for ``J^T u``, both through the inner step) and
``M`` the Hessian of the KL in distribution-parameter space. At the current parameters the KL
and its gradient are zero, so this *is* the exact Hessian of the KL there (the second-order
term of the chain rule is multiplied by a zero gradient), computed with second derivatives
only instead of the third derivatives that differentiating the KL gradient would need.

The loss, gradient and CG direction come from a backend (``autometa.meta.backend``): the
eager functions, or for large evaluations the same operations as a traced program whose
forward pass through the inner step is done once per TRPO step instead of once per product
(about half the work; on CUDA the solve is replayed as a CUDA graph). Each line-search
evaluation is replayed as a CUDA graph on a GPU (``autometa.meta.cuda_graphs``).

Every member of a program (``autometa.meta.members``) takes its own step: its own
direction, its own ``max_kl``, damping and backtracking factor, and its own line search; the
members are stepped together in ``vmap`` kernels, a few at a time when the cache calls for it
(``autometa.meta._kernel_size``). A member that accepts no candidate keeps its parameters, as
in the reference code.

Host synchronisation: one boolean per line-search round (whether any member is still
searching: the accept decision is inherently a host decision). Everything else stays on the
device.
"""

from __future__ import annotations

from functools import partial

import torch
from torch.func import vmap
from torch.utils._pytree import tree_flatten, tree_unflatten

from autometa._maml_config import MAMLConfig
from autometa.meta.backend import backend_for, direction
from autometa.meta.cuda_graphs import captured
from autometa.meta.linalg import flatten, unflatten
from autometa.meta.maml import MetaBatch, MetaObjective
from autometa.meta.members import members_of
from autometa.meta.rollout import Outputs, Params
from autometa.policy import GraphPolicy

__all__ = [
    "accepts",
    "line_search_values",
    "trpo_step",
    "trust_region_step",
]


def trust_region_step(
    loss: torch.Tensor,
    direction: torch.Tensor,
    h_direction: torch.Tensor,
    max_kl: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every member's full step ``sqrt(2 max_kl / x^T H x) x`` along its CG direction ``x``
    (``(P, N)``), and whether its loss and step are finite: ``(step, finite)``."""
    shs = 0.5 * (direction * h_direction).sum(-1)
    step = direction * torch.sqrt(max_kl / shs.clamp_min(1e-30))[:, None]
    return step, torch.isfinite(loss) & torch.isfinite(step).all(-1)


def accepts(
    new_loss: torch.Tensor, kl: torch.Tensor, loss: torch.Tensor, max_kl: torch.Tensor
) -> torch.Tensor:
    """A line-search candidate is accepted: the surrogate improves, the KL is finite and
    within ``max_kl``."""
    return (new_loss < loss) & (kl < max_kl) & torch.isfinite(kl)


def _member_values(policy, cfg, meta, data, lr, old):
    """One member's surrogate loss and mean KL at ``meta`` (one line-search test)."""
    return MetaObjective(policy, MetaBatch(*data), cfg, lr).loss_and_kl(meta, old)


def line_search_values(
    policy: GraphPolicy,
    cfg: MAMLConfig,
    params: Params,
    mb: MetaBatch,
    lr: torch.Tensor,
    old: Outputs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every member's surrogate loss and mean KL at ``params`` (one line-search round; for a
    single member, its own code without ``vmap``).

    Every tensor it reads is an argument, so on CUDA one captured graph serves every
    line-search round of every meta-iteration.
    """
    flat, spec = tree_flatten((params, (mb.train, mb.grads, mb.valid, mb.valid_adv), lr, old))

    def evaluate(*tensors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p, data, r, o = tree_unflatten(list(tensors), spec)
        if r.shape[0] == 1:  # one member: its own code, without vmap's batched kernels
            return members_of(_member_values(policy, cfg, *members_of((p, data, r, o), 0)), None)
        return vmap(partial(_member_values, policy, cfg))(p, data, r, o)

    values = captured(policy, ("line-search", str(spec)), evaluate, flat)
    return tuple(values) if values is not None else evaluate(*flat)


def trpo_step(
    policy: GraphPolicy,
    mb: MetaBatch,
    meta: Params,
    cfg: MAMLConfig,
    knobs: dict[str, torch.Tensor],
    active: torch.Tensor,
    *,
    per_kernel: int | None = None,
    traced: bool | None = None,
    compiled: bool = False,
) -> tuple[Params, torch.Tensor, torch.Tensor]:
    """One TRPO meta-update of every member; returns ``(new_meta, loss, finite)``, ``(P,)``.

    Each member backtracks from its own full step by its own factor and keeps the first
    candidate whose surrogate improves with its KL inside its own ``max_kl``; a member that
    accepts none keeps its parameters, and members not ``active`` (failed or stopped) take
    no step.

    Args:
        policy: the members' policy module.
        mb: the members' meta-batch, ``(P, ...)``.
        meta: the members' meta-parameters, ``(P, ...)``.
        cfg: the shared configuration (CG iterations, line-search length).
        knobs: the per-member settings, ``(P,)`` tensors (``autometa.meta.members``).
        active: which members step, ``(P,)`` bool.
        per_kernel: members stepped at a time (all by default; see
            :mod:`autometa.meta._kernel_size`). The numbers do not depend on it.
        traced: the backend of the direction (``autometa.meta.backend``): the traced
            program (True), the eager functions (False), or by size (None).
        compiled: the traced program compiled by inductor wherever the traced program
            would run (``autometa.meta._compiled``; rounds differently).
    """
    count = int(active.shape[0])
    per_kernel = count if per_kernel is None else max(1, int(per_kernel))
    backend = partial(backend_for, traced, compiled=compiled)
    if per_kernel >= count:
        return _trpo_group(policy, mb, meta, cfg, knobs, active, backend)
    parts = [
        _trpo_group(
            policy,
            MetaBatch(*members_of((mb.train, mb.grads, mb.valid, mb.valid_adv), index)),
            members_of(meta, index),
            cfg,
            members_of(knobs, index),
            active[index],
            backend,
        )
        for index in (slice(s, s + per_kernel) for s in range(0, count, per_kernel))
    ]
    new_meta = {n: torch.cat([part[0][n] for part in parts]) for n in meta}
    return new_meta, torch.cat([p[1] for p in parts]), torch.cat([p[2] for p in parts])


def _trpo_group(policy, mb, meta, cfg, knobs, active, backend):
    """:func:`trpo_step` of the members in one set of kernels; ``backend(mb, cfg)`` names
    the direction's backend."""
    lr = knobs["fast_lr"]
    loss, _, old, x, hx = direction(
        backend(mb, cfg), policy, cfg, meta, mb, lr, knobs["cg_damping"]
    )
    step, finite = trust_region_step(loss, x, hx, knobs["max_kl"])
    theta = vmap(flatten)(meta)
    new_theta = theta.clone()
    pending = active & finite
    scale = torch.ones_like(lr)
    with torch.no_grad():
        for _ in range(cfg.ls_max_steps):
            if not bool(pending.any()):  # host decision, one per line-search round
                break
            candidate = theta - scale[:, None] * step
            new_loss, kl = line_search_values(
                policy, cfg, vmap(unflatten)(candidate, meta), mb, lr, old
            )
            accept = pending & accepts(new_loss, kl, loss, knobs["max_kl"])
            new_theta = torch.where(accept[:, None], candidate, new_theta)
            pending = pending & ~accept
            scale = scale * knobs["ls_backtrack"]
    return vmap(unflatten)(new_theta, meta), loss, finite
