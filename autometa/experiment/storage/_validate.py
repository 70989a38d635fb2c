"""Rows of a study file become records here, checked first: a study file is untrusted data.

Every value read from SQLite is checked for its type, range and size before a record is
built, so a damaged or crafted file ends in one :class:`~autometa.errors.StorageError` line
naming the file, the table, the row and the field, never in a traceback or a long computation.
Nothing read here decides what is imported or called: values are plain JSON data.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from collections.abc import Callable
from typing import Any

from autometa.errors import StorageError
from autometa.experiment.trial import FinalRun, SessionInfo, TrialState

__all__ = [
    "MAX_GRAPH_EDGES",
    "MAX_GRAPH_NODES",
    "MAX_JSON_CHARS",
    "MAX_JSON_DEPTH",
    "MAX_TEXT_CHARS",
    "check_numbering",
    "final_run",
    "json_field",
    "session",
    "trial_fields",
    "weights",
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


class _Bad(Exception):
    """One field's problem, turned into a :class:`StorageError` line by :func:`_at`."""


def _at(path: Any, table: str, row: Any, field: str, problem: str) -> StorageError:
    return StorageError(f"{path}: table {table}, row {row}, field {field!r}: {problem}")


def _kind(value: Any) -> str:
    if isinstance(value, (bytes, memoryview)):
        return "a blob"
    return "null" if value is None else f"{type(value).__name__} {_short(value)}"


def _short(value: Any) -> str:
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
    raise _Bad(f"holds {name}, which JSON lacks")


def parse_json(text: Any) -> Any:
    """The value of one stored JSON text, size and depth checked first.

    Raises:
        _Bad: not text, too long, nested too deeply or not JSON.
    """
    if not isinstance(text, str):
        raise _Bad(f"expected JSON text, got {_kind(text)}")
    if len(text) > MAX_JSON_CHARS:
        raise _Bad(f"JSON text of {len(text)} characters is over the cap of {MAX_JSON_CHARS}")
    if not _depth_ok(text):
        raise _Bad(f"JSON nested deeper than the cap of {MAX_JSON_DEPTH}")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise _Bad(f"not JSON ({str(exc).splitlines()[0]})") from None


def json_field(text: Any, path: Any, table: str, row: Any, field: str, kind: type = dict) -> Any:
    """Parse one JSON column that must hold a ``kind`` (dict by default).

    Raises:
        StorageError: one line naming the file, table, row and field.
    """
    try:
        value = parse_json(text)
        if not isinstance(value, kind):
            name = _JSON_NAMES.get(kind, kind.__name__)
            raise _Bad(f"expected a JSON {name}, got {_kind(value)}")
    except _Bad as exc:
        raise _at(path, table, row, field, str(exc)) from None
    return value


_JSON_NAMES = {dict: "object", list: "list"}


# -- checks of single values -------------------------------------------------------------


def _integer(low: int | None = 0, none: bool = False) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is None and none:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Bad(f"expected an integer{' or null' if none else ''}, got {_kind(value)}")
        if low is not None and value < low:
            raise _Bad(f"expected an integer >= {low}, got {value}")
        return value

    return check


def _number(none: bool = True, low: float | None = None) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is None and none:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Bad(f"expected a number{' or null' if none else ''}, got {_kind(value)}")
        if not math.isfinite(value):
            raise _Bad(f"expected a finite number, got {value}")
        if low is not None and value < low:
            raise _Bad(f"expected a number >= {low:g}, got {value:g}")
        return float(value) if isinstance(value, float) else value

    return check


def _text(none: bool = True) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is None and none:
            return None
        if not isinstance(value, str):
            raise _Bad(f"expected text{' or null' if none else ''}, got {_kind(value)}")
        if len(value) > MAX_TEXT_CHARS:
            raise _Bad(f"text of {len(value)} characters is over the cap of {MAX_TEXT_CHARS}")
        return value

    return check


def _state(allowed: tuple[TrialState, ...]) -> Callable[[Any], TrialState]:
    def check(value: Any) -> TrialState:
        names = ", ".join(f"{int(s)} ({s.name})" for s in allowed)
        if isinstance(value, bool) or not isinstance(value, int) or value not in set(allowed):
            raise _Bad(f"expected one of {names}, got {_kind(value)}")
        return TrialState(value)

    return check


def _json_value(value: Any) -> Any:
    """Any JSON value (already size- and depth-checked when it came from a JSON column)."""
    return value


def _json_object(value: Any) -> Any:
    if not isinstance(value, dict):
        raise _Bad(f"expected a JSON object, got {_kind(value)}")
    return value


