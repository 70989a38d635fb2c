"""Round trips of candidate graphs through node-link JSON and GraphML."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import networkx as nx
from networkx.readwrite import json_graph

__all__ = ["to_json", "from_json", "to_graphml", "from_graphml", "graph_equal"]

_FORMAT = "autometa.graph/1"


def _plain(value: Any) -> Any:
    """Turn numpy scalars and tuples into JSON-native values."""
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def to_json(graph: nx.DiGraph) -> dict[str, Any]:
    """A JSON-safe node-link dict of the graph (``json.dumps`` it to store it)."""
    data = json_graph.node_link_data(graph, edges="edges")
    data = _plain(data)
    data["format"] = _FORMAT
    return data


def from_json(data: dict[str, Any] | str) -> nx.DiGraph:
    """Rebuild a graph from :func:`to_json` output (a dict or its JSON text)."""
    if isinstance(data, str):
        data = json.loads(data)
    data = {k: v for k, v in data.items() if k != "format"}
    graph = json_graph.node_link_graph(data, directed=True, multigraph=False, edges="edges")
    return nx.DiGraph(graph)


def to_graphml(graph: nx.DiGraph, path: str | Path | None = None) -> str:
    """GraphML text of the graph (also written to ``path`` when given).

    GraphML has no null or dict types, so a ``None`` width is left out and the graph's
    hyperparameters travel as one JSON string attribute.
    """
    out = nx.DiGraph()
    for key, value in graph.graph.items():
        out.graph[f"json:{key}"] = json.dumps(_plain(value), sort_keys=True)
    for node, attrs in graph.nodes(data=True):
        out.add_node(node, **{k: _plain(v) for k, v in attrs.items() if v is not None})
    for u, v, attrs in graph.edges(data=True):
        out.add_edge(u, v, **{k: _plain(x) for k, x in attrs.items() if x is not None})
    buffer = io.BytesIO()
    nx.write_graphml(out, buffer, named_key_ids=True)
    text = buffer.getvalue().decode()
    if path is not None:
        Path(path).write_text(text)
    return text


def from_graphml(source: str | Path) -> nx.DiGraph:
    """Read a graph written by :func:`to_graphml` (a path or the GraphML text itself)."""
    text = str(source)
    if not text.lstrip().startswith("<"):
        text = Path(source).read_text()
    raw = nx.read_graphml(io.BytesIO(text.encode()), node_type=str)
    graph = nx.DiGraph()
    for key, value in raw.graph.items():
        if key.startswith("json:"):
            graph.graph[key[5:]] = json.loads(value)
    for node, attrs in raw.nodes(data=True):
        attrs = dict(attrs)
        if attrs.get("op") not in ("input", "output"):
            attrs.setdefault("width", None)
        graph.add_node(node, **attrs)
    for u, v, attrs in raw.edges(data=True):
        graph.add_edge(u, v, **attrs)
    return graph


def graph_equal(a: nx.DiGraph, b: nx.DiGraph) -> bool:
    """True when two graphs have the same nodes, edges and attributes (names included)."""
    if _plain(dict(a.graph)) != _plain(dict(b.graph)):
        return False
    if dict(a.nodes(data=True)) != dict(b.nodes(data=True)):
        return False
    edges_a = {(u, v): d for u, v, d in a.edges(data=True)}
    edges_b = {(u, v): d for u, v, d in b.edges(data=True)}
    return edges_a == edges_b
