"""The top level of a space document: name, graph, hyperparameters, constraints, io."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from autometa.space._body import Body
from autometa.space._chain import parse_chain
from autometa.space._common import NAME
from autometa.space._dag import parse_dag
from autometa.space._errors import NOTHING, Problems
from autometa.space._explicit import parse_explicit
from autometa.space._fields import (
    Element,
    Field,
    check_keys,
    expect_mapping,
    is_int,
    parse_field,
    suggest,
)

__all__ = ["ParsedSpace", "parse_space", "TOP_KEYS", "CONSTRAINTS", "DEFAULT_IO"]

TOP_KEYS = (
    "name", "description", "graph", "hyperparameters", "constraints", "io", "baselines"
)  # fmt: skip
KINDS = {"chain": parse_chain, "dag": parse_dag, "explicit": parse_explicit}
CONSTRAINTS = ("max_params", "min_params", "max_macs", "min_macs")
DEFAULT_IO = {"obs_dim": 2, "act_dim": 2, "discrete": False}
_SPACE_NAME = "a non-empty name: letters, digits, '.', '_' or '-'"

HYPERPARAMETER = Element(
    "a number, a string or a boolean",
    "scalars",
    lambda v: (
        isinstance(v, (str, bool)) or is_int(v) or (isinstance(v, float) and math.isfinite(v))
    ),
    ranges=("int", "float", "bool"),
)


@dataclass
class ParsedSpace:
    """Everything a :class:`~autometa.space.SearchSpace` is built from."""

    name: str
    description: str
    body: Body
    hyperparameters: dict[str, Field] = field(default_factory=dict)
    constraints: dict[str, int] = field(default_factory=dict)
    io: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_IO))
    baselines: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The normalised spec: loading it again gives the same space (JSON-safe)."""
        out = {
            "name": self.name,
            "description": self.description,
            "graph": self.body.spec,
            "hyperparameters": {k: f.to_spec() for k, f in self.hyperparameters.items()},
            "constraints": dict(self.constraints),
            "io": dict(self.io),
        }
        if self.baselines:  # absent when empty, so older spaces keep their content hash
            out["baselines"] = list(self.baselines)
        return out


def _valid_name(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and all(c.isalnum() or c in "._-" for c in value)


def _parse_graph(problems: Problems, raw: Any) -> Body | None:
    what = "a mapping with kind: chain, dag or explicit"
    if raw is None:
        problems.add(("graph",), what, NOTHING, "missing_key")
        return None
    if not expect_mapping(problems, raw, ("graph",), what):
        return None
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        got = NOTHING if "kind" not in raw else kind
        problems.add(
            ("graph", "kind"),
            "one of chain, dag, explicit",
            got,
            "missing_key" if "kind" not in raw else "unknown_kind",
            suggest(kind, list(KINDS)) if isinstance(kind, str) else None,
        )
        return None
    return KINDS[kind](problems, raw)


def _parse_hyperparameters(problems: Problems, raw: Any) -> dict[str, Field]:
    path = ("hyperparameters",)
    if raw is None or not expect_mapping(problems, raw, path, "a mapping of name -> value"):
        return {}
    out = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not NAME.match(name):
            problems.add(
                (*path, str(name)),
                "a name of letters, digits and _",
                name,
                "bad_name",
                at_key=True,
            )
            continue
        parsed = parse_field(problems, value, (*path, name), HYPERPARAMETER)
        if parsed is not None:
            out[name] = parsed
    return out


def _parse_constraints(problems: Problems, raw: Any) -> dict[str, int]:
    path = ("constraints",)
    what = "a mapping of " + ", ".join(CONSTRAINTS)
    if raw is None or not expect_mapping(problems, raw, path, what):
        return {}
    check_keys(problems, raw, path, CONSTRAINTS)
    out: dict[str, int] = {}
    for key in CONSTRAINTS:
        if key not in raw:
            continue
        value = raw[key]
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not is_int(value) or value < 0:
            problems.add((*path, key), "a non-negative integer", value, "bad_constraint")
            continue
        out[key] = value
    for what in ("params", "macs"):
        low, high = out.get(f"min_{what}"), out.get(f"max_{what}")
        if low is not None and high is not None and low > high:
            problems.add(
                path,
                f"min_{what} <= max_{what}",
                {f"min_{what}": low, f"max_{what}": high},
                "bad_range",
            )
    return out


def _parse_baselines(problems: Problems, raw: Any) -> list[str]:
    """``baselines:``: names of reference architectures for the final stage (checked there)."""
    if raw is None:
        return []
    what = "a list of baseline names (e.g. maml-relu-2x100)"
    if not isinstance(raw, list) or not all(isinstance(v, str) and v for v in raw):
        problems.add(("baselines",), what, raw, "bad_type")
        return []
    return list(dict.fromkeys(raw))


def _parse_io(problems: Problems, raw: Any) -> dict[str, Any]:
    path = ("io",)
    io = dict(DEFAULT_IO)
    if raw is None or not expect_mapping(
        problems, raw, path, "a mapping of obs_dim, act_dim, discrete"
    ):
        return io
    check_keys(problems, raw, path, tuple(DEFAULT_IO))
    for key in ("obs_dim", "act_dim"):
        value = raw.get(key, io[key])
        if not is_int(value) or value < 1:
            problems.add((*path, key), "a positive integer", value, "bad_type")
        io[key] = value
    discrete = raw.get("discrete", False)
    if not isinstance(discrete, bool):
        problems.add((*path, "discrete"), "true or false", discrete, "bad_type")
    io["discrete"] = discrete
    return io


def parse_space(problems: Problems, data: Any) -> ParsedSpace | None:
    """Parse a whole space document, recording every problem; None when any was found."""
    if not isinstance(data, Mapping):
        problems.add(
            (),
            "a mapping with the keys " + ", ".join(TOP_KEYS),
            NOTHING if data is None else data,
            "bad_type",
        )
        return None
    check_keys(
        problems,
        data,
        (),
        TOP_KEYS,
        ("name", "graph"),
        required_what={
            "name": _SPACE_NAME,
            "graph": "a mapping with kind: chain, dag or explicit",
        },
    )
    name = data.get("name")
    if "name" in data and not _valid_name(name):
        problems.add(("name",), _SPACE_NAME, name, "bad_name")
    description = data.get("description", "")
    if not isinstance(description, str):
        problems.add(("description",), "a string", description, "bad_type")
    body = _parse_graph(problems, data["graph"]) if "graph" in data else None
    hyperparameters = _parse_hyperparameters(problems, data.get("hyperparameters"))
    constraints = _parse_constraints(problems, data.get("constraints"))
    io = _parse_io(problems, data.get("io"))
    baselines = _parse_baselines(problems, data.get("baselines"))
    if problems or body is None:
        return None
    return ParsedSpace(name, description, body, hyperparameters, constraints, io, baselines)
