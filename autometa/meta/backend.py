"""Where acceleration meets the algorithm: every member's TRPO direction, eager or traced.

The TRPO step (``autometa.meta.trpo``) needs, at the current meta-parameters of every member
of a program (every tensor with a leading member axis P; a candidate alone is P = 1), the
meta-loss, its gradient ``g``, the post-adaptation outputs and the CG solution of
``(H + damping I) x = g``, each member with its own step size and CG damping. A *backend*
computes those five things; the step itself (scale to the trust region, line search) is the
same eager code for every backend. Backends are registered by name in :data:`BACKENDS` and
called through :func:`direction`:

- ``"eager"``: one member's :func:`~autometa.meta.maml.loss_and_grad`,
  :func:`~autometa.meta.linalg.fisher_vector_product` and
  :func:`~autometa.meta.linalg.conjugate_gradient`, exactly as written, under ``vmap`` over
  the members;
- ``"traced"``: the same one-member functions traced once into one program, run under
  ``vmap`` and split into a once-per-step part and a per-product part
  (``autometa.meta.traced``), with conjugate gradient on ``(P, N)`` vectors and, on a GPU, the
  whole CG solve replayed as a CUDA graph; the same numbers, bit for bit (tested), with the
  forward pass through the inner step done once per step instead of once per product. A
  program that fails on its first run falls back to ``"eager"`` with a logged warning;
- ``"compiled"`` (opt-in: ``AUTOMETA_COMPILE=1`` in place of ``"traced"``): the traced
  program's parts compiled by inductor (``autometa.meta._compiled``), which fuses the
  element-wise chains between the matrix products; faster on a CPU but not bit-identical, and
  the first call of each shape compiles for a minute or more. Falls back to ``"traced"``.

The evaluator chooses (``MAMLEvaluator(traced=...)``, see :func:`backend_for`): traced from
:data:`TRACE_MIN_STEPS` post-adaptation transitions per member and evaluation, eager below,
where the one-off trace (a few seconds) would not pay for itself.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import torch
from torch.func import vmap

from autometa._maml_config import MAMLConfig
from autometa.meta._compiled import COMPILE_ENV, compiled_program, discard_compiled
from autometa.meta.cuda_graphs import captured
from autometa.meta.linalg import conjugate_gradient, fisher_vector_product, flatten
from autometa.meta.maml import MetaBatch, MetaObjective, loss_and_grad
from autometa.meta.members import members_of
from autometa.meta.rollout import Outputs, Params
from autometa.meta.traced import ProgramParts, TRPOProgram, discard_program, trpo_program
from autometa.policy import GraphPolicy
from autometa.registry import Registry

__all__ = [
    "BACKENDS",
    "TRACE_MIN_STEPS",
    "Backend",
    "Direction",
    "backend_for",
    "compiled_direction",
    "compiled_steps",
    "direction",
    "eager_direction",
    "traced_direction",
    "traced_solve",
]

log = logging.getLogger(__name__)

#: Post-adaptation transitions of one member (summed over an evaluation's meta-iterations)
#: from which the evaluator uses the ``"traced"`` backend by default. The paper's 2D
#: navigation (40,000 per iteration, 100 iterations) is far above; the tests' small
#: evaluations stay eager.
TRACE_MIN_STEPS = 200_000


class Direction(NamedTuple):
    """What a backend computes for one TRPO step, every field with the leading member axis.

    Attributes:
        loss: the meta-loss at the current parameters, ``(P,)``.
        grad: its gradient, flat, ``(P, N)``.
        old: the post-adaptation outputs at the current parameters (detached).
        direction: the CG solution ``x`` of ``(H + damping I) x = grad``, ``(P, N)``.
        h_direction: ``(H + damping I) x``, ``(P, N)``.
    """

    loss: torch.Tensor
    grad: torch.Tensor
    old: Outputs
    direction: torch.Tensor
    h_direction: torch.Tensor


def traced_solve(
    program: ProgramParts, state: list[torch.Tensor], g: torch.Tensor, iters: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """CG with the traced products; on CUDA the whole solve is replayed as one CUDA graph."""

    def solve(*flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return conjugate_gradient(partial(program.product, list(flat[:-1])), flat[-1], iters)

    out = captured(program, ("cg", iters), solve, [*state, g])
    return tuple(out) if out is not None else solve(*state, g)


Backend = Callable[
    [GraphPolicy, MAMLConfig, Params, MetaBatch, torch.Tensor, torch.Tensor], Direction
]


def _one_member(policy, cfg, meta, data, lr, damping):
    """One member's direction quantities: ``(loss, flat grad, old, x, (H + damping I) x)``."""
    train, grads, valid, valid_adv = data
    obj = MetaObjective(policy, MetaBatch(list(train), list(grads), valid, valid_adv), cfg, lr)
    loss, g, old, vjp_fn = loss_and_grad(obj, meta)
    g_flat = flatten(g)
    fvp = fisher_vector_product(obj, meta, old, vjp_fn, damping)
    direction, h_direction = conjugate_gradient(fvp, g_flat, cfg.cg_iters)
    return loss, g_flat, old, direction, h_direction


