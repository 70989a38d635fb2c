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

Host synchronisation: one boolean per line-search step (the accept decision is inherently a
host decision). Everything else stays on the device.
"""

from __future__ import annotations

import torch

from autometa._maml_config import MAMLConfig
from autometa.meta.backend import BACKENDS, backend_for
from autometa.meta.cuda_graphs import captured
from autometa.meta.linalg import flatten, unflatten
from autometa.meta.maml import MetaObjective, flatten_objective, unflatten_objective
from autometa.meta.rollout import Outputs, Params

__all__ = [
    "accepts",
    "line_search_values",
    "trpo_step",
    "trust_region_step",
]


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
        return here.loss_and_kl(p, o)

    values = captured(obj.policy, ("line-search", str(spec)), evaluate, flat)
    return tuple(values) if values is not None else evaluate(*flat)


def trust_region_step(
    loss: torch.Tensor,
    direction: torch.Tensor,
    h_direction: torch.Tensor,
    max_kl: float | torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The full step ``sqrt(2 max_kl / x^T H x) x`` along the CG direction ``x``, and whether
    the loss and the step are finite: ``(step, finite)``.

    One member's step of a population (``autometa.meta._population_step``, under ``vmap``
    with its own ``max_kl``) is this same computation.
    """
    shs = 0.5 * (direction @ h_direction)
    step = direction * torch.sqrt(max_kl / shs.clamp_min(1e-30))
    return step, torch.isfinite(loss) & torch.isfinite(step).all()


def accepts(
    new_loss: torch.Tensor, kl: torch.Tensor, loss: torch.Tensor, max_kl: float | torch.Tensor
) -> torch.Tensor:
    """A line-search candidate is accepted: the surrogate improves, the KL is finite and
    within ``max_kl``."""
    return (new_loss < loss) & (kl < max_kl) & torch.isfinite(kl)


def trpo_step(
    obj: MetaObjective, meta: Params, cfg: MAMLConfig, traced: bool | None = None
) -> tuple[Params, torch.Tensor, torch.Tensor]:
    """One TRPO meta-update; returns ``(new_meta, loss_before, finite_flag)``.

    If no line-search step is accepted, the parameters stay as they were (reference code).

    Args:
        obj: the meta-objective of this meta-batch.
        meta: the current meta-parameters.
        cfg: the configuration (``max_kl``, CG and line-search settings).
        traced: the backend of the direction (``autometa.meta.backend``): the traced
            program (True; same operations, the forward pass done once per step instead of
            once per product), the eager functions (False), or by size (None, the default:
            traced from ``TRACE_MIN_STEPS`` post-adaptation transitions per evaluation).
    """
    loss, _, old, direction, h_direction = BACKENDS.get(backend_for(traced, obj, cfg))(
        obj, meta, cfg
    )
    step, finite = trust_region_step(loss, direction, h_direction, cfg.max_kl)
    theta = flatten(meta)
    scale = 1.0
    with torch.no_grad():
        for _ in range(cfg.ls_max_steps):
            candidate = unflatten(theta - scale * step, meta)
            new_loss, kl = line_search_values(obj, candidate, old)
            accept = finite & accepts(new_loss, kl, loss, cfg.max_kl)
            if bool(accept):  # host decision, one per line-search step
                return {n: t.clone() for n, t in candidate.items()}, loss, finite
            scale *= cfg.ls_backtrack
    return meta, loss, finite
