"""Checks of single values read from a study file: JSON text (size, depth), numbers, text,
states and candidate graphs (size caps, acyclicity). :mod:`._validate` applies them per row."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from autometa.errors import StorageError
from autometa.experiment.trial import TrialState

__all__ = [
    "MAX_GRAPH_EDGES",
    "MAX_GRAPH_NODES",
    "MAX_JSON_CHARS",
    "MAX_JSON_DEPTH",
    "MAX_TEXT_CHARS",
    "Bad",
    "at",
    "graph",
    "integer",
    "json_field",
    "json_object",
    "json_value",
    "kind_of",
    "number",
    "parse_json",
    "short",
    "state",
    "text",
]

MAX_JSON_CHARS = 8 * 2**20
"""Characters one JSON field of a study may hold (a graph, the metrics, the strategy state)."""
MAX_JSON_DEPTH = 64
"""Nesting depth of lists and objects one JSON field may reach."""
MAX_GRAPH_NODES = 10_000
"""Nodes a stored candidate graph may have (real candidates have tens)."""
MAX_GRAPH_EDGES = 100_000
"""Edges a stored candidate graph may have."""
MAX_TEXT_CHARS = 2**20
"""Characters of one plain text field (a key, an error, a device)."""

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_BRACKET = re.compile(r"[\[\]{}]")
_OPEN = frozenset("[{")


class Bad(Exception):
    """One field's problem, turned into a :class:`StorageError` line by :func:`at`."""


def at(path: Any, table: str, row: Any, field: str, problem: str) -> StorageError:
    return StorageError(f"{path}: table {table}, row {row}, field {field!r}: {problem}")


def kind_of(value: Any) -> str:
    if isinstance(value, (bytes, memoryview)):
        return "a blob"
    return "null" if value is None else f"{type(value).__name__} {short(value)}"


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _depth_ok(text: str) -> bool:
    """True when the JSON text nests lists and objects at most :data:`MAX_JSON_DEPTH` deep."""
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub('""', text)):
        if match.group() in _OPEN:
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return False
        else:
            depth -= 1
    return True


def _reject_constant(name: str) -> Any:
    raise Bad(f"holds {name}, which JSON lacks")


def parse_json(text: Any) -> Any:
    """The value of one stored JSON text, size and depth checked first.

    Raises:
        Bad: not text, too long, nested too deeply or not JSON.
    """
    if not isinstance(text, str):
        raise Bad(f"expected JSON text, got {kind_of(text)}")
    if len(text) > MAX_JSON_CHARS:
        raise Bad(f"JSON text of {len(text)} characters is over the cap of {MAX_JSON_CHARS}")
    if not _depth_ok(text):
        raise Bad(f"JSON nested deeper than the cap of {MAX_JSON_DEPTH}")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise Bad(f"not JSON ({str(exc).splitlines()[0]})") from None


def json_field(text: Any, path: Any, table: str, row: Any, field: str, kind: type = dict) -> Any:
    """Parse one JSON column that must hold a ``kind`` (dict by default).

    Raises:
        StorageError: one line naming the file, table, row and field.
    """
    try:
        value = parse_json(text)
        if not isinstance(value, kind):
            name = _JSON_NAMES.get(kind, kind.__name__)
            raise Bad(f"expected a JSON {name}, got {kind_of(value)}")
    except Bad as exc:
        raise at(path, table, row, field, str(exc)) from None
    return value


_JSON_NAMES = {dict: "object", list: "list"}


# -- checks of single values -------------------------------------------------------------


def integer(low: int | None = 0, none: bool = False) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is None and none:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise Bad(f"expected an integer{' or null' if none else ''}, got {kind_of(value)}")
        if low is not None and value < low:
            raise Bad(f"expected an integer >= {low}, got {value}")
        return value

    return check


def number(none: bool = True, low: float | None = None) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is None and none:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Bad(f"expected a number{' or null' if none else ''}, got {kind_of(value)}")
        if not math.isfinite(value):
            raise Bad(f"expected a finite number, got {value}")
        if low is not None and value < low:
            raise Bad(f"expected a number >= {low:g}, got {value:g}")
        return float(value) if isinstance(value, float) else value

    return check


