"""Structural rules every candidate graph must satisfy, and width resolution."""

from __future__ import annotations

import networkx as nx

from autometa.errors import GraphValidationError, UnknownNameError
from autometa.ops import OPS

__all__ = ["INPUT", "OUTPUT", "MERGES", "validate_graph", "ordered_inputs", "resolve_widths"]

INPUT = "input"
"""Name and op of the observation node every candidate graph has."""
OUTPUT = "output"
"""Name and op of the node that feeds the policy head."""
MERGES = ("sum", "concat")
"""How a node may combine its inputs: zero-padded sum or concatenation in edge order."""


def ordered_inputs(graph: nx.DiGraph, node: str) -> list[str]:
    """The predecessors of ``node`` in their data-flow order (edge ``order``, then name)."""
    preds = graph.pred[node]
    return sorted(preds, key=lambda u: (preds[u].get("order", 0), str(u)))


def _structure_problems(graph: nx.DiGraph) -> list[str]:
    problems: list[str] = []
    for name in (INPUT, OUTPUT):
        if name not in graph:
            problems.append(f"missing the {name!r} node")
        elif graph.nodes[name].get("op") != name:
            problems.append(
                f"node {name!r} must have op={name!r}, got {graph.nodes[name].get('op')!r}"
            )
    if problems:
        return problems
    if graph.in_degree(INPUT):
        problems.append(f"node 'input' has incoming edges from {sorted(graph.pred[INPUT])}")
    if graph.out_degree(OUTPUT):
        problems.append(f"node 'output' has outgoing edges to {sorted(graph.succ[OUTPUT])}")
    if not graph.in_degree(OUTPUT):
        problems.append("node 'output' has no inputs: nothing feeds the policy head")
    for node, attrs in graph.nodes(data=True):
        if node in (INPUT, OUTPUT):
            continue
        op = attrs.get("op")
        if op in (INPUT, OUTPUT):
            problems.append(f"node {node!r}: op {op!r} is reserved for the {op!r} node")
            continue
        try:
            spec = OPS.get(op)
        except (UnknownNameError, TypeError):
            problems.append(f"node {node!r}: {OPS.unknown_message(op)}")
            continue
        width = attrs.get("width")
        if spec.has_width:
            if isinstance(width, bool) or not isinstance(width, int) or width <= 0:
                problems.append(
                    f"node {node!r}: op {op!r} needs a positive int width, got {width!r}"
                )
        elif width is not None:
            problems.append(f"node {node!r}: op {op!r} keeps its input width; width must be None")
        if attrs.get("merge", "sum") not in MERGES:
            problems.append(
                f"node {node!r}: merge must be one of {list(MERGES)}, got {attrs.get('merge')!r}"
            )
        if not isinstance(attrs.get("residual", False), bool):
            problems.append(
                f"node {node!r}: residual must be a bool, got {attrs.get('residual')!r}"
            )
    if not nx.is_directed_acyclic_graph(graph):
        cycle = [u for u, _ in nx.find_cycle(graph)]
        problems.append(f"the graph has a cycle through {cycle}")
        return problems
    reachable = nx.descendants(graph, INPUT) | {INPUT}
    reaching = nx.ancestors(graph, OUTPUT) | {OUTPUT}
    for node in graph.nodes:
        if node not in reachable:
            problems.append(f"node {node!r} is not reachable from 'input'")
        if node not in reaching:
            problems.append(f"node {node!r} does not reach 'output' (the policy head)")
    return problems


def resolve_widths(graph: nx.DiGraph, input_width: int) -> dict[str, tuple[int, int]]:
    """Map every node to ``(merged input width, output width)`` for a given observation size.

    ``sum`` zero-pads its inputs to the widest one; ``concat`` adds their widths.
    """
    widths: dict[str, tuple[int, int]] = {}
    for node in nx.topological_sort(graph):
        attrs = graph.nodes[node]
        if node == INPUT:
            widths[node] = (input_width, input_width)
            continue
        ins = [widths[u][1] for u in ordered_inputs(graph, node)]
        merged = sum(ins) if attrs.get("merge", "sum") == "concat" or node == OUTPUT else max(ins)
        if node == OUTPUT:
            widths[node] = (merged, merged)
        else:
            widths[node] = (merged, OPS.get(attrs["op"]).out_width(merged, attrs.get("width")))
    return widths


def validate_graph(graph: nx.DiGraph) -> None:
    """Check a candidate graph against the rules of ``docs/design.md``.

    Raises:
        GraphValidationError: listing every broken rule (cycle, dead node, unknown op, bad width).
    """
    if not isinstance(graph, nx.DiGraph) or graph.is_multigraph():
        raise GraphValidationError(f"expected a networkx.DiGraph, got {type(graph).__name__}")
    problems = _structure_problems(graph)
    if problems:
        head = f"invalid candidate graph ({len(problems)} problem{'s' * (len(problems) > 1)}):"
        raise GraphValidationError("\n  ".join([head, *problems]))
