"""``kind: explicit`` spaces: named nodes written out by the user, any field a choice.

``inputs`` is a fixed list of names (kept in its order, which is the concat order) or
``{choose: [names], min: 1, max: 1}``: a choice among the subsets of the candidates, each
written ``+``-joined in node order. The template's edges, over every choice, must be acyclic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import networkx as nx

from autometa.space._body import MAX_SUBSETS, Body, NodeTemplate, count_subsets, subset_choices
from autometa.space._common import NAME, parse_node_fields
from autometa.space._dag import parse_input_bounds
from autometa.space._errors import NOTHING, Problems, Text, short_repr
from autometa.space._fields import Field, check_keys, expect_mapping, suggest

__all__ = ["parse_explicit"]

_GRAPH_KEYS = ("kind", "nodes", "output")
_NODE_KEYS = ("op", "width", "inputs", "merge", "residual")
_INPUT_ITEM = "the name of a node or 'input'"
_INPUTS_WHAT = "a list of node names or {choose: [names], min: <int>, max: <int>}"


def _check_names(
    problems: Problems, names: Any, path: tuple, known: list[str], what: str, item: str
) -> list[str] | None:
    """A non-empty list of distinct known names, or None after recording problems."""
    if not isinstance(names, list) or not names:
        problems.add(
            path,
            what,
            NOTHING if names is None else names,
            "empty_choice" if names == [] else "bad_type",
        )
        return None
    ok = True
    seen: set[str] = set()
    for i, name in enumerate(names):
        repeated = isinstance(name, str) and name in seen
        if isinstance(name, str):
            seen.add(name)
        if not isinstance(name, str) or name not in known:
            problems.add(
                (*path, i),
                "the name of a node or 'input'",
                name,
                "unknown_input",
                suggest(name, known),
            )
            ok = False
        elif repeated:
            problems.add(
                (*path, i),
                "distinct names",
                name,
                "duplicate_choice",
                f"{short_repr(name)} is listed twice",
            )
            ok = False
    return names if ok else None


def _parse_inputs(
    problems: Problems, raw: Any, path: tuple, known: list[str]
) -> tuple[list[str], Any] | None:
    """``(candidates, spec)`` where spec is a fixed list or ``(choose, low, high, default)``."""
    if isinstance(raw, Mapping):
        check_keys(
            problems,
            raw,
            path,
            ("choose", "min", "max", "default"),
            ("choose",),
            required_what={"choose": "a non-empty list of node names"},
        )
        if "choose" not in raw:
            return None
        names = _check_names(
            problems,
            raw["choose"],
            (*path, "choose"),
            known,
            "a non-empty list of node names",
            _INPUT_ITEM,
        )
        bounds = parse_input_bounds(
            problems, {k: raw[k] for k in ("min", "max") if k in raw}, path
        )
        if names is None or bounds is None:
            return None
        if bounds[1] > len(names):
            problems.add(
                (*path, "max"), f"at most the {len(names)} candidates", bounds[1], "bad_range"
            )
            return None
        return names, ("choose", bounds[0], bounds[1], raw.get("default"))
    what = _INPUTS_WHAT
    names = _check_names(problems, raw, path, known, what, _INPUT_ITEM)
    return (names, names) if names is not None else None


def _cycles(problems: Problems, edges: dict[str, list[str]], order: list[str]) -> bool:
    """Record one problem per cycle of the template; returns whether it is acyclic."""
    graph = nx.DiGraph((u, v) for v, us in edges.items() for u in us)
    index = {n: i for i, n in enumerate(order)}
    ok = True
    for scc in sorted(
        nx.strongly_connected_components(graph), key=lambda c: min(index[n] for n in c)
    ):
        first = min(scc, key=index.__getitem__)
        if len(scc) == 1 and not graph.has_edge(first, first):
            continue
        cycle = [first] + [v for _, v in nx.find_cycle(graph.subgraph(scc), source=first)]
        problems.add(
            ("graph", "nodes", first, "inputs"),
            "inputs that form no cycle",
            Text("a cycle " + " -> ".join(cycle)),
            "cycle",
            "every node's possible inputs must come from earlier in the data flow",
        )
        ok = False
    return ok


def parse_explicit(problems: Problems, graph: Mapping[str, Any]) -> Body | None:
    """Parse the ``graph`` section of an explicit template (problems are recorded)."""
    check_keys(
        problems,
        graph,
        ("graph",),
        _GRAPH_KEYS,
        ("nodes",),
        required_what={"nodes": "a mapping of node name -> node"},
    )
    nodes = graph.get("nodes")
    if nodes is None or not expect_mapping(
        problems, nodes, ("graph", "nodes"), "a mapping of node name -> node"
    ):
        return None
    if not nodes:
        problems.add(("graph", "nodes"), "at least one node", {}, "empty_choice")
        return None
    names = [str(n) for n in nodes]
    known = ["input", *names]
    parsed: dict[str, Any] = {}
    for name, raw in nodes.items():
        path = ("graph", "nodes", str(name))
        if not isinstance(name, str) or not NAME.match(name) or name in ("input", "output"):
            problems.add(
                path,
                "a node name: letters, digits and _ (not input or output)",
                name,
                "bad_name",
                at_key=True,
            )
            continue
        if not expect_mapping(problems, raw, path, "a mapping of " + ", ".join(_NODE_KEYS)):
            continue
        check_keys(
            problems, raw, path, _NODE_KEYS, ("inputs",), required_what={"inputs": _INPUTS_WHAT}
        )
        fields = parse_node_fields(problems, raw, path)
        inputs = (
            _parse_inputs(problems, raw["inputs"], (*path, "inputs"), known)
            if ("inputs" in raw)
            else None
        )
        if fields is not None and inputs is not None:
            parsed[name] = (fields, inputs)
    outputs: list[str] = []
    if "output" in graph:
        outputs = (
            _check_names(
                problems,
                graph["output"],
                ("graph", "output"),
                names,
                "a non-empty list of node names",
                "the name of a node",
            )
            or []
        )
    if problems or len(parsed) != len(nodes):
        return None
    edges = {n: [u for u in parsed[n][1][0] if u != "input"] for n in names}
    if not _cycles(problems, edges, names):
        return None
    dag = nx.DiGraph()
    dag.add_nodes_from(names)
    dag.add_edges_from((u, v) for v, us in edges.items() for u in us)
    index = {n: i for i, n in enumerate(names)}
    order = list(nx.lexicographical_topological_sort(dag, key=index.__getitem__))
    rank = {"input": -1, **{n: i for i, n in enumerate(order)}}
    templates, spec_nodes = [], {}
    for name in order:
        (op, width, width_ops, merge, residual), (candidates, ispec) = parsed[name]
        path = ("graph", "nodes", name, "inputs")
        if isinstance(ispec, list):
            inputs, ispec_out = Field("const", value="+".join(ispec)), list(ispec)
        else:
            _, low, high, default = ispec
            ordered = sorted(candidates, key=rank.__getitem__)
            if count_subsets(len(ordered), low, high) > MAX_SUBSETS:
                problems.add(
                    path,
                    f"at most {MAX_SUBSETS} input subsets",
                    {"min": low, "max": high},
                    "too_many_subsets",
                )
                continue
            subsets = subset_choices(ordered, low, high)
            if default is not None:
                text = (
                    "+".join(sorted(default, key=lambda n: rank.get(n, 0)))
                    if isinstance(default, list)
                    and all(isinstance(n, str) and n in rank for n in default)
                    else default
                )
                if text not in subsets:
                    problems.add(
                        (*path, "default"),
                        "one of the allowed input lists",
                        default,
                        "bad_default",
                        "allowed: " + ", ".join(subsets),
                    )
                    continue
                default = text
            inputs = Field("choice", choices=tuple(subsets), default=default)
            if len(subsets) == 1:
                inputs = Field("const", value=subsets[0])
            ispec_out = {"choose": ordered, "min": low, "max": high}
            if default is not None:
                ispec_out["default"] = default.split("+")
        templates.append(
            NodeTemplate(name, op, width, inputs, merge, residual, width_ops=width_ops)
        )
        spec_nodes[name] = {
            "op": op.to_spec(),
            **({"width": width.to_spec()} if width else {}),
            "inputs": ispec_out,
            "merge": merge.to_spec(),
            "residual": residual.to_spec(),
        }
    if problems:
        return None
    spec = {"kind": "explicit", "nodes": spec_nodes}
    if outputs:
        spec["output"] = list(outputs)
    return Body("explicit", templates, None, None, tuple(outputs), spec)