def text(none: bool = True) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is None and none:
            return None
        if not isinstance(value, str):
            raise Bad(f"expected text{' or null' if none else ''}, got {kind_of(value)}")
        if len(value) > MAX_TEXT_CHARS:
            raise Bad(f"text of {len(value)} characters is over the cap of {MAX_TEXT_CHARS}")
        return value

    return check


def state(allowed: tuple[TrialState, ...]) -> Callable[[Any], TrialState]:
    def check(value: Any) -> TrialState:
        names = ", ".join(f"{int(s)} ({s.name})" for s in allowed)
        if isinstance(value, bool) or not isinstance(value, int) or value not in set(allowed):
            raise Bad(f"expected one of {names}, got {kind_of(value)}")
        return TrialState(value)

    return check


def json_value(value: Any) -> Any:
    """Any JSON value (already size- and depth-checked when it came from a JSON column)."""
    return value


def json_object(value: Any) -> Any:
    if not isinstance(value, dict):
        raise Bad(f"expected a JSON object, got {kind_of(value)}")
    return value


def graph(value: Any) -> dict[str, Any]:
    """A node-link graph dict within the caps, with unique node ids and no cycle.

    Raises:
        Bad: it is not such a graph.
    """
    if not isinstance(value, dict):
        raise Bad(f"expected a node-link graph object, got {kind_of(value)}")
    nodes, edges = value.get("nodes"), value.get("edges", [])
    if not isinstance(nodes, list) or not isinstance(edges, list):
        raise Bad("not a node-link graph (expected lists 'nodes' and 'edges')")
    if len(nodes) > MAX_GRAPH_NODES or len(edges) > MAX_GRAPH_EDGES:
        raise Bad(
            f"graph of {len(nodes)} nodes and {len(edges)} edges is over the cap of "
            f"{MAX_GRAPH_NODES} nodes and {MAX_GRAPH_EDGES} edges"
        )
    if not isinstance(value.get("graph", {}), dict):
        raise Bad("not a node-link graph ('graph' must be an object)")
    if not isinstance(value.get("graph", {}).get("hyperparameters") or {}, dict):
        raise Bad("the graph's 'hyperparameters' must be an object")
    ids: set[Any] = set()
    for node in nodes:
        if not isinstance(node, dict) or not isinstance(node.get("id"), (str, int)):
            raise Bad(f"not a node-link graph (node {short(node)} has no string id)")
        for attr, kinds in _NODE_ATTRS.items():
            if node.get(attr) is not None and not isinstance(node[attr], kinds):
                raise Bad(f"node {node['id']!r} has a malformed {attr!r}: {short(node[attr])}")
        if node["id"] in ids:
            raise Bad(f"not a node-link graph (node {node['id']!r} appears twice)")
        ids.add(node["id"])
    succ: dict[Any, list[Any]] = {n: [] for n in ids}
    indegree = dict.fromkeys(ids, 0)
    for edge in edges:
        if not isinstance(edge, dict) or edge.get("source") not in ids:
            raise Bad(f"not a node-link graph (edge {short(edge)} names an unknown node)")
        if edge.get("target") not in ids:
            raise Bad(f"not a node-link graph (edge {short(edge)} names an unknown node)")
        order = edge.get("order", 0)
        if isinstance(order, bool) or not isinstance(order, (int, float)):
            raise Bad(f"edge {short(edge)} has a malformed 'order'")
        succ[edge["source"]].append(edge["target"])
        indegree[edge["target"]] += 1
    ready = [n for n, d in indegree.items() if d == 0]
    seen = 0
    while ready:  # Kahn's algorithm: every node is reached only without a cycle
        node = ready.pop()
        seen += 1
        for target in succ[node]:
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    if seen != len(ids):
        raise Bad("not a directed acyclic graph")
    return value


_NODE_ATTRS: dict[str, tuple[type, ...]] = {
    "op": (str,),
    "width": (int,),
    "merge": (str,),
    "residual": (bool, int),
}
