"""What a strategy hands out and takes back: :class:`Candidate` (from ``ask``), :data:`Value`
(given to ``tell``, checked by :func:`check_value`) and the active decision values of a
proposal (:func:`active_values`).

They are kept apart from ``BaseStrategy``, which runs the exchange, so that
:mod:`autometa.strategies.base` holds the contract alone; it re-exports the public names.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import networkx as nx

if TYPE_CHECKING:
    from autometa.space import SearchSpace

__all__ = ["Candidate", "Pending", "Value", "active_values", "check_value"]

Value = float | tuple[float, ...] | None
"""What ``BaseStrategy.tell`` takes: a score, a tuple of scores, or None for a failure."""


@dataclass(frozen=True)
class Candidate:
    """One architecture handed out by ``BaseStrategy.ask``.

    Attributes:
        id: the strategy's own running number; pass the candidate (or this id) back to
            ``BaseStrategy.tell``. Ids survive ``BaseStrategy.load_state_dict``.
        graph: the candidate graph (valid for the strategy's space, constraints met).
        values: decision values of the active dimensions (``space.decode(values) == graph``).
        key: ``autometa.graph.canonical_hash(graph)``; equal keys mean the same architecture.
    """

    id: int
    graph: nx.DiGraph = field(compare=False, repr=False)
    values: dict[str, Any] = field(compare=False)
    key: str


@dataclass
class Pending:
    """An asked candidate waiting for its result, with what the backend proposed it from."""

    candidate: Candidate
    token: Any
    raw: dict[str, Any]


def active_values(space: SearchSpace, values: Mapping[str, Any]) -> dict[str, Any]:
    """Normalised values of the dimensions that are active under ``values``, in space order.

    Raises:
        KeyError: an active dimension has no value.
        ValueError: a value lies outside its dimension's domain.
    """
    out: dict[str, Any] = {}
    for dim in space.dimensions:
        if dim.active(out):
            out[dim.name] = dim.normalise(values[dim.name])
    return out


def check_value(value: Any, n_objectives: int, label: str) -> Value:
    """``value`` as ``BaseStrategy.tell`` records it: a float, a tuple of ``n_objectives``
    floats, or None (a failure; NaN and infinities count as failures).

    Raises:
        TypeError: ``value`` has the wrong shape for a strategy with ``n_objectives``.
    """
    if value is None:
        return None
    if n_objectives == 1:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(
                f"strategy {label!r} is single-objective: tell a float or None, got {value!r}"
            )
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(
            f"strategy {label!r} has {n_objectives} objectives: tell a tuple of "
            f"{n_objectives} floats or None, got {value!r}"
        )
    if len(value) != n_objectives or not all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value
    ):
        raise TypeError(
            f"strategy {label!r} has {n_objectives} objectives: tell a tuple of "
            f"{n_objectives} floats or None, got {value!r}"
        )
    floats = tuple(float(v) for v in value)
    return floats if all(math.isfinite(v) for v in floats) else None
