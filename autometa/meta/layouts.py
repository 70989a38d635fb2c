"""Rewrites of a traced graph that keep every value bit for bit: layouts, not arithmetic.

A graph traced with fake tensors (``autometa.meta.traced``) records the strides PyTorch's
*meta* kernels give, and autograd's formulas add layout copies and transposes that the eager
code pays for too. These passes change where values live, never how they are computed:

- :func:`layout_free`: stride-dependent ``view`` s become ``reshape`` s, so the graph runs
  on the real kernels' layouts (which can differ from the meta kernels');
- :func:`contiguous_clones`: layout copies of intermediate values become ``contiguous``,
  a copy only when the value is not contiguous already.

No pass changes the layout that arithmetic runs in. One that did (a batched product read only
transposed, ``bmm(a, b).transpose(1, 2)``, computed as ``bmm(b^T, a^T)``, so that the
element-wise chain after it ran on contiguous tensors) made the 2x64 tanh policy's product
about 20% faster on one CPU thread at the paper's size, and its first product was bitwise the
unrewritten one's; yet from the second meta-iteration the curve differed in the last bits.
"""

from __future__ import annotations

import torch
import torch.fx as fx

__all__ = ["contiguous_clones", "layout_free"]

_VIEWS = (torch.ops.aten.view.default, torch.ops.aten._unsafe_view.default)


def _written_storages(graph: fx.Graph) -> set[fx.Node]:
    """Nodes that share memory with a tensor some in-place (schema-mutable) op writes to.

    Aliasing follows the op schemas: an op whose result is annotated as an alias of an
    argument (``view``, ``transpose``, ``expand``, ``fill_``, ...) joins that argument's storage.
    """
    parent: dict[fx.Node, fx.Node] = {}

    def root(node: fx.Node) -> fx.Node:
        while parent.get(node, node) is not node:
            node = parent[node]
        return node

    written = []
    for node in graph.nodes:
        schema = getattr(node.target, "_schema", None)
        if node.op != "call_function" or schema is None:
            continue
        for arg, value in zip(schema.arguments, node.args):
            if not isinstance(value, fx.Node):
                continue
            if arg.alias_info is None:
                if node.target in _VIEWS and value is node.args[0]:
                    parent[root(node)] = root(value)  # _unsafe_view aliases unannotated
                continue
            if arg.alias_info.is_write:
                written.append(value)
            if node.target in _VIEWS or any(r.alias_info is not None for r in schema.returns):
                parent[root(node)] = root(value)
    roots = {root(n) for n in written}
    return {n for n in graph.nodes if root(n) in roots}


def layout_free(gm: fx.GraphModule) -> int:
    """Turn the stride-dependent views of a traced graph into reshapes; returns how many.

    A ``view`` in a graph traced with fake tensors encodes the *meta* kernels' strides, which
    can differ from the real kernels' (see the module docstring). ``reshape`` takes the view
    when the real strides permit it and copies otherwise, so the values are the same on every
    layout. Views that are mutated in place (or of tensors that are) keep their aliasing and
    are left alone.
    """
    graph = gm.graph
    written = _written_storages(graph)
    changed = 0
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target not in _VIEWS or node in written:
            continue
        node.target = torch.ops.aten.reshape.default
        changed += 1
    if changed:
        graph.lint()
        gm.recompile()
    return changed


_ALIASING = {
    torch.ops.aten.reshape.default,
    torch.ops.aten.view.default,
    torch.ops.aten._unsafe_view.default,
    torch.ops.aten.expand.default,
    torch.ops.aten.transpose.int,
    torch.ops.aten.t.default,
    torch.ops.aten.alias.default,
    torch.ops.aten.slice.Tensor,
    torch.ops.aten.select.int,
    torch.ops.aten.unsqueeze.default,
    torch.ops.aten.squeeze.dim,
    torch.ops.aten.permute.default,
}


def contiguous_clones(gm: fx.GraphModule) -> int:
    """Turn the layout copies of a graph's own intermediate values into ``contiguous``;
    returns how many.

    Autograd's backward formulas clone a gradient to a contiguous layout before a
    ``reshape`` (``clone(x, memory_format=contiguous_format)``), and a traced graph keeps
    every such clone. ``x.contiguous()`` is ``x`` itself when it already has that layout and
    the same copy otherwise, so every consumer reads the same values in the same layout. In
    the 2x64 tanh policy's product at the paper's size the four such gradients are not
    contiguous when the product runs (they inherit the transposed layout of a batched
    product's result through the element-wise arithmetic after it), so they are still
    copied there; other graphs' clones of contiguous values cost nothing now. Only clones of
    values computed inside the graph (not of its inputs, which on CUDA live in a captured
    graph's static buffers) that nothing writes in place are rewritten.
    """
    graph = gm.graph
    written = _written_storages(graph)
    changed = 0
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target is not torch.ops.aten.clone.default:
            continue
        if node.kwargs.get("memory_format", torch.contiguous_format) != torch.contiguous_format:
            continue
        source = node.args[0]
        while isinstance(source, fx.Node) and source.target in _ALIASING:
            source = source.args[0]
        if not isinstance(source, fx.Node) or source.op != "call_function":
            continue
        if node in written or node.args[0] in written:
            continue
        node.target = torch.ops.aten.contiguous.default
        node.kwargs = {}
        changed += 1
    if changed:
        graph.lint()
        gm.recompile()
    return changed
