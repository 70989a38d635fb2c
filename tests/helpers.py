"""Hand-built candidate graphs shared by the tests."""

from __future__ import annotations

import networkx as nx

from autometa.graph import mlp_graph


def chain_graph(widths=(8, 4), op="linear_tanh", hyper=None) -> nx.DiGraph:
    """input -> l0 -> l1 -> ... -> output."""
    return mlp_graph(widths, op, hyper, name="test")


def diamond_graph(merge="concat", residual=False) -> nx.DiGraph:
    """input -> a, b (different widths) -> c (merge) -> output, plus b -> output."""
    graph = nx.DiGraph(hyperparameters={"fast_lr": 0.1}, space="test")
    graph.add_node("input", op="input")
    graph.add_node("a", op="linear_tanh", width=8, merge="sum", residual=False)
    graph.add_node("b", op="linear_relu", width=5, merge="sum", residual=False)
    graph.add_node("c", op="linear_elu", width=6, merge=merge, residual=residual)
    graph.add_node("output", op="output", merge="concat")
    graph.add_edge("input", "a", order=0)
    graph.add_edge("input", "b", order=0)
    graph.add_edge("a", "c", order=0)
    graph.add_edge("b", "c", order=1)
    graph.add_edge("c", "output", order=0)
    graph.add_edge("b", "output", order=1)
    return graph
