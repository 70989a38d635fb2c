"""The part shared by every space kind: node templates, their dimensions, graph assembly.

A space's graph is a list of :class:`NodeTemplate` (hidden nodes in data-flow order), each
optionally gated by a condition such as ``("nodes", ">=", 3)``. Chain, DAG and explicit
spaces differ only in how the templates are written; this module turns templates into
dimensions, decision values into graphs, and graphs back into decision values.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from math import comb
from typing import Any

import networkx as nx

from autometa.errors import GraphValidationError
from autometa.space._fields import Field
from autometa.space.dims import Condition, Dimension, condition_holds

__all__ = ["NodeTemplate", "Body", "subset_choices", "MAX_SUBSETS", "INPUT", "OUTPUT"]

INPUT = "input"
OUTPUT = "output"
MAX_SUBSETS = 512
_FIELDS = ("op", "width", "inputs", "merge", "residual")


def count_subsets(n: int, low: int, high: int) -> int:
    """Number of subsets of ``n`` candidates with ``low..high`` members."""
    return sum(comb(n, k) for k in range(low, min(high, n) + 1))


def subset_choices(candidates: Sequence[str], low: int, high: int) -> list[str]:
    """Every subset of ``candidates`` (kept in their order) of size ``low..high``, ``+``-joined.

    Smaller subsets come first: ``[input, n0]`` with 1..2 gives ``input, n0, input+n0``.
    """
    return [
        "+".join(combo)
        for size in range(low, min(high, len(candidates)) + 1)
        for combo in itertools.combinations(candidates, size)
    ]


def _and(gate: Condition | None, *clauses: tuple[str, str, Any]) -> Condition | None:
    joined = (*(gate or ()), *clauses)
    return joined or None


@dataclass(frozen=True)
class NodeTemplate:
    """One hidden node of a space and the fields that may vary.

    Attributes:
        name: node name in the graph (``l0``, ``n3``, ``trunk``).
        op: field of the op (or of the activation, see ``op_key``/``op_map``).
        width: field of the width; None when no op of the node has a width.
        inputs: field of ``+``-joined input lists (``input+n0``).
        merge: field of the merge mode.
        residual: field of the residual flag.
        gate: condition under which the node exists (None: always).
        op_key: the decision name of the op field (``op``, or ``activation`` in chains).
        op_map: value of the op field -> op name, when they differ (chain activations).
        width_ops: op-field values whose op has a width.
    """

    name: str
    op: Field
    width: Field | None
    inputs: Field
    merge: Field
    residual: Field
    gate: Condition | None = None
    op_key: str = "op"
    op_map: tuple[tuple[Any, str], ...] = ()
    width_ops: tuple[Any, ...] = ()

    def op_name(self, value: Any) -> str:
        """The op name of an op-field value."""
        return dict(self.op_map).get(value, value)

    def op_value(self, op: str) -> Any:
        """The op-field value of an op name (inverse of :meth:`op_name`)."""
        for value, name in self.op_map:
            if name == op:
                return value
        return op


@dataclass
class Body:
    """The graph part of a space: templates, an optional node-count field, extra outputs.

    Attributes:
        kind: ``chain``, ``dag`` or ``explicit``.
        templates: hidden nodes in data-flow order.
        count_name: decision name of the node count (``layers``/``nodes``), None if none.
        count: field of the node count (None for explicit templates).
        outputs: nodes that always feed the head, besides those nothing consumes.
        spec: the normalised ``graph`` section (JSON-safe).
    """

    kind: str
    templates: list[NodeTemplate]
    count_name: str | None
    count: Field | None
    outputs: tuple[str, ...]
    spec: dict[str, Any]
    _dims: dict[str, dict[str, Dimension | None]] = field(default_factory=dict, repr=False)

    def dimensions(self) -> list[Dimension]:
        """The graph's dimensions: the count first, then each node's in template order."""
        dims: list[Dimension] = []
        if self.count is not None and self.count_name is not None:
            count_dim = self.count.dimension(self.count_name)
            if count_dim is not None:
                dims.append(count_dim)
        for t in self.templates:
            node = self._node_dims(t)
            self._dims[t.name] = node
            dims.extend(d for d in node.values() if d is not None)
        return dims

    def _node_dims(self, t: NodeTemplate) -> dict[str, Dimension | None]:
        op = t.op.dimension(f"{t.name}.{t.op_key}", t.gate)
        width = None
        if t.width is not None:
            cond = t.gate
            if op is not None and len(t.width_ops) < len(t.op.options()):
                cond = _and(t.gate, (op.name, "in", t.width_ops))
            width = t.width.dimension(f"{t.name}.width", cond)
        inputs = t.inputs.dimension(f"{t.name}.inputs", t.gate)
        options = t.inputs.options()
        multi = tuple(s for s in options if "+" in s)
        merge = None
        if multi:
            cond = t.gate
            if inputs is not None and len(multi) < len(options):
                cond = _and(t.gate, (inputs.name, "in", multi))
            merge = t.merge.dimension(f"{t.name}.merge", cond)
        residual = t.residual.dimension(f"{t.name}.residual", t.gate)
        return {"op": op, "width": width, "inputs": inputs, "merge": merge, "residual": residual}

    def _value(self, t: NodeTemplate, key: str, values: Mapping[str, Any]) -> Any:
        dim = self._dims[t.name][key]
        fld = getattr(t, key)
        if dim is None:
            return fld.constant
        return values[dim.name] if dim.active(values) else dim.default

    def build(self, values: Mapping[str, Any], hyperparameters: dict, space: str) -> nx.DiGraph:
        """The candidate graph for normalised values of the active dimensions."""
        graph = nx.DiGraph(hyperparameters=hyperparameters, space=space)
        graph.add_node(INPUT, op=INPUT)
        consumed: set[str] = set()
        hidden: list[str] = []
        for t in self.templates:
            if not condition_holds(t.gate, values):
                continue
            op_value = self._value(t, "op", values)
            op = t.op_name(op_value)
            width = None
            if t.width is not None and op_value in t.width_ops:
                width = self._value(t, "width", values)
            inputs = self._value(t, "inputs", values).split("+")
            graph.add_node(
                t.name,
                op=op,
                width=width,
                merge=self._value(t, "merge", values),
                residual=bool(self._value(t, "residual", values)),
            )
            for order, source in enumerate(inputs):
                graph.add_edge(source, t.name, order=order)
            consumed.update(inputs)
            hidden.append(t.name)
        graph.add_node(OUTPUT, op=OUTPUT, merge="concat")
        heads = [n for n in hidden if n not in consumed or n in self.outputs]
        for order, source in enumerate(heads):
            graph.add_edge(source, OUTPUT, order=order)
        return graph

    def read(self, graph: nx.DiGraph) -> dict[str, Any]:
        """Decision values of every graph dimension, read off ``graph`` (no domain check).

        Raises:
            GraphValidationError: when the graph's hidden nodes are not this space's nodes.
        """
        names = [t.name for t in self.templates]
        hidden = [n for n in graph.nodes if n not in (INPUT, OUTPUT)]
        unknown = sorted(str(n) for n in hidden if n not in names)
        if unknown:
            raise GraphValidationError(
                f"graph is not in the space: unknown hidden nodes {unknown} "
                f"(the space's nodes are {names})"
            )
        values: dict[str, Any] = {}
        if self.count_name is not None:
            values[self.count_name] = len(hidden)
        rank = {INPUT: -1, **{n: i for i, n in enumerate(names)}}
        for t in self.templates:
            if t.name not in graph:
                continue
            attrs = graph.nodes[t.name]
            preds = graph.pred[t.name]
            ordered = sorted(preds, key=lambda u: (preds[u].get("order", 0), rank.get(u, 0)))
            by_rank = sorted(preds, key=lambda u: rank.get(u, 0))
            inputs = "+".join(ordered)
            if inputs not in t.inputs.options():
                inputs = "+".join(by_rank)  # edge order is not part of the function class
            read = {
                "op": t.op_value(attrs.get("op")),
                "width": attrs.get("width"),
                "inputs": inputs,
                "merge": attrs.get("merge", "sum"),
                "residual": attrs.get("residual", False),
            }
            for key in _FIELDS:
                dim = self._dims[t.name][key]
                if dim is not None:
                    values[dim.name] = read[key]
        return values
