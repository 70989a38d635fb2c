"""``SearchSpace``: sample, encode, decode and validate candidate graphs of one space."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np

from autometa.errors import GraphValidationError
from autometa.graph import count_macs, count_params, validate_graph
from autometa.space._errors import SpaceError, raise_problems
from autometa.space._summary import summarise
from autometa.space.dims import Dimension, same_value

if TYPE_CHECKING:
    from autometa.space._parse import ParsedSpace

__all__ = ["SearchSpace", "MAX_SAMPLE_TRIES"]

MAX_SAMPLE_TRIES = 1000


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


class SearchSpace:
    """A family of candidate policy graphs, and the flat decisions that pick one.

    Built by :func:`~autometa.space.load_space`. ``dimensions`` lists every decision in a
    fixed order (graph first, then ``hp.*``); a dimension's condition only names earlier ones.
    Every value in every dimension's domain decodes to a structurally valid graph, so
    strategies may mutate dimensions independently; constraints (``max_params``, ...) are
    checked by :meth:`validate` and enforced by :meth:`sample`.

    Attributes:
        name: the space's name (also ``G.graph["space"]`` of its candidates).
        kind: ``chain``, ``dag`` or ``explicit``.
        description: free text from the file.
        source: the file path, or None for a dict.
        dimensions: list of :class:`~autometa.space.dims.Dimension`.
        constraints: e.g. ``{"max_params": 200000}``.
        io: reference ``{"obs_dim", "act_dim", "discrete"}`` used to count params and MACs.
        baselines: reference architectures the final stage scores beside the winner.
    """

    def __init__(self, parsed: ParsedSpace, *, source: str | None, file: str, marks: dict) -> None:
        self._parsed = parsed
        self._body = parsed.body
        self._file = file
        self._marks = marks
        self.name: str = parsed.name
        self.kind: str = parsed.body.kind
        self.description: str = parsed.description
        self.source = source
        self.constraints: dict[str, int] = dict(parsed.constraints)
        self.io: dict[str, Any] = dict(parsed.io)
        self.baselines: list[str] = list(parsed.baselines)
        self._hp_dims: dict[str, Dimension | None] = {
            name: f.dimension(f"hp.{name}") for name, f in parsed.hyperparameters.items()
        }
        self.dimensions: list[Dimension] = [
            *self._body.dimensions(),
            *(d for d in self._hp_dims.values() if d is not None),
        ]
        self._by_name = {d.name: d for d in self.dimensions}

    # ------------------------------------------------------------------ decisions -> graph

    def _resolve(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Normalised values of the active dimensions (ValueError naming a bad one)."""
        if not isinstance(values, Mapping):
            raise TypeError(f"values must be a mapping of dimension name -> value, got {values!r}")
        resolved: dict[str, Any] = {}
        for dim in self.dimensions:
            if not dim.active(resolved):
                continue
            if dim.name not in values:
                raise ValueError(
                    f"space {self.name!r}: no value for the active dimension {dim.name!r} "
                    f"(domain {dim.domain()})"
                )
            try:
                resolved[dim.name] = dim.normalise(values[dim.name])
            except ValueError:
                raise ValueError(
                    f"space {self.name!r}: {values[dim.name]!r} is not in the domain of "
                    f"{dim.name!r}: {dim.domain()}"
                ) from None
        return resolved

    def decode(self, values: Mapping[str, Any]) -> nx.DiGraph:
        """The candidate graph for decision ``values``; inactive or missing-inactive are ignored.

        Raises:
            ValueError: an active dimension is missing or holds a value outside its domain.
        """
        resolved = self._resolve(values)
        hyper = {}
        for name, field in self._parsed.hyperparameters.items():
            dim = self._hp_dims[name]
            hyper[name] = field.constant if dim is None else resolved[dim.name]
        return self._body.build(resolved, hyper, self.name)

    def sample_values(self, rng: int | np.random.Generator | None = None) -> dict[str, Any]:
        """Decision values of the active dimensions, each drawn independently (no constraints)."""
        rng = _rng(rng)
        values: dict[str, Any] = {}
        for dim in self.dimensions:
            if dim.active(values):
                values[dim.name] = dim.sample(rng)
        return values

    def sample(self, seed: int | np.random.Generator | None = None) -> nx.DiGraph:
        """A random candidate that meets the constraints (rejection sampling).

        Raises:
            SpaceValidationError: no candidate out of ``MAX_SAMPLE_TRIES`` met the constraints.
        """
        rng = _rng(seed)
        seen: dict[str, tuple[int, int]] = {}
        for _ in range(MAX_SAMPLE_TRIES if self.constraints else 1):
            graph = self.decode(self.sample_values(rng))
            if not self.constraints:
                return graph
            counts = self._counts(graph)
            if not self._violations(counts):
                return graph
            for key, value in counts.items():
                low, high = seen.get(key, (value, value))
                seen[key] = (min(low, value), max(high, value))
        ranges = ", ".join(f"{k} {lo} to {hi}" for k, (lo, hi) in sorted(seen.items()))
        line, col = (self._marks.get(("constraints",)) or (None, None))[0] or (None, None)
        error = SpaceError(
            self._file,
            line,
            col,
            ("constraints",),
            "constraints that some candidate meets",
            dict(self.constraints),
            "unsatisfiable",
            f"none of {MAX_SAMPLE_TRIES} samples met them (seen: {ranges}); the constraints "
            "look unsatisfiable",
        )
        raise_problems(self._file, [error])
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ graph -> decisions

    def encode(self, graph: nx.DiGraph) -> dict[str, Any]:
        """Decision values of the active dimensions for a graph of this space.

        ``decode(encode(G))`` equals ``G`` for every graph this space produces (edge ``order``
        aside, which is normalised).

        Raises:
            GraphValidationError: the graph is not a member of this space.
        """
        if not isinstance(graph, nx.DiGraph):
            raise GraphValidationError(f"expected a networkx.DiGraph, got {type(graph).__name__}")
        raw = self._body.read(graph)
        hyper = graph.graph.get("hyperparameters") or {}
        for name, dim in self._hp_dims.items():
            if dim is not None and name in hyper:
                raw[dim.name] = hyper[name]
        values: dict[str, Any] = {}
        for dim in self.dimensions:
            if not dim.active(values):
                continue
            if dim.name not in raw:
                raise GraphValidationError(
                    f"graph is not in space {self.name!r}: it has no value for {dim.name!r}"
                )
            if not dim.contains(raw[dim.name]):
                raise GraphValidationError(
                    f"graph is not in space {self.name!r}: {dim.name} = {raw[dim.name]!r} is "
                    f"outside {dim.domain()}"
                )
            values[dim.name] = dim.normalise(raw[dim.name])
        rebuilt = self.decode(values)
        problem = _structure_difference(graph, rebuilt)
        if problem:
            raise GraphValidationError(f"graph is not in space {self.name!r}: {problem}")
        return values

    def complete(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Values for every dimension: the active ones as given, inactive ones kept when in
        their domain and filled with their default otherwise (for fixed-length vectors).

        Raises:
            ValueError: an active dimension is missing or outside its domain.
        """
        resolved = self._resolve(values)
        out = {}
        for dim in self.dimensions:
            if dim.name in resolved:
                out[dim.name] = resolved[dim.name]
            elif dim.name in values and dim.contains(values[dim.name]):
                out[dim.name] = dim.normalise(values[dim.name])
            else:
                out[dim.name] = dim.default
        return out

    # ------------------------------------------------------------------ checks

    def _counts(self, graph: nx.DiGraph) -> dict[str, int]:
        io = (self.io["obs_dim"], self.io["act_dim"], self.io["discrete"])
        counts = {}
        if {"max_params", "min_params"} & set(self.constraints):
            counts["params"] = count_params(graph, *io)
        if {"max_macs", "min_macs"} & set(self.constraints):
            counts["macs"] = count_macs(graph, *io)
        return counts

    def _violations(self, counts: Mapping[str, int]) -> list[str]:
        out = []
        for key, bound in self.constraints.items():
            side, what = key.split("_", 1)
            value = counts[what]
            if (side == "max" and value > bound) or (side == "min" and value < bound):
                relation = "above" if side == "max" else "below"
                out.append(f"{value} {what} is {relation} {key}={bound}")
        return out

    def violations(self, graph: nx.DiGraph) -> list[str]:
        """The constraints ``graph`` breaks, in words (empty when it meets them all).

        Counts are taken for the reference ``io`` dims, head included.
        """
        return self._violations(self._counts(graph)) if self.constraints else []

    def validate(self, graph: nx.DiGraph) -> None:
        """Check a candidate's structure (``autometa.graph.validate_graph``) and constraints.

        Raises:
            GraphValidationError: naming every broken rule or constraint.
        """
        validate_graph(graph)
        broken = self.violations(graph)
        if broken:
            io = self.io
            raise GraphValidationError(
                f"candidate breaks the constraints of space {self.name!r} (counted for "
                f"obs_dim={io['obs_dim']}, act_dim={io['act_dim']}, "
                f"{'discrete' if io['discrete'] else 'continuous'} actions): " + "; ".join(broken)
            )

    # ------------------------------------------------------------------ description

    def to_dict(self) -> dict[str, Any]:
        """The normalised spec (JSON-safe); ``load_space(space.to_dict())`` rebuilds it."""
        return json.loads(json.dumps(self._parsed.to_dict()))

    @property
    def content_hash(self) -> str:
        """sha256 hex digest of the normalised spec: equal spaces share it."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def summary(self) -> str:
        """Several lines for ``autometa validate``: kind, dimensions, size and constraints."""
        return summarise(self)

    def __repr__(self) -> str:
        return (
            f"SearchSpace(name={self.name!r}, kind={self.kind!r}, "
            f"dimensions={len(self.dimensions)})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self.content_hash == other.content_hash

    def __hash__(self) -> int:
        return hash(self.content_hash)


def _structure_difference(graph: nx.DiGraph, rebuilt: nx.DiGraph) -> str | None:
    """Why ``graph`` and ``rebuilt`` differ as candidates (edge order ignored), or None."""
    given_hp = graph.graph.get("hyperparameters") or {}
    for name, value in rebuilt.graph["hyperparameters"].items():
        if name not in given_hp:
            return f"it has no hyperparameter {name!r}"
        if not same_value(given_hp[name], value):
            return f"hyperparameter {name!r} is {given_hp[name]!r}, the space fixes {value!r}"
    for node, attrs in rebuilt.nodes(data=True):
        if node not in graph:
            return f"it lacks the node {node!r}"
        given = graph.nodes[node]
        for key, value in attrs.items():
            if given.get(key, False if key == "residual" else None) != value:
                return f"node {node!r} has {key}={given.get(key)!r}, expected {value!r}"
    extra = sorted(str(n) for n in graph if n not in rebuilt)
    if extra:
        return f"it has nodes the space does not produce: {extra}"
    if set(graph.edges) != set(rebuilt.edges):
        missing = sorted(set(rebuilt.edges) - set(graph.edges))
        surplus = sorted(set(graph.edges) - set(rebuilt.edges))
        return f"its edges differ (missing {missing}, unexpected {surplus})"
    return None
