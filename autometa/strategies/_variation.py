"""Type-aware and graph-native variation of decision values, shared by the evolutionary strategies.

An individual is the complete decision-value dict of the space (``space.complete``): every
dimension holds a value, inactive ones included, so crossover can line individuals up
dimension by dimension. Every operator here returns candidates that decode to valid graphs
(structure and constraints), repairing or redrawing when a change breaks a constraint.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from autometa.errors import GraphValidationError
from autometa.graph import canonical_hash
from autometa.space import SearchSpace
from autometa.space.dims import Boolean, Categorical, Dimension, Float, Integer
from autometa.strategies.base import active_values

__all__ = ["Variation"]

MAX_TRIES = 25
RANDOM_DRAWS = 1000


class Variation:
    """Sampling, mutation and validity checks over one space, driven by a seeded generator.

    Args:
        space: the search space.
        rng: the strategy's generator (all randomness here comes from it).
        sigma: mutation scale as a share of a numeric range (of its log for ``log`` ranges).
        gene_prob: chance that each active dimension mutates (None: one over their number);
            at least one always does.
        graph_mutation_prob: for DAG spaces, the chance a mutation is graph-native (add or
            remove a node, rewire an input, swap an op) rather than per-dimension.
        is_new: tells whether an architecture key is still unseen, so offspring can avoid
            architectures already evaluated or pending.
    """

    def __init__(
        self,
        space: SearchSpace,
        rng: np.random.Generator,
        *,
        sigma: float,
        gene_prob: float | None,
        graph_mutation_prob: float,
        is_new: Callable[[str], bool],
    ) -> None:
        self.space = space
        self.rng = rng
        self.sigma = sigma
        self.gene_prob = gene_prob
        self.graph_mutation_prob = graph_mutation_prob
        self.is_new = is_new
        self.dims = list(space.dimensions)
        gating = {c[0] for d in self.dims for c in (d.condition or ()) if c[1] in (">=", ">")}
        self.count_dims = [d for d in self.dims if d.name in gating and isinstance(d, Integer)]
        self.graph_native = space.kind == "dag"
        self.exhausted = False

    # ------------------------------------------------------------------ validity

    def key(self, values: Mapping[str, Any]) -> str | None:
        """The architecture key of ``values``, or None when they do not give a valid graph."""
        try:
            graph = self.space.decode(active_values(self.space, values))
            self.space.validate(graph)
        except (KeyError, ValueError, GraphValidationError):
            return None
        return canonical_hash(graph)

    def random(self) -> dict[str, Any] | None:
        """A complete, valid random individual not seen yet; None when none was found.

        Draws up to ``RANDOM_DRAWS`` times; after a miss (the space looks exhausted) later
        calls draw only ``RANDOM_DRAWS // 20`` times, so an exhausted space stays cheap.
        """
        draws = RANDOM_DRAWS if not self.exhausted else RANDOM_DRAWS // 20
        valid = False
        for _ in range(draws):
            values = self.space.sample_values(self.rng)
            key = self.key(values)
            valid = valid or key is not None
            if key is not None and self.is_new(key):
                return self.space.complete(values)
        if not valid and not self.exhausted:
            raise ValueError(
                f"no valid candidate in {draws} draws from space {self.space.name!r}; "
                "its constraints look unsatisfiable"
            )
        self.exhausted = True
        return None

    def offspring(self, make: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        """Call ``make`` until it gives a valid, unseen individual; else a random one (or None)."""
        for _ in range(MAX_TRIES if not self.exhausted else 2):
            values = make()
            key = self.key(values)
            if key is not None and self.is_new(key):
                return self.space.complete(values)
        return self.random()

    # ------------------------------------------------------------------ mutation

    def mutate(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """One mutated copy of ``values`` (complete); dims it newly activates are redrawn."""
        before = dict(values)
        if self.graph_native and self.rng.random() < self.graph_mutation_prob:
            out = self._graph_mutation(before)
        else:
            out = self._gene_mutation(before)
        for dim in self.dims:
            if dim.active(out) and not dim.active(before):
                out[dim.name] = dim.sample(self.rng)
        return out

    def _gene_mutation(self, values: dict[str, Any]) -> dict[str, Any]:
        out = dict(values)
        active = [d for d in self.dims if d.active(values) and d.cardinality > 1]
        if not active:
            return out
        p = self.gene_prob if self.gene_prob is not None else 1.0 / len(active)
        chosen = [d for d in active if self.rng.random() < p]
        if not chosen:
            chosen = [active[int(self.rng.integers(len(active)))]]
        for dim in chosen:
            out[dim.name] = self.mutate_gene(dim, out[dim.name])
        return out

    def mutate_gene(self, dim: Dimension, value: Any) -> Any:
        """A new value for one dimension: categorical resample, boolean flip, integer step,
        float Gaussian (in log space for ``log`` ranges); always within the domain."""
        if isinstance(dim, Boolean):
            return not value
        if isinstance(dim, Categorical):
            if not dim.contains(value):
                return dim.sample(self.rng)
            skip = dim.index(value)
            others = [c for i, c in enumerate(dim.choices) if i != skip]
            return others[int(self.rng.integers(len(others)))] if others else value
        if isinstance(dim, Integer):
            if dim.log:
                span = math.log(dim.high) - math.log(dim.low)
                new = round(math.exp(math.log(value) + self.rng.normal(0, self.sigma * span)))
            else:
                new = round(value + self.rng.normal(0, self.sigma * (dim.high - dim.low)))
            if new == value:  # an integer step always moves
                new = value + (1 if self.rng.random() < 0.5 else -1)
            new = min(max(int(new), dim.low), dim.high)
            if new == value:
                new = value + 1 if value < dim.high else value - 1
            return int(new)
        if isinstance(dim, Float):
            if dim.log:
                span = math.log(dim.high) - math.log(dim.low)
                new = math.exp(math.log(value) + self.rng.normal(0, self.sigma * span))
            else:
                new = value + self.rng.normal(0, self.sigma * (dim.high - dim.low))
            return float(min(max(new, dim.low), dim.high))
        return dim.sample(self.rng)

    def _graph_mutation(self, values: dict[str, Any]) -> dict[str, Any]:
        """Add or remove a node, rewire one input, or swap one op (DAG spaces)."""
        out = dict(values)
        moves: list[tuple[str, Dimension]] = []
        for dim in self.count_dims:
            if values[dim.name] < dim.high:
                moves.append(("add", dim))
            if values[dim.name] > dim.low:
                moves.append(("remove", dim))
        for dim in self.dims:
            if dim.active(values) and dim.cardinality > 1:
                if dim.name.endswith(".inputs"):
                    moves.append(("rewire", dim))
                elif dim.name.endswith((".op", ".activation")):
                    moves.append(("swap", dim))
        if not moves:
            return self._gene_mutation(values)
        move, dim = moves[int(self.rng.integers(len(moves)))]
        if move == "add":
            out[dim.name] = values[dim.name] + 1
        elif move == "remove":
            out[dim.name] = values[dim.name] - 1
        else:
            out[dim.name] = self.mutate_gene(dim, values[dim.name])
        return out
