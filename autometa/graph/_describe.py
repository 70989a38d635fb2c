"""A candidate graph on one line: what tables and CSV files show for a trial."""

from __future__ import annotations

from typing import Any

import networkx as nx

from autometa.graph._validate import INPUT, OUTPUT, ordered_inputs

__all__ = ["describe_graph"]

_SHORT = {INPUT: "in", OUTPUT: "out"}
_MERGE = {"concat": "cat", "sum": "sum"}


def describe_graph(graph: nx.DiGraph, max_chars: int | None = None) -> str:
    """The graph and its hyperparameters as one compact line.

    A chain reads left to right, ``in>l0:tanh64>l1:relu128(+res)>out``; any other graph is a
    node list in data-flow order, each node with its inputs (in edge order) and, when it has
    several, its merge: ``n0:elu128<in; n1:silu64<in,n0[cat]; out<n1,n0[sum]``. Ops drop a
    ``linear_`` prefix, widths follow them, ``(+res)`` marks a residual connection. The
    hyperparameters follow a ``|``.

    Args:
        graph: a candidate graph.
        max_chars: cut the line to this many characters, ending in an ellipsis (None: whole).

    Example:
        >>> from autometa.graph import mlp_graph
        >>> describe_graph(mlp_graph((64, 128), hyperparameters={"fast_lr": 0.1}))
        'in>l0:tanh64>l1:tanh128>out | fast_lr=0.1'
    """
    order = list(nx.topological_sort(graph))
    chain = all(graph.in_degree(n) <= 1 and graph.out_degree(n) <= 1 for n in order)
    if chain:
        text = ">".join(_node(graph, n) for n in order)
    else:
        parts = []
        for node in order:
            if node == INPUT:
                continue
            inputs = ",".join(_SHORT.get(u, str(u)) for u in ordered_inputs(graph, node))
            merge = ""
            if graph.in_degree(node) > 1:
                kind = graph.nodes[node].get("merge", "sum")
                merge = f"[{_MERGE.get(kind, kind)}]"
            parts.append(f"{_node(graph, node)}<{inputs}{merge}")
        text = "; ".join(parts)
    hyper = graph.graph.get("hyperparameters") or {}
    if hyper:
        text += " | " + " ".join(f"{k}={_value(v)}" for k, v in hyper.items())
    if max_chars is not None and len(text) > max_chars:
        text = text[: max(0, max_chars - 1)] + "…"
    return text


def _node(graph: nx.DiGraph, node: Any) -> str:
    """``name:opWIDTH`` (and ``(+res)``); the input and output nodes by their short names."""
    if node in _SHORT:
        return _SHORT[node]
    attrs = graph.nodes[node]
    op = str(attrs.get("op"))
    op = op.removeprefix("linear_")
    width = attrs.get("width")
    text = f"{node}:{op}{'' if width is None else width}"
    return text + ("(+res)" if attrs.get("residual") else "")


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
