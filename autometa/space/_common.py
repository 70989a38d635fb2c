"""Value types of the graph fields, and parsing of the fields every hidden node shares."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from autometa.ops import OPS
from autometa.space._errors import NOTHING, Problems
from autometa.space._fields import Element, Field, is_int, parse_field

__all__ = [
    "WIDTH",
    "COUNT",
    "MERGE",
    "RESIDUAL",
    "OP",
    "MAX_NODES",
    "NAME",
    "op_has_width",
    "parse_count",
    "parse_node_fields",
]

MAX_NODES = 64
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _op_names() -> list[str]:
    return OPS.names()


def op_has_width(name: str) -> bool:
    """Whether the registered op ``name`` has its own output width."""
    return OPS.get(name).has_width


WIDTH = Element(
    "a positive integer",
    "positive integers",
    lambda v: is_int(v) and v > 0,
    "bad_width",
    ranges=("int",),
)
COUNT = Element(
    f"an integer from 1 to {MAX_NODES}",
    f"integers from 1 to {MAX_NODES}",
    lambda v: is_int(v) and 1 <= v <= MAX_NODES,
    "bad_count",
    ranges=("int",),
)
MERGE = Element(
    "'sum' or 'concat'",
    "merge modes ('sum', 'concat')",
    lambda v: v in ("sum", "concat"),
    "bad_merge",
    names=lambda: ["sum", "concat"],
)
RESIDUAL = Element(
    "true or false", "booleans", lambda v: isinstance(v, bool), "bad_type", ranges=("bool",)
)
OP = Element(
    "a registered op name",
    "registered op names",
    lambda v: isinstance(v, str) and v in _op_names(),
    "unknown_op",
    names=_op_names,
)


def parse_count(problems: Problems, graph: Mapping[str, Any], key: str) -> Field | None:
    """Parse the node-count field (``layers`` / ``nodes``) of ``graph``."""
    if key not in graph:
        problems.add(("graph", key), COUNT.expected(), NOTHING, "missing_key")
        return None
    return parse_field(problems, graph[key], ("graph", key), COUNT)


def parse_node_fields(
    problems: Problems, raw: Mapping[str, Any], path: tuple
) -> tuple[Field, Field | None, tuple[str, ...], Field, Field] | None:
    """Parse ``op``, ``width``, ``merge`` and ``residual`` of one node mapping.

    Returns ``(op, width, width_ops, merge, residual)`` where ``width_ops`` are the op choices
    that have a width (``width`` is None when none has), or None after recording problems.
    """
    before = len(problems.errors)
    op = None
    if "op" not in raw:
        problems.add((*path, "op"), OP.expected(), NOTHING, "missing_key")
    else:
        op = parse_field(problems, raw["op"], (*path, "op"), OP)
    width = None
    width_ops: tuple[str, ...] = ()
    if op is not None:
        width_ops = tuple(v for v in op.options() if op_has_width(v))
        if width_ops and "width" not in raw:
            problems.add(
                (*path, "width"),
                WIDTH.expected() + f" (op {width_ops[0]!r} has a width)",
                NOTHING,
                "missing_key",
            )
        elif not width_ops and "width" in raw:
            ops = op.options()
            keeps = (
                f"op {ops[0]!r} keeps"
                if len(ops) == 1
                else ("ops " + ", ".join(map(repr, ops)) + " keep")
            )
            problems.add(
                (*path, "width"),
                f"no width ({keeps} the input width)",
                raw["width"],
                "width_not_allowed",
                "remove the width key",
                at_key=True,
            )
        elif width_ops:
            width = parse_field(problems, raw["width"], (*path, "width"), WIDTH)
    merge = parse_field(problems, raw.get("merge", "sum"), (*path, "merge"), MERGE)
    residual = parse_field(problems, raw.get("residual", False), (*path, "residual"), RESIDUAL)
    if len(problems.errors) > before or op is None or merge is None or residual is None:
        return None
    if width_ops and width is None:
        return None
    return op, width, width_ops, merge, residual
