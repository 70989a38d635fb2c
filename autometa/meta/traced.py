"""The TRPO step's quantities as one traced program, split into a once-per-step part and a product.

Each conjugate-gradient iteration needs ``(H + damping I) v`` with ``H = J^T M J`` (see
``autometa.meta.trpo``). Computed eagerly, every product redoes the whole forward pass through
the inner step (the primal half of the ``jvp``), although only the tangents depend on ``v``.
Here the meta-loss, its gradient, the old outputs and the product are traced once into a
single ``torch.fx`` graph of aten operations (``make_fx`` with fake tensors: no arithmetic is
done while tracing), and the graph is split in two:

- the *static* part, every node that does not depend on ``v``: the loss, the gradient, the
  post-adaptation outputs, and the intermediate values the product reads (activations,
  inner-step gradients, their saved derivatives); run once per TRPO step;
- the *dynamic* part, the nodes that depend on ``v``: only tangent and cotangent arithmetic;
  run once per product.

Both parts execute exactly the operations the eager code executes, in the same order, so the
results are identical to the eager ``fisher_vector_product`` and ``loss_and_grad`` (the tests
check this). Every data tensor is a graph input, so one trace serves every meta-iteration of
an evaluation; it is cached per policy module and input signature (shapes, dtypes, devices,
configuration). A policy whose forward cannot be traced falls back to the eager products. On
CUDA the static part is replayed as a CUDA graph (``autometa.meta.cuda_graphs``).

Members. A cohort of a program (members of one architecture: seeds or variants, a single
candidate being a program of one) stacks every meta-parameter and meta-batch tensor on a
leading member axis ``P``. Its program (:func:`trpo_program`) traces one member's program,
with its step size and CG damping as tensor inputs, and then traces that graph of plain aten
operations again under ``vmap`` over the members (``make_fx`` of ``vmap`` of the
forward-mode product itself fails with fake tensors); the result is split the same way.
Member ``p``'s numbers are those of the eager one-member code under ``vmap``, bit for bit
(the tests check this).

Memory layouts. Tracing with fake tensors propagates strides through PyTorch's *meta*
kernels, and those do not always agree with the real kernels: the meta ``elu_backward``
returns a contiguous tensor, while the CPU and CUDA kernels keep the layout of their input
(for a cell whose activation feeds a transposed product, a channels-first layout). A
``view`` recorded because the fake tensor was contiguous then fails on the real, permuted
tensor ("view size is not compatible with input tensor's size and stride"). The traced graph
is therefore made layout-free before it is split: every ``view`` / ``_unsafe_view`` whose
result and input are never mutated in place becomes a ``reshape``, which is the same view
whenever the real strides allow one and a copy otherwise. Values are unchanged either way.
"""

from __future__ import annotations

import logging
import weakref
from functools import partial

import torch
import torch.fx as fx
from torch.func import vmap
from torch.fx.experimental.proxy_tensor import make_fx

from autometa._maml_config import MAMLConfig
from autometa.meta.cuda_graphs import captured
from autometa.meta.layouts import contiguous_clones, layout_free
from autometa.meta.linalg import fisher_vector_product, flatten
from autometa.meta.maml import (
    MetaBatch,
    MetaObjective,
    flatten_objective,
    loss_and_grad,
    unflatten_objective,
)
from autometa.meta.rollout import Outputs, Params
from autometa.policy import GraphPolicy

__all__ = [
    "ProgramParts",
    "TRPOProgram",
    "discard_program",
    "split_graph",
    "trpo_program",
]

log = logging.getLogger(__name__)

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_UNTRACEABLE = object()


_PRIMS = {
    torch.ops.prims.add.default: torch.ops.aten.add.Tensor,
    torch.ops.prims.sub.default: torch.ops.aten.sub.Tensor,
    torch.ops.prims.mul.default: torch.ops.aten.mul.Tensor,
    torch.ops.prims.div.default: torch.ops.aten.div.Tensor,
}


