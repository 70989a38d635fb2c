"""``kind: dag`` spaces: cells of K hidden nodes ``n0..n{K-1}``, K itself a choice.

Node ``n{i}`` reads 1..m of ``input, n0, ..., n{i-1}``; its input set is one categorical
dimension ``n{i}.inputs`` over the ``+``-joined subsets (see :func:`subset_choices`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autometa.space._body import MAX_SUBSETS, Body, NodeTemplate, count_subsets, subset_choices
from autometa.space._common import parse_count, parse_node_fields
from autometa.space._errors import NOTHING, Problems
from autometa.space._fields import Field, check_keys, expect_mapping, is_int

__all__ = ["parse_dag", "parse_input_bounds"]

_GRAPH_KEYS = ("kind", "nodes", "node")
_NODE_KEYS = ("op", "width", "inputs", "merge", "residual")


def parse_input_bounds(
    problems: Problems, raw: Any, path: tuple, keys: tuple[str, ...] = ("min", "max")
) -> tuple[int, int] | None:
    """Parse ``{min: a, max: b}`` (both default to 1) into ``(a, b)``."""
    what = "a mapping {min: <int>, max: <int>}"
    if not expect_mapping(problems, raw, path, what):
        return None
    check_keys(problems, raw, path, keys)
    low, high = raw.get("min", 1), raw.get("max", 1)
    ok = True
    for key, value in (("min", low), ("max", high)):
        if not (is_int(value) and value >= 1):
            problems.add((*path, key), "a positive integer", value, "bad_type")
            ok = False
    if ok and low > high:
        problems.add(path, "min <= max", {"min": low, "max": high}, "bad_range")
        ok = False
    return (low, high) if ok else None


def parse_dag(problems: Problems, graph: Mapping[str, Any]) -> Body | None:
    """Parse the ``graph`` section of a DAG space (problems are recorded, not raised)."""
    check_keys(problems, graph, ("graph",), _GRAPH_KEYS)
    count = parse_count(problems, graph, "nodes")
    path = ("graph", "node")
    node = graph.get("node")
    what = "a mapping of " + ", ".join(_NODE_KEYS)
    if node is None:
        problems.add(path, what, NOTHING, "missing_key")
        return None
    if not expect_mapping(problems, node, path, what):
        return None
    check_keys(problems, node, path, _NODE_KEYS)
    fields = parse_node_fields(problems, node, path)
    bounds = parse_input_bounds(problems, node.get("inputs", {}), (*path, "inputs"))
    if count is None or fields is None or bounds is None:
        return None
    op, width, width_ops, merge, residual = fields
    low, high = bounds
    k_max = max(count.options())
    biggest = count_subsets(k_max, min(low, k_max), high)
    if biggest > MAX_SUBSETS:
        problems.add(
            (*path, "inputs"),
            f"at most {MAX_SUBSETS} input subsets per node",
            {"min": low, "max": high},
            "too_many_subsets",
            f"node n{k_max - 1} would have {biggest} subsets; lower max or the node count",
        )
        return None
    always = min(count.options())  # nodes below this index exist in every candidate
    templates = []
    for i in range(k_max):
        candidates = ["input", *(f"n{j}" for j in range(i))]
        subsets = subset_choices(candidates, min(low, len(candidates)), high)
        inputs = (
            Field("choice", choices=tuple(subsets))
            if len(subsets) > 1
            else Field("const", value=subsets[0])
        )
        templates.append(
            NodeTemplate(
                name=f"n{i}",
                op=op,
                width=width,
                inputs=inputs,
                merge=merge,
                residual=residual,
                gate=(("nodes", ">=", i + 1),) if i >= always else None,
                width_ops=width_ops,
            )
        )
    spec: dict[str, Any] = {"kind": "dag", "nodes": count.to_spec(), "node": {"op": op.to_spec()}}
    if width is not None:
        spec["node"]["width"] = width.to_spec()
    spec["node"].update(
        inputs={"min": low, "max": high}, merge=merge.to_spec(), residual=residual.to_spec()
    )
    return Body("dag", templates, "nodes", count, (), spec)
