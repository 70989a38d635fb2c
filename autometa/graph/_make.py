"""Constructors for common candidate graphs (baselines, tests, benchmarks)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx

from autometa.graph._validate import INPUT, OUTPUT

__all__ = ["mlp_graph"]


def mlp_graph(
    widths: Sequence[int],
    op: str = "linear_tanh",
    hyperparameters: Mapping[str, Any] | None = None,
    name: str = "mlp",
) -> nx.DiGraph:
    """The graph of a plain MLP: ``input -> l0 -> l1 -> ... -> output``.

    ``mlp_graph((64, 64))`` is the 2x64 tanh policy of pytorch-maml-rl's configs;
    ``mlp_graph((100, 100), "linear_relu")`` the 2x100 ReLU policy of Finn et al. 2017.
    """
    graph = nx.DiGraph(hyperparameters=dict(hyperparameters or {}), space=name)
    graph.add_node(INPUT, op=INPUT)
    prev = INPUT
    for i, width in enumerate(widths):
        graph.add_node(f"l{i}", op=op, width=int(width), merge="sum", residual=False)
        graph.add_edge(prev, f"l{i}", order=0)
        prev = f"l{i}"
    graph.add_node(OUTPUT, op=OUTPUT, merge="concat")
    graph.add_edge(prev, OUTPUT, order=0)
    return graph
