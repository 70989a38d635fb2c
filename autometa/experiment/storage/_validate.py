"""Rows of a study file become records here, checked first: a study file is untrusted data.

Every value read from SQLite is checked for its type, range and size before a record is
built, so a damaged or crafted file ends in one :class:`~autometa.errors.StorageError` line
naming the file, the table, the row and the field, never in a traceback or a long computation.
Nothing read here decides what is imported or called: values are plain JSON data.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from autometa.experiment.storage._values import (
    MAX_GRAPH_EDGES,
    MAX_GRAPH_NODES,
    MAX_JSON_CHARS,
    MAX_JSON_DEPTH,
    MAX_TEXT_CHARS,
    Bad,
    at,
    graph,
    integer,
    json_field,
    json_object,
    json_value,
    kind_of,
    number,
    parse_json,
    short,
    state,
    text,
)
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
    "study_seed",
    "trial_fields",
    "trial_state",
    "weights",
]

_TRIAL_COLUMNS: dict[str, tuple[str, Callable[[Any], Any], bool]] = {
    # field: (column, check, stored as JSON)
    "state": ("state", state(tuple(TrialState)), False),
    "key": ("key", text(none=False), False),
    "graph_json": ("graph", graph, True),
    "values": ("decision_values", json_object, True),
    "seed": ("seed", integer(low=None), False),
    "candidate_id": ("candidate_id", json_value, True),
    "score": ("score", number(), False),
    "objectives": ("objectives", json_object, True),
    "metrics": ("metrics", json_object, True),
    "error": ("error", text(), False),
    "device": ("device", text(), False),
    "fidelity": ("fidelity", integer(none=True), False),
    "rung": ("rung", integer(none=True), False),
    "bracket": ("bracket", integer(none=True), False),
    "attempts": ("attempts", integer(), False),
    "duplicate_of": ("duplicate_of", integer(none=True), False),
    "created": ("created", number(), False),
    "started": ("started", number(), False),
    "finished": ("finished", number(), False),
    "wall_time": ("wall_time", number(low=0), False),
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
        except Bad as exc:
            raise at(path, "trials", number, column, str(exc)) from None
    try:
        out["number"] = integer()(number)
    except Bad as exc:
        raise at(path, "trials", number, "number", str(exc)) from None
    return out


def trial_state(row: sqlite3.Row, path: Any) -> TrialState:
    """The checked ``state`` of one ``trials`` row read with its ``number`` alone (counting
    states reads no other column).

    Raises:
        StorageError: one line naming the file, the row (its trial number) and the field.
    """
    column, check, _ = _TRIAL_COLUMNS["state"]
    try:
        return check(row[column])
    except Bad as exc:
        raise at(path, "trials", row["number"], column, str(exc)) from None


def check_numbering(numbers: list[int], path: Any) -> None:
    """Trial numbers run 0, 1, 2, ... in order, as storage assigns them.

    Raises:
        StorageError: a number is missing (a gap) or out of place.
    """
    for expected, found in enumerate(numbers):
        if found != expected:
            raise at(
                path, "trials", found, "number",
                f"trial numbers must run 0, 1, 2, ... without gaps; expected {expected}",
            )  # fmt: skip


_FINAL_FIELDS: dict[str, tuple[Callable[[Any], Any], bool]] = {
    # field: (check, required)
    "entry": (text(none=False), True),
    "kind": (lambda v: _one_of(v, ("finalist", "baseline", "ablation", "confirmation")), True),
    "trial": (integer(none=True), True),
    "key": (text(none=False), True),
    "graph_json": (graph, True),
    "seed_index": (integer(), True),
    "seed": (integer(low=None), True),
    "score": (number(), False),
    "metrics": (json_object, False),
    "error": (text(), False),
    "device": (text(), False),
    "wall_time": (number(low=0), False),
    "created": (number(), False),
    "finished": (number(), False),
    "attempts": (integer(), False),
}
_FINAL_STATES = (TrialState.QUEUED, TrialState.RUNNING, TrialState.DONE, TrialState.FAILED)


def _one_of(value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise Bad(f"expected one of {', '.join(allowed)}, got {kind_of(value)}")
    return value


def final_run(row: sqlite3.Row, path: Any) -> FinalRun:
    """One checked ``final_runs`` row as a :class:`FinalRun`.

    Raises:
        StorageError: one line naming the file, the row (its id) and the field.
    """
    run_id = row["id"]
    try:
        integer()(run_id)
    except Bad as exc:
        raise at(path, "final_runs", run_id, "id", str(exc)) from None
    try:
        run_state = state(_FINAL_STATES)(row["state"])
    except Bad as exc:
        raise at(path, "final_runs", run_id, "state", str(exc)) from None
    data = json_field(row["data"], path, "final_runs", run_id, "data")
    out: dict[str, Any] = {}
    for name in data:
        if name not in _FINAL_FIELDS:
            raise at(path, "final_runs", run_id, "data", f"unknown key {short(name)}")
    for name, (check, required) in _FINAL_FIELDS.items():
        if name not in data:
            if required:
                raise at(path, "final_runs", run_id, f"data.{name}", "missing")
            continue
        try:
            out[name] = check(data[name])
        except Bad as exc:
            raise at(path, "final_runs", run_id, f"data.{name}", str(exc)) from None
    return FinalRun(id=run_id, state=run_state, **out)


_SESSION_COLUMNS: dict[str, Callable[[Any], Any]] = {
    "id": integer(),
    "host": text(),
    "pid": integer(none=True),
    "started": number(none=False),
    "updated": number(none=False),
    "heartbeat": number(low=0),
    "ended": number(),
}


def study_seed(column: Any, recorded: int | None, path: Any) -> int:
    """The ``study`` row's ``seed`` column, which every new trial's seed is drawn from: an
    integer, equal to the seed its ``data`` records when that is given (a file whose two
    copies disagree was edited, and would seed new trials differently from the study it
    shows; :meth:`SQLiteStorage.get_study` compares them on every open).

    Raises:
        StorageError: one line naming the file, the table, the row and the field.
    """
    try:
        value = integer(low=None)(column)
        if recorded is not None and value != recorded:
            raise Bad(f"expected the seed the study's data records ({recorded}), got {value}")
    except Bad as exc:
        raise at(path, "study", 1, "seed", str(exc)) from None
    return value


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
        except Bad as exc:
            raise at(path, "sessions", row["id"], name, str(exc)) from None
    return SessionInfo(**out)


def weights(row: sqlite3.Row, number: int, path: Any, table: str = "weights") -> bytes:
    """A ``weights`` (or ``training_states``: ``table``) row's safetensors bytes, the header
    checked (every tensor's data inside the blob), so decoding a crafted blob cannot fail
    halfway or claim huge buffers.

    Raises:
        StorageError: one line naming the file, the row (its trial number) and the field.
    """
    if row["format"] != "safetensors":
        got = kind_of(row["format"])
        raise at(path, table, number, "format", f"expected 'safetensors', got {got}")
    data = row["data"]
    try:
        if not isinstance(data, bytes):
            raise Bad(f"expected a safetensors blob, got {kind_of(data)}")
        size = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
        if size < 2 or size > min(len(data) - 8, MAX_JSON_CHARS):
            raise Bad("not safetensors (its header length does not fit the blob)")
        try:
            header = parse_json(data[8 : 8 + size].decode("utf-8"))
        except (UnicodeDecodeError, Bad):
            raise Bad("not safetensors (its header is not JSON)") from None
        if not isinstance(header, dict):
            raise Bad("not safetensors (its header is not a JSON object)")
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
                raise Bad(f"not safetensors (tensor {short(name)} lies outside the blob)")
    except Bad as exc:
        raise at(path, table, number, "data", str(exc)) from None
    return data
