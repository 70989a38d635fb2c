"""A population's TRPO step: every member's direction, trust-region scale and line search.

All members at once in ``vmap`` kernels, or a few at a time (see
:mod:`autometa.meta._kernel_size`): one at a time, each member's step is
:func:`~autometa.meta.trpo.trpo_step` itself on its slice of the meta-batch, the same
function (and the same traced program) that steps a candidate evaluated alone.
"""

from __future__ import annotations

from functools import partial

import torch
from torch.func import vmap
from torch.utils._pytree import tree_map

from autometa._maml_config import MAMLConfig
from autometa.meta.linalg import conjugate_gradient, fisher_vector_product, flatten, unflatten
from autometa.meta.maml import MetaBatch, MetaObjective, loss_and_grad
from autometa.meta.rollout import Params
from autometa.meta.trpo import accepts, trpo_step, trust_region_step
from autometa.policy import GraphPolicy

__all__ = ["members_of", "population_trpo_step"]


def _objective(policy, cfg, data, lr) -> MetaObjective:
    train, grads, valid, valid_adv = data
    return MetaObjective(policy, MetaBatch(list(train), list(grads), valid, valid_adv), cfg, lr)


def _direction(policy, cfg, meta, data, lr, max_kl, damping):
    """One member's TRPO quantities: loss, full step, old outputs and a finiteness flag."""
    obj = _objective(policy, cfg, data, lr)
    loss, g, old, vjp_fn = loss_and_grad(obj, meta)
    fvp = fisher_vector_product(obj, meta, old, vjp_fn, damping)
    direction, h_direction = conjugate_gradient(fvp, flatten(g), cfg.cg_iters)
    step, finite = trust_region_step(loss, direction, h_direction, max_kl)
    return loss, step, old, finite


def _line_values(policy, cfg, meta, data, lr, old):
    """One member's surrogate loss and mean KL at ``meta`` (one line-search test)."""
    return _objective(policy, cfg, data, lr).loss_and_kl(meta, old)


def members_of(tree, index: int | slice):
    """Member ``index`` (or the members of a slice) of every tensor of a pytree."""
    return tree_map(lambda t: t[index], tree)


def population_trpo_step(
    policy: GraphPolicy,
    mb: MetaBatch,
    meta: Params,
    cfg: MAMLConfig,
    knobs: dict[str, torch.Tensor],
    active: torch.Tensor,
    *,
    configs: list[MAMLConfig] | None = None,
    per_kernel: int | None = None,
    traced: bool | None = None,
) -> tuple[Params, torch.Tensor, torch.Tensor]:
    """One TRPO meta-update of every member; returns ``(new_meta, loss, finite)`` per member.

    Each member backtracks from its own full step with its own factor and keeps the first
    candidate whose surrogate improves with its KL inside its own ``max_kl``, exactly as
    :func:`~autometa.meta.trpo.trpo_step` does for one; a member that accepts none keeps its
    parameters. Members not ``active`` (failed earlier) take no step.

    The members are stepped ``per_kernel`` at a time (all at once by default; see
    :mod:`autometa.meta._kernel_size`). One at a time, each member's step is
    :func:`~autometa.meta.trpo.trpo_step` itself on its own slice of the meta-batch, with its
    own configuration (``configs``) and ``traced`` backend choice, as its evaluation alone.
    """
    count = int(active.shape[0])
    per_kernel = count if per_kernel is None else max(1, int(per_kernel))
    if per_kernel >= count:
        return _batched_trpo_step(policy, mb, meta, cfg, knobs, active)
    data = (mb.train, mb.grads, mb.valid, mb.valid_adv)
    parts = []
    for start in range(0, count, per_kernel):
        index = slice(start, start + per_kernel)
        if per_kernel > 1:
            sub = MetaBatch(*members_of(data, index))
            parts.append(_batched_trpo_step(
                policy, sub, members_of(meta, index), cfg, members_of(knobs, index), active[index]
            ))  # fmt: skip
            continue
        one = members_of(meta, start)
        member_cfg = configs[start] if configs is not None else cfg
        if bool(active[start]):
            obj = MetaObjective(policy, MetaBatch(*members_of(data, start)), member_cfg)
            one, loss, finite = trpo_step(obj, one, member_cfg, traced=traced)
        else:  # failed earlier: no step
            loss = torch.full((), float("nan"), device=active.device)
            finite = torch.zeros((), dtype=torch.bool, device=active.device)
        parts.append(({n: v[None] for n, v in one.items()}, loss[None], finite[None]))
    new_meta = {n: torch.cat([part[0][n] for part in parts]) for n in meta}
    return new_meta, torch.cat([p[1] for p in parts]), torch.cat([p[2] for p in parts])


def _batched_trpo_step(
    policy: GraphPolicy,
    mb: MetaBatch,
    meta: Params,
    cfg: MAMLConfig,
    knobs: dict[str, torch.Tensor],
    active: torch.Tensor,
) -> tuple[Params, torch.Tensor, torch.Tensor]:
    """:func:`population_trpo_step` with every member in one set of ``vmap`` kernels."""
    data = (mb.train, mb.grads, mb.valid, mb.valid_adv)
    lr = knobs["fast_lr"]
    loss, step, old, finite = vmap(partial(_direction, policy, cfg))(
        meta, data, lr, knobs["max_kl"], knobs["cg_damping"]
    )
    theta = vmap(flatten)(meta)
    values = vmap(partial(_line_values, policy, cfg))
    new_theta = theta.clone()
    pending = active & finite
    scale = torch.ones_like(lr)
    with torch.no_grad():
        for _ in range(cfg.ls_max_steps):
            if not bool(pending.any()):  # host decision, one per line-search round
                break
            candidate = theta - scale[:, None] * step
            new_loss, kl = values(vmap(unflatten)(candidate, meta), data, lr, old)
            accept = pending & accepts(new_loss, kl, loss, knobs["max_kl"])
            new_theta = torch.where(accept[:, None], candidate, new_theta)
            pending = pending & ~accept
            scale = scale * knobs["ls_backtrack"]
    return vmap(unflatten)(new_theta, meta), loss, finite
