"""Drawings of candidate graphs: DOT text always, PNG/SVG when matplotlib is present."""

from __future__ import annotations

from pathlib import Path

import networkx as nx

from autometa.graph._validate import INPUT, OUTPUT, ordered_inputs

__all__ = ["to_dot", "draw", "node_caption"]


def node_caption(graph: nx.DiGraph, node: str) -> str:
    """A short human label: name, op and width (and merge/residual when they matter)."""
    attrs = graph.nodes[node]
    if node in (INPUT, OUTPUT):
        return node
    parts = [str(node), str(attrs.get("op"))]
    if attrs.get("width") is not None:
        parts[-1] += f" ({attrs['width']})"
    if graph.in_degree(node) > 1:
        parts.append(f"merge={attrs.get('merge', 'sum')}")
    if attrs.get("residual"):
        parts.append("+residual")
    return "\\n".join(parts)


def to_dot(graph: nx.DiGraph, name: str = "policy") -> str:
    """Graphviz DOT text of the graph, readable without graphviz installed."""
    ident = {node: f"v{i}" for i, node in enumerate(nx.topological_sort(graph))}
    lines = [f'digraph "{name}" {{', "  rankdir=TB;", '  node [shape=box, fontname="Helvetica"];']
    for node, key in ident.items():
        shape = ", shape=ellipse" if node in (INPUT, OUTPUT) else ""
        lines.append(f'  {key} [label="{node_caption(graph, node)}"{shape}];')
    for node in ident:
        for i, pred in enumerate(ordered_inputs(graph, node)):
            label = f' [label="{i}"]' if graph.in_degree(node) > 1 else ""
            lines.append(f"  {ident[pred]} -> {ident[node]}{label};")
    hyper = graph.graph.get("hyperparameters") or {}
    if hyper:
        text = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in hyper.items()
        )
        lines.append(f'  label="{text}"; labelloc=b;')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _layered_positions(graph: nx.DiGraph) -> dict[str, tuple[float, float]]:
    depth: dict[str, int] = {}
    for node in nx.topological_sort(graph):
        depth[node] = max((depth[u] + 1 for u in graph.pred[node]), default=0)
    layers: dict[int, list[str]] = {}
    for node, d in depth.items():
        layers.setdefault(d, []).append(node)
    pos = {}
    for d, nodes in layers.items():
        for i, node in enumerate(sorted(nodes, key=str)):
            pos[node] = (i - (len(nodes) - 1) / 2, -float(d))
    return pos


def draw(graph: nx.DiGraph, path: str | Path, title: str | None = None) -> Path:
    """Draw the graph to ``path`` (``.png``/``.svg``/``.pdf``), or its DOT text to ``.dot``.

    Raises:
        ImportError: for an image format when matplotlib is not installed (DOT always works).
    """
    path = Path(path)
    if path.suffix == ".dot":
        path.write_text(to_dot(graph))
        return path
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"drawing {path.name} needs matplotlib (pip install 'autometa-nas[plot]'); "
            "DOT output (.dot) works without it"
        ) from exc
    pos = _layered_positions(graph)
    depth = {n: -y for n, (_, y) in pos.items()}
    per_layer = max(sum(1 for p in pos.values() if p[1] == y) for _, y in pos.values())
    fig, ax = plt.subplots(figsize=(max(4.0, 2.6 * per_layer), 1.4 * (1 + max(depth.values()))))
    labels = {n: node_caption(graph, n).replace("\\n", "\n") for n in graph.nodes}
    short = [(u, v) for u, v in graph.edges if depth[v] - depth[u] <= 1]
    long = [(u, v) for u, v in graph.edges if depth[v] - depth[u] > 1]
    common = {"ax": ax, "arrows": True, "arrowsize": 12, "node_size": 2400, "node_shape": "s"}
    nx.draw_networkx_edges(graph, pos, edgelist=short, **common)
    nx.draw_networkx_edges(
        graph,
        pos,
        edgelist=long,
        connectionstyle="arc3,rad=0.35",
        edge_color="#555555",
        **common,
    )
    for node, (x, y) in pos.items():
        io_node = node in (INPUT, OUTPUT)
        ax.text(
            x,
            y,
            labels[node],
            ha="center",
            va="center",
            fontsize=8,
            zorder=3,
            bbox={
                "boxstyle": "round,pad=0.4",
                "fc": "#cde4f7" if io_node else "#fde9c9",
                "ec": "#333333",
            },
        )
    xs = [x for x, _ in pos.values()]
    ax.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
    ax.set_ylim(-max(depth.values()) - 0.5, 0.5)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