def graph(value: Any) -> dict[str, Any]:
    """A node-link graph dict within the caps, with unique node ids and no cycle.

    Raises:
        _Bad: it is not such a graph.
    """
    if not isinstance(value, dict):
        raise _Bad(f"expected a node-link graph object, got {_kind(value)}")
    nodes, edges = value.get("nodes"), value.get("edges", [])
    if not isinstance(nodes, list) or not isinstance(edges, list):
        raise _Bad("not a node-link graph (expected lists 'nodes' and 'edges')")
    if len(nodes) > MAX_GRAPH_NODES or len(edges) > MAX_GRAPH_EDGES:
        raise _Bad(
            f"graph of {len(nodes)} nodes and {len(edges)} edges is over the cap of "
            f"{MAX_GRAPH_NODES} nodes and {MAX_GRAPH_EDGES} edges"
        )
    if not isinstance(value.get("graph", {}), dict):
        raise _Bad("not a node-link graph ('graph' must be an object)")
    if not isinstance(value.get("graph", {}).get("hyperparameters") or {}, dict):
        raise _Bad("the graph's 'hyperparameters' must be an object")
    ids: set[Any] = set()
    for node in nodes:
        if not isinstance(node, dict) or not isinstance(node.get("id"), (str, int)):
            raise _Bad(f"not a node-link graph (node {_short(node)} has no string id)")
        for attr, kinds in _NODE_ATTRS.items():
            if node.get(attr) is not None and not isinstance(node[attr], kinds):
                raise _Bad(f"node {node['id']!r} has a malformed {attr!r}: {_short(node[attr])}")
        if node["id"] in ids:
            raise _Bad(f"not a node-link graph (node {node['id']!r} appears twice)")
        ids.add(node["id"])
    succ: dict[Any, list[Any]] = {n: [] for n in ids}
    indegree = dict.fromkeys(ids, 0)
    for edge in edges:
        if not isinstance(edge, dict) or edge.get("source") not in ids:
            raise _Bad(f"not a node-link graph (edge {_short(edge)} names an unknown node)")
        if edge.get("target") not in ids:
            raise _Bad(f"not a node-link graph (edge {_short(edge)} names an unknown node)")
        order = edge.get("order", 0)
        if isinstance(order, bool) or not isinstance(order, (int, float)):
            raise _Bad(f"edge {_short(edge)} has a malformed 'order'")
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
        raise _Bad("not a directed acyclic graph")
    return value


_NODE_ATTRS: dict[str, tuple[type, ...]] = {
    "op": (str,),
    "width": (int,),
    "merge": (str,),
    "residual": (bool, int),
}

_TRIAL_COLUMNS: dict[str, tuple[str, Callable[[Any], Any], bool]] = {
    # field: (column, check, stored as JSON)
    "state": ("state", _state(tuple(TrialState)), False),
    "key": ("key", _text(none=False), False),
    "graph_json": ("graph", graph, True),
    "values": ("decision_values", _json_object, True),
    "seed": ("seed", _integer(low=None), False),
    "candidate_id": ("candidate_id", _json_value, True),
    "score": ("score", _number(), False),
    "objectives": ("objectives", _json_object, True),
    "metrics": ("metrics", _json_object, True),
    "error": ("error", _text(), False),
    "device": ("device", _text(), False),
    "fidelity": ("fidelity", _integer(none=True), False),
    "rung": ("rung", _integer(none=True), False),
    "bracket": ("bracket", _integer(none=True), False),
    "attempts": ("attempts", _integer(), False),
    "duplicate_of": ("duplicate_of", _integer(none=True), False),
    "created": ("created", _number(), False),
    "started": ("started", _number(), False),
    "finished": ("finished", _number(), False),
    "wall_time": ("wall_time", _number(low=0), False),
}


def trial_fields(row: sqlite3.Row, path: Any) -> dict[str, Any]:
    """The checked fields of one ``trials`` row, ready for ``TrialRecord(**fields)``.

    Raises:
        StorageError: one line naming the file, the row (its trial number) and the field.
    """
    number = row["number"]
    out: dict[str, Any] = {}
    for name, (column, check, is_json) in _TRIAL_COLUMNS.items():
        try:
            value = row[column]
            if is_json:
                value = None if value is None and name == "candidate_id" else parse_json(value)
            out[name] = check(value)
        except _Bad as exc:
            raise _at(path, "trials", number, column, str(exc)) from None
    try:
        out["number"] = _integer()(number)
    except _Bad as exc:
        raise _at(path, "trials", number, "number", str(exc)) from None
    return out


def check_numbering(numbers: list[int], path: Any) -> None:
    """Trial numbers run 0, 1, 2, ... in order, as storage assigns them.

    Raises:
        StorageError: a number is missing (a gap) or out of place.
    """
    for expected, number in enumerate(numbers):
        if number != expected:
            raise _at(
                path, "trials", number, "number",
                f"trial numbers must run 0, 1, 2, ... without gaps; expected {expected}",
            )  # fmt: skip