def eager_direction(
    policy: GraphPolicy,
    cfg: MAMLConfig,
    meta: Params,
    mb: MetaBatch,
    lr: torch.Tensor,
    damping: torch.Tensor,
) -> Direction:
    """Every member's direction from the eager functions, the one-member code under ``vmap``
    (for a single member, that code itself).

    Args:
        policy: the members' (shared) policy module.
        cfg: the shared configuration (``cg_iters``, ``first_order``, ``meta_learner``, ...).
        meta: meta-parameters, every tensor ``(P, ...)``.
        mb: the members' meta-batches, every tensor with the leading ``P``.
        lr: ``(P,)`` inner step size per member (unused under Meta-SGD).
        damping: ``(P,)`` CG damping per member.

    Returns:
        :class:`Direction` with a leading member axis on every field.
    """
    data = (mb.train, mb.grads, mb.valid, mb.valid_adv)
    if lr.shape[0] == 1:  # one member: its own code, without vmap's batched kernels
        inputs = members_of((meta, data, lr, damping), 0)
        loss, g, old, x, hx = members_of(_one_member(policy, cfg, *inputs), None)
    else:
        loss, g, old, x, hx = vmap(partial(_one_member, policy, cfg))(meta, data, lr, damping)
    return Direction(loss, g, tuple(old), x, hx)


def traced_direction(
    policy: GraphPolicy,
    cfg: MAMLConfig,
    meta: Params,
    mb: MetaBatch,
    lr: torch.Tensor,
    damping: torch.Tensor,
) -> Direction:
    """:func:`eager_direction` from the traced member program (``vmap`` of the
    one-member program, split once-per-step / per-product; CG on ``(P, N)`` vectors).

    Falls back to :func:`eager_direction`, with one logged warning, when the policy
    cannot be traced or the program fails on its first run.
    """
    args = (meta, mb, lr, damping, flatten(meta, start=1))
    program = trpo_program(policy, cfg, args)
    if program is None:
        return eager_direction(policy, cfg, meta, mb, lr, damping)

    def fall_back(exc: Exception) -> Direction:
        log.warning(
            "the traced TRPO program failed on its first run, using the eager products "
            "for this policy: %s",
            exc,
        )
        discard_program(policy, cfg, args)
        return eager_direction(policy, cfg, meta, mb, lr, damping)

    return _run_program(program, meta, mb, lr, damping, cfg.cg_iters, RuntimeError, fall_back)


_compiled_steps = 0


def compiled_steps() -> int:
    """TRPO steps this process has taken with a compiled program (which rounds differently
    from the other backends): an evaluation whose count grew records ``trpo_compiled``."""
    return _compiled_steps


def compiled_direction(
    policy: GraphPolicy,
    cfg: MAMLConfig,
    meta: Params,
    mb: MetaBatch,
    lr: torch.Tensor,
    damping: torch.Tensor,
) -> Direction:
    """:func:`traced_direction` with the program's parts compiled by inductor
    (``autometa.meta._compiled``: faster on a CPU, not bit-identical). Falls back to the traced
    program, with one logged warning, when compiling or the first run fails."""
    args = (meta, mb, lr, damping, flatten(meta, start=1))
    traced = trpo_program(policy, cfg, args)
    program = compiled_program(traced) if traced is not None else None
    if program is None:
        return traced_direction(policy, cfg, meta, mb, lr, damping)

    failed: list[Exception] = []

    def fall_back(exc: Exception) -> Direction:
        log.warning("compiling the TRPO program failed, using the traced program: %s", exc)
        discard_compiled(traced)
        failed.append(exc)
        return traced_direction(policy, cfg, meta, mb, lr, damping)

    result = _run_program(program, meta, mb, lr, damping, cfg.cg_iters, Exception, fall_back)
    if not failed:
        global _compiled_steps
        _compiled_steps += 1
    return result


def _run_program(
    program: ProgramParts,
    meta: Params,
    mb: MetaBatch,
    lr: torch.Tensor,
    damping: torch.Tensor,
    iters: int,
    errors: type[Exception],
    fall_back: Callable[[Exception], Direction],
) -> Direction:
    """The direction from a split program; on a failure of its first run (one of ``errors``,
    out-of-memory excepted) the answer of ``fall_back`` instead: a program that ran before
    with these shapes does not fail for a tracing or compiling reason, so its errors rise."""
    try:
        loss, g, old, state = program.run_static(TRPOProgram.static_inputs(meta, mb, lr, damping))
        x, hx = traced_solve(program, state, g, iters)
    except torch.OutOfMemoryError:
        raise
    except errors as exc:
        if program.runs:
            raise
        return fall_back(exc)
    program.runs += 1
    return Direction(loss, g, old, x, hx)


BACKENDS: Registry[Backend] = Registry("TRPO backend")
"""How a TRPO step computes every member's direction, by name (``"eager"``, ``"traced"``,
``"compiled"``): ``fn(policy, cfg, meta, mb, lr, damping) -> Direction``, every field with a
leading ``P``."""
BACKENDS.register("eager", eager_direction)
BACKENDS.register("traced", traced_direction)
BACKENDS.register("compiled", compiled_direction)


def direction(
    name: str,
    policy: GraphPolicy,
    cfg: MAMLConfig,
    meta: Params,
    mb: MetaBatch,
    lr: torch.Tensor,
    damping: torch.Tensor,
) -> Direction:
    """Every member's TRPO direction with the :data:`BACKENDS` entry ``name``."""
    return BACKENDS.get(name)(policy, cfg, meta, mb, lr, damping)


def backend_for(
    traced: bool | None, mb: MetaBatch, cfg: MAMLConfig, compiled: bool = False
) -> str:
    """The backend's name: ``"traced"`` when asked, or by size when ``traced`` is None
    (one member's post-adaptation transitions times ``cfg.meta_iterations`` against
    :data:`TRACE_MIN_STEPS`), else ``"eager"``; ``"compiled"`` in place of ``"traced"`` when
    ``compiled`` is set (``MAMLEvaluator(compiled=True)``) or the environment sets
    ``AUTOMETA_COMPILE=1``."""
    if traced is None:
        traced = mb.valid.rewards[0].numel() * cfg.meta_iterations >= TRACE_MIN_STEPS
    if not traced:
        return "eager"
    return "compiled" if compiled or os.environ.get(COMPILE_ENV) == "1" else "traced"