def _batchable(gm: fx.GraphModule) -> int:
    """Replace the elementwise ``prims`` ops of a trace (left by some decompositions) with their
    aten ops, which have ``vmap`` batching rules (a prim would run member by member); returns
    how many. Same arithmetic: both are the one elementwise kernel."""
    changed = 0
    for node in gm.graph.nodes:
        if node.op == "call_function" and node.target in _PRIMS:
            node.target = _PRIMS[node.target]
            changed += 1
    if changed:
        gm.recompile()
    return changed


def split_graph(gm: fx.GraphModule, dynamic: fx.Node) -> tuple[fx.GraphModule, fx.GraphModule]:
    """Split ``gm`` into the part independent of the placeholder ``dynamic`` and the rest.

    Args:
        gm: a traced graph whose output is a flat tuple of tensors; the last output is the only
            one that depends on ``dynamic``.
        dynamic: the placeholder that changes between calls.

    Returns:
        ``(static, product)``. ``static`` takes the other placeholders (in order) and returns
        ``gm``'s other outputs followed by the *boundary* values (static nodes read by dynamic
        ones); ``product`` takes the boundary values, then ``dynamic``, and returns the last
        output.
    """
    graph = gm.graph
    output = next(n for n in graph.nodes if n.op == "output")
    outputs = list(output.args[0])
    depends = {dynamic}
    for node in graph.nodes:
        if node.op != "output" and any(a in depends for a in node.all_input_nodes):
            depends.add(node)
    if any(o in depends for o in outputs[:-1]):
        raise ValueError("only the last output may depend on the dynamic input")
    boundary = [n for n in graph.nodes if n not in depends and any(u in depends for u in n.users)]

    static_graph, env = fx.Graph(), {}
    for node in graph.nodes:
        if node.op != "output" and node not in depends:
            env[node] = static_graph.node_copy(node, lambda x: env[x])
    static_graph.output(tuple(env[n] for n in outputs[:-1] + boundary))

    dynamic_graph, denv = fx.Graph(), {}
    for node in boundary:
        denv[node] = dynamic_graph.placeholder(f"b_{node.name}")
    for node in graph.nodes:
        if node in depends:
            denv[node] = dynamic_graph.node_copy(node, lambda x: denv[x])
    dynamic_graph.output(denv[outputs[-1]])

    parts = []
    for part in (static_graph, dynamic_graph):
        module = fx.GraphModule(gm, part)
        module.graph.eliminate_dead_code()
        module.recompile()
        parts.append(module)
    return parts[0], parts[1]


class ProgramParts:
    """A split program: the static part once per TRPO step, the dynamic part per product.

    Attributes:
        static: ``static(*inputs)`` -> the outputs but the product, then the state.
        dynamic: ``dynamic(*state, v)`` -> ``(H + damping I) v``.
        runs: TRPO steps this program has served (a program that fails on its first run is
            dropped for the slower way, with a warning).
    """

    def __init__(self, static, dynamic, num_outputs: int) -> None:
        self.static, self.dynamic, self.num_outputs = static, dynamic, num_outputs
        self.runs = 0

    def run_static(
        self, inputs: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, Outputs, list[torch.Tensor]]:
        """The static part on flat ``inputs`` (:func:`flatten_objective` of the trace's
        arguments but ``v``): ``(loss, flat gradient, old outputs, state)``."""
        values = captured(self, ("static",), self.static, inputs)  # CUDA-graph replay
        if values is None:
            values = self.static(*inputs)
        head = self.num_outputs - 1
        loss, g_flat, old = values[0], values[1], tuple(values[2:head])
        return loss, g_flat, old, list(values[head:])

    def product(self, state: list[torch.Tensor], v: torch.Tensor) -> torch.Tensor:
        """``(H + damping I) v`` from the state ``run_static`` returned."""
        return self.dynamic(*state, v)


