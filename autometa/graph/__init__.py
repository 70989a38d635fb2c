"""Candidate graphs: validation, canonical hashing, serialisation and drawing.

A candidate is a ``networkx.DiGraph`` following the convention in ``docs/design.md``.
"""

from autometa.graph._describe import describe_graph
from autometa.graph._draw import draw, to_dot
from autometa.graph._hash import canonical_hash
from autometa.graph._io import from_graphml, from_json, graph_equal, to_graphml, to_json
from autometa.graph._make import mlp_graph
from autometa.graph._plan import PlanStep, compile_plan, count_macs, count_params
from autometa.graph._validate import (
    INPUT,
    MERGES,
    OUTPUT,
    ordered_inputs,
    resolve_widths,
    validate_graph,
)

__all__ = [
    "INPUT",
    "OUTPUT",
    "MERGES",
    "PlanStep",
    "canonical_hash",
    "compile_plan",
    "count_macs",
    "count_params",
    "describe_graph",
    "draw",
    "from_graphml",
    "from_json",
    "graph_equal",
    "mlp_graph",
    "ordered_inputs",
    "resolve_widths",
    "to_dot",
    "to_graphml",
    "to_json",
    "validate_graph",
]
