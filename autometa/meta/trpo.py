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

For large evaluations the loss, gradient and products run as a traced program
(``autometa.meta.traced``): the same operations, but the forward pass through the inner step
and everything else that does not depend on ``v`` is done once per TRPO step, so each of the
CG products does only tangent and cotangent arithmetic (about half the work). On CUDA the
once-per-step part, the whole CG solve over the traced products and each line-search
evaluation are replayed as CUDA graphs (``autometa.meta.cuda_graphs``): the same kernels
without their launch cost.

Host synchronisation: one boolean per line-search step (the accept decision is inherently a
host decision). Everything else stays on the device.
"""

from __future__ import annotations

import logging
from functools import partial

import torch

from autometa.meta.config import MAMLConfig
from autometa.meta.cuda_graphs import captured
from autometa.meta.linalg import conjugate_gradient, fisher_vector_product, flatten, unflatten
from autometa.meta.maml import (
    MetaObjective,
    flatten_objective,
    loss_and_grad,
    unflatten_objective,
)
from autometa.meta.rollout import Outputs, Params
from autometa.meta.traced import discard_program, trpo_program

__all__ = [
    "TRACE_MIN_STEPS",
    "conjugate_gradient",
    "fisher_vector_product",
    "flatten",
    "line_search_values",
    "trpo_step",
    "unflatten",
]

log = logging.getLogger(__name__)

#: Post-adaptation transitions (summed over an evaluation's meta-iterations) from which
#: ``trpo_step`` uses the traced program by default. The paper's 2D navigation (40,000 per
#: iteration, 100 iterations) is far above; the tests' small evaluations stay eager.
TRACE_MIN_STEPS = 200_000


def line_search_values(
    obj: MetaObjective, params: Params, old: Outputs
) -> tuple[torch.Tensor, torch.Tensor]:
    """Surrogate loss and mean KL of the adapted policies at ``params`` (one line-search test).

    Every tensor it reads is an argument, so on CUDA one captured graph serves every
    line-search step of every meta-iteration.
    """
    flat, spec = flatten_objective(params, obj.mb, old)

    def evaluate(*tensors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        here, p, (o,) = unflatten_objective(obj.policy, obj.cfg, tensors, spec)
        out = here.outputs(p)
        return here.loss(out, o), here.kl(out, o)

    values = captured(obj.policy, ("line-search", str(spec)), evaluate, flat)
    return tuple(values) if values is not None else evaluate(*flat)


def _traced_solve(
    program, state: list[torch.Tensor], g: torch.Tensor, iters: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """CG with the traced products; on CUDA the whole solve is replayed as one CUDA graph."""

    def solve(*flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return conjugate_gradient(partial(program.product, list(flat[:-1])), flat[-1], iters)

    out = captured(program, ("cg", iters), solve, [*state, g])
    return tuple(out) if out is not None else solve(*state, g)


def trpo_step(
    obj: MetaObjective, meta: Params, cfg: MAMLConfig, traced: bool | None = None
) -> tuple[Params, torch.Tensor, torch.Tensor]:
    """One TRPO meta-update; returns ``(new_meta, loss_before, finite_flag)``.

    If no line-search step is accepted, the parameters stay as they were (reference code).

    Args:
        obj: the meta-objective of this meta-batch.
        meta: the current meta-parameters.
        cfg: the configuration (``max_kl``, CG and line-search settings).
        traced: compute the loss, gradient and products with the traced program of
            ``autometa.meta.traced`` (same operations, the forward pass done once per step
            instead of once per product); False runs them eagerly. None (default) traces
            when the evaluation is large enough to repay the one-off trace (about a second):
            at least ``TRACE_MIN_STEPS`` post-adaptation transitions over all
            ``cfg.meta_iterations``.
    """
    if traced is None:
        traced = obj.mb.valid.env_steps * cfg.meta_iterations >= TRACE_MIN_STEPS
    program = trpo_program(obj, meta, flatten(meta)) if traced else None
    if program is not None:
        try:
            loss, g_flat, old, state = program.prepare(meta, obj.mb, flatten(meta))
        except torch.OutOfMemoryError:
            raise
        except RuntimeError as exc:
            if program.runs:  # it ran before with these shapes: not a tracing problem
                raise
            log.warning(
                "the traced TRPO program failed on its first run, using the eager products "
                "for this policy: %s",
                exc,
            )
            discard_program(obj, meta, flatten(meta))
            program = None
    if program is not None:
        program.runs += 1
        direction, h_direction = _traced_solve(program, state, g_flat, cfg.cg_iters)
    else:
        loss, g, old, vjp_fn = loss_and_grad(obj, meta)
        g_flat = flatten(g)
        fvp = fisher_vector_product(obj, meta, old, vjp_fn, cfg.cg_damping)
        direction, h_direction = conjugate_gradient(fvp, g_flat, cfg.cg_iters)
    shs = 0.5 * (direction @ h_direction)
    step = direction * torch.sqrt(cfg.max_kl / shs.clamp_min(1e-30))
    finite = torch.isfinite(loss) & torch.isfinite(step).all()
    theta = flatten(meta)
    scale = 1.0
    with torch.no_grad():
        for _ in range(cfg.ls_max_steps):
            candidate = unflatten(theta - scale * step, meta)
            new_loss, kl = line_search_values(obj, candidate, old)
            accept = finite & (new_loss < loss) & (kl < cfg.max_kl) & torch.isfinite(kl)
            if bool(accept):  # host decision, one per line-search step
                return {n: t.clone() for n, t in candidate.items()}, loss, finite
            scale *= cfg.ls_backtrack
    return meta, loss, finite
