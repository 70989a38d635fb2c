"""The linear algebra of the TRPO step: flat parameter vectors, conjugate gradient and the
Fisher-vector product through the inner step.

The bottom of ``autometa.meta``'s outer loop: the eager TRPO step (``autometa.meta.trpo``) and
its traced program (``autometa.meta.traced``) both build on these functions, and neither is
imported here. The objective is duck-typed: anything with ``outputs(meta)`` and
``kl(out, old)`` (``autometa.meta.maml.MetaObjective``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.func import grad, jvp

from autometa.meta.rollout import Outputs, Params

__all__ = ["conjugate_gradient", "fisher_vector_product", "flatten", "unflatten"]


def flatten(tensors: Params, start: int = 0) -> torch.Tensor:
    """Concatenate a dict of tensors into one vector (dict order).

    With ``start=1`` every tensor keeps its leading member axis: tensors shaped ``(P, ...)``
    become one ``(P, N)`` matrix, row ``p`` being member ``p``'s flat vector.
    """
    if start == 0:
        return torch.cat([t.reshape(-1) for t in tensors.values()])
    return torch.cat([t.reshape(*t.shape[:start], -1) for t in tensors.values()], dim=start)


def unflatten(vector: torch.Tensor, like: Params, start: int = 0) -> Params:
    """Split ``vector`` back into tensors shaped like ``like`` (inverse of :func:`flatten`)."""
    out, offset = {}, 0
    for name, t in like.items():
        size = t[(0,) * start].numel() if start else t.numel()
        piece = vector[..., offset : offset + size]
        out[name] = piece.view_as(t) if start == 0 else piece.reshape(t.shape)
        offset += size
    return out


def conjugate_gradient(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    iters: int = 10,
    residual_tol: float = 1e-10,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve ``A x = b`` for symmetric positive-definite ``A`` given only ``matvec``.

    ``b`` is one vector ``(N,)`` or one per member ``(..., N)``: every row is its own system,
    solved with its own step sizes (``matvec`` maps ``(..., N)`` to ``(..., N)``). The dot
    products are sums over the last axis, so a row's numbers are the same whether the rows are
    solved here together or one by one under ``vmap``.

    Runs exactly ``iters`` iterations; once the squared residual falls below ``residual_tol``
    the updates are masked to zero (the reference code breaks out instead, a host decision).

    Returns:
        ``(x, A x)``; ``A x`` is ``b - r``, so the caller needs no extra product.
    """
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = (r * r).sum(-1)
    for _ in range(iters):
        active = rr >= residual_tol
        ap = matvec(p)
        pap = (p * ap).sum(-1).clamp_min(1e-30)
        alpha = torch.where(active, rr / pap, torch.zeros_like(rr))[..., None]
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = (r * r).sum(-1)
        beta = torch.where(active, rr_new / rr.clamp_min(1e-30), torch.zeros_like(rr))[..., None]
        p = torch.where(active[..., None], r + beta * p, p)
        rr = torch.where(active, rr_new, rr)
    return x, b - r


def fisher_vector_product(
    obj: Any, meta: Params, old: Outputs, vjp_fn: Callable, damping: float
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``v -> (H_KL + damping I) v`` at ``meta``, with ``H_KL`` in Gauss-Newton form (exact here).

    Args:
        obj: the meta-objective of this meta-batch.
        meta: the current meta-parameters (where ``old`` was computed).
        old: the post-adaptation outputs at ``meta`` (detached).
        vjp_fn: the ``vjp`` of ``obj.outputs`` at ``meta``.
        damping: CG damping.
    """

    def kl_grad(out: Outputs) -> Outputs:
        return grad(lambda o: obj.kl(o, old))(out)

    def product(v: torch.Tensor) -> torch.Tensor:
        _, jv = jvp(obj.outputs, (meta,), (unflatten(v, meta),))  # J v
        _, mjv = jvp(kl_grad, (old,), (jv,))  # M J v (KL Hessian in output space)
        (jtmjv,) = vjp_fn(mjv)  # J^T M J v
        return flatten(jtmjv) + damping * v

    return product