class TRPOProgram(ProgramParts):
    """The traced TRPO quantities of one policy, configuration and meta-batch signature,
    for every member of a program (the member count is part of the signature).

    Attributes:
        reshapes: views of the trace made layout-free (``layouts.layout_free``).
        contiguous: the product's layout copies made conditional
            (``layouts.contiguous_clones``).
        runs: TRPO steps this program has served (the backend falls back to the eager
            products, with a warning, when a program fails on its first run).
    """

    def __init__(self, policy: GraphPolicy, cfg: MAMLConfig, args: tuple) -> None:
        """Trace with fake tensors shaped like ``args = (meta, mb, lr, damping, v)``, every
        tensor with a leading member axis, and split the graph.

        The one-member program (loss, flat gradient, old outputs and the damped
        Fisher-vector product of ``v``, its step size and damping being tensor inputs) is
        traced for member 0, then that graph of aten operations is traced under ``vmap`` (or,
        for one member, on its own: the same operations as the one-member code, without the
        batched kernels ``vmap`` turns a product into).
        """
        flat, self._spec = flatten_objective(*args)

        def program(*flat_inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
            obj, meta, (lr, damping, v) = unflatten_objective(policy, cfg, flat_inputs, self._spec)
            obj = MetaObjective(policy, obj.mb, cfg, lr)
            loss, g, old, vjp_fn = loss_and_grad(obj, meta)
            product = fisher_vector_product(obj, meta, old, vjp_fn, damping)(v)
            return (loss, flatten(g), *old, product)

        fake = dict(tracing_mode="fake", _allow_non_fake_inputs=True)
        # member 0 copied: tracing through views of the real inputs breaks a second trace
        one = make_fx(program, **fake)(*(t[0].clone() for t in flat))
        layout_free(one)
        _batchable(one)
        one.graph.eliminate_dead_code()  # forward-AD bookkeeping left by fake tracing
        one.recompile()
        if flat[0].shape[0] == 1:  # a group of one: the one-member graph itself, no vmap
            gm = make_fx(partial(_alone, one), **fake)(*flat)
        else:
            gm = make_fx(vmap(one), **fake)(*flat)
        gm.graph.eliminate_dead_code()
        gm.recompile()
        self.reshapes = layout_free(gm)
        placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
        static, dynamic = split_graph(gm, placeholders[-1])
        self.contiguous = contiguous_clones(dynamic)
        outputs = next(n for n in gm.graph.nodes if n.op == "output").args[0]
        super().__init__(static, dynamic, len(outputs))

    @staticmethod
    def static_inputs(meta: Params, mb: MetaBatch, *knobs: torch.Tensor) -> list[torch.Tensor]:
        """The static part's inputs: the meta-parameters, the meta-batch, the step sizes and
        the dampings, flattened."""
        return flatten_objective(meta, mb, *knobs)[0]


def _alone(one: fx.GraphModule, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``one`` (a one-member graph) on the only member of ``inputs``, the member axis kept."""
    return tuple(out[None] for out in one(*(t[0] for t in inputs)))


def _signature(cfg: MAMLConfig, args: tuple) -> tuple:
    """What a program is specialised to: the configuration (but the iteration count, which
    the program never reads, so that the rungs of a multi-fidelity search share it), the
    inputs' structure and their shapes, dtypes and devices."""
    flat, spec = flatten_objective(*args)
    shapes = tuple((t.shape, t.dtype, t.device) for t in flat)
    return cfg.replace(meta_iterations=0), str(spec), shapes


def trpo_program(policy: GraphPolicy, cfg: MAMLConfig, args: tuple) -> TRPOProgram | None:
    """The cached :class:`TRPOProgram` of ``policy`` for ``args = (meta, mb, lr, damping, v)``
    (every tensor with the leading member axis), traced on first use, or None when the
    policy's forward cannot be traced (the caller goes eager)."""
    per_policy = _CACHE.setdefault(policy, {})
    key = _signature(cfg, args)
    if key not in per_policy:
        try:
            per_policy[key] = TRPOProgram(policy, cfg, args)
        except Exception as exc:  # noqa: BLE001 - any tracing failure means: use eager products
            log.warning("tracing the TRPO program failed, using the eager products: %s", exc)
            per_policy[key] = _UNTRACEABLE
    program = per_policy[key]
    return None if program is _UNTRACEABLE else program


def discard_program(policy: GraphPolicy, cfg: MAMLConfig, args: tuple) -> None:
    """Mark ``policy``'s program of this signature untraceable (it failed to run)."""
    _CACHE.setdefault(policy, {})[_signature(cfg, args)] = _UNTRACEABLE