_FINAL_FIELDS: dict[str, tuple[Callable[[Any], Any], bool]] = {
    # field: (check, required)
    "entry": (_text(none=False), True),
    "kind": (lambda v: _one_of(v, ("finalist", "baseline", "ablation")), True),
    "trial": (_integer(none=True), True),
    "key": (_text(none=False), True),
    "graph_json": (graph, True),
    "seed_index": (_integer(), True),
    "seed": (_integer(low=None), True),
    "score": (_number(), False),
    "metrics": (_json_object, False),
    "error": (_text(), False),
    "device": (_text(), False),
    "wall_time": (_number(low=0), False),
    "created": (_number(), False),
    "finished": (_number(), False),
}
_FINAL_STATES = (TrialState.QUEUED, TrialState.RUNNING, TrialState.DONE, TrialState.FAILED)


def _one_of(value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise _Bad(f"expected one of {', '.join(allowed)}, got {_kind(value)}")
    return value


def final_run(row: sqlite3.Row, path: Any) -> FinalRun:
    """One checked ``final_runs`` row as a :class:`FinalRun`.

    Raises:
        StorageError: one line naming the file, the row (its id) and the field.
    """
    run_id = row["id"]
    try:
        _integer()(run_id)
    except _Bad as exc:
        raise _at(path, "final_runs", run_id, "id", str(exc)) from None
    try:
        state = _state(_FINAL_STATES)(row["state"])
    except _Bad as exc:
        raise _at(path, "final_runs", run_id, "state", str(exc)) from None
    data = json_field(row["data"], path, "final_runs", run_id, "data")
    out: dict[str, Any] = {}
    for name in data:
        if name not in _FINAL_FIELDS:
            raise _at(path, "final_runs", run_id, "data", f"unknown key {_short(name)}")
    for name, (check, required) in _FINAL_FIELDS.items():
        if name not in data:
            if required:
                raise _at(path, "final_runs", run_id, f"data.{name}", "missing")
            continue
        try:
            out[name] = check(data[name])
        except _Bad as exc:
            raise _at(path, "final_runs", run_id, f"data.{name}", str(exc)) from None
    return FinalRun(id=run_id, state=state, **out)


_SESSION_COLUMNS: dict[str, Callable[[Any], Any]] = {
    "id": _integer(),
    "host": _text(),
    "pid": _integer(none=True),
    "started": _number(none=False),
    "updated": _number(none=False),
    "heartbeat": _number(low=0),
    "ended": _number(),
}


def session(row: sqlite3.Row, path: Any) -> SessionInfo:
    """One checked ``sessions`` row; columns added after the first release may be absent
    (an older study read without migrating it) and read as null.

    Raises:
        StorageError: one line naming the file, the row and the field.
    """
    have = set(row.keys())
    out: dict[str, Any] = {}
    for name, check in _SESSION_COLUMNS.items():
        try:
            out[name] = check(row[name] if name in have else None)
        except _Bad as exc:
            raise _at(path, "sessions", row["id"], name, str(exc)) from None
    return SessionInfo(**out)


def weights(row: sqlite3.Row, number: int, path: Any) -> bytes:
    """A ``weights`` row's safetensors bytes, the header checked (every tensor's data inside
    the blob), so decoding a crafted blob cannot fail halfway or claim huge buffers.

    Raises:
        StorageError: one line naming the file, the row (its trial number) and the field.
    """
    if row["format"] != "safetensors":
        got = _kind(row["format"])
        raise _at(path, "weights", number, "format", f"expected 'safetensors', got {got}")
    data = row["data"]
    try:
        if not isinstance(data, bytes):
            raise _Bad(f"expected a safetensors blob, got {_kind(data)}")
        size = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
        if size < 2 or size > min(len(data) - 8, MAX_JSON_CHARS):
            raise _Bad("not safetensors (its header length does not fit the blob)")
        try:
            header = parse_json(data[8 : 8 + size].decode("utf-8"))
        except (UnicodeDecodeError, _Bad):
            raise _Bad("not safetensors (its header is not JSON)") from None
        if not isinstance(header, dict):
            raise _Bad("not safetensors (its header is not a JSON object)")
        room = len(data) - 8 - size
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            span = entry.get("data_offsets") if isinstance(entry, dict) else None
            if (
                not isinstance(span, list) or len(span) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in span)
                or not 0 <= span[0] <= span[1] <= room
            ):  # fmt: skip
                raise _Bad(f"not safetensors (tensor {_short(name)} lies outside the blob)")
    except _Bad as exc:
        raise _at(path, "weights", number, "data", str(exc)) from None
    return data
