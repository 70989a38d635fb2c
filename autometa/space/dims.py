"""Typed decision dimensions: what a search strategy varies, and in which domain.

Every dimension is a frozen dataclass with a ``name``, a ``default`` and a ``condition``.
Values are plain Python scalars (``int``, ``float``, ``bool``, ``str``), never numpy types.

Conditions
----------
``condition`` is ``None`` (always active) or a tuple of clauses that must all hold; each
clause is ``(dimension_name, op, reference)`` with ``op`` one of ``==``, ``!=``, ``>=``,
``<=``, ``>``, ``<`` or ``in`` (``reference`` is then a tuple of values). Examples::

    ("nodes", ">=", 5)                       # n4.* exist only in graphs of 5+ nodes
    ("n2.op", "in", ("linear", "linear_tanh"))  # n2.width matters only for ops with a width

A dimension's condition only names dimensions that come before it in
``SearchSpace.dimensions``, so evaluating dims in order always sees the parents first.
A clause on a dimension missing from ``values`` is false.

How values compare and conditions are evaluated is in :mod:`._conditions`, re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from autometa.space._conditions import (
    Clause,
    Condition,
    condition_holds,
    kind_of,
    normalise_condition,
    plain,
    same_value,
    value_key,
)

__all__ = [
    "Clause",
    "Dimension",
    "Categorical",
    "Integer",
    "Float",
    "Boolean",
    "Condition",
    "condition_holds",
    "dimension_from_dict",
    "same_value",
    "value_key",
]


class Dimension:
    """Base of the dimension classes; subclasses are frozen dataclasses.

    Attributes:
        name: dotted decision name (``nodes``, ``n2.op``, ``hp.fast_lr``).
        default: the value used to fill the dimension when it is inactive.
        condition: None, or clauses that must all hold for the dimension to be active.
    """

    name: str
    default: Any
    condition: Condition | None
    _registry: ClassVar[dict[str, type[Dimension]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Dimension._registry[cls.__name__] = cls

    def active(self, values: Mapping[str, Any]) -> bool:
        """Whether this dimension matters given the other decisions in ``values``."""
        return condition_holds(self.condition, values)

    def sample(self, rng: np.random.Generator) -> Any:
        """A uniformly drawn value (log-uniform for ``log`` ranges)."""
        raise NotImplementedError

    def contains(self, value: Any) -> bool:
        """Whether ``value`` lies in the domain (type-aware: ``True`` is not ``1``)."""
        raise NotImplementedError

    def normalise(self, value: Any) -> Any:
        """``value`` as the plain Python scalar the graph stores (checks ``contains`` first)."""
        if not self.contains(value):
            raise ValueError(f"{value!r} is not in the domain of {self.name}: {self.domain()}")
        return plain(value)

    def domain(self) -> str:
        """The domain in the space-file syntax, for messages and summaries."""
        raise NotImplementedError

    @property
    def cardinality(self) -> float:
        """Number of values (``math.inf`` for float ranges)."""
        raise NotImplementedError

    def values(self) -> list[Any]:
        """Every value of a finite dimension, in order (ValueError for float ranges)."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form; :func:`dimension_from_dict` inverts it using the class name."""
        data: dict[str, Any] = {"type": type(self).__name__}
        for key, value in self.__dict__.items():
            if key.startswith("_"):  # derived lookups, rebuilt by the constructor
                continue
            if key == "condition":
                value = None if value is None else [[n, o, _listify(r)] for n, o, r in value]
            data[key] = _listify(value)
        return data

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Dimension:
        """Rebuild a dimension from :meth:`to_dict` output."""
        return dimension_from_dict(data)

    def _check_default(self) -> None:
        if not self.contains(self.default):
            raise ValueError(
                f"the default must lie in the domain, got default={self.default!r} for "
                f"{self.name} in {self.domain()}"
            )
        object.__setattr__(self, "default", plain(self.default))
        object.__setattr__(self, "condition", normalise_condition(self.condition))


def _listify(value: Any) -> Any:
    return [_listify(v) for v in value] if isinstance(value, (tuple, list)) else value


def dimension_from_dict(data: Mapping[str, Any]) -> Dimension:
    """Build the dimension class named by ``data["type"]`` from its :meth:`to_dict` form."""
    kind = data.get("type")
    cls = Dimension._registry.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(
            f"unknown dimension type {kind!r}; expected one of {sorted(Dimension._registry)}"
        )
    return cls(**{k: v for k, v in data.items() if k != "type"})


@dataclass(frozen=True)
class Categorical(Dimension):
    """One of a list of distinct scalars (op names, widths, input subsets, merge modes)."""

    name: str
    choices: Sequence[Any]
    default: Any = None
    condition: Condition | None = field(default=None, compare=True)

    def __post_init__(self) -> None:
        choices = tuple(plain(c) for c in self.choices)
        if not choices:
            raise ValueError(f"`choices` must not be empty, got choices={list(choices)!r}")
        positions: dict[tuple[Any, ...], int] = {}
        for i, choice in enumerate(choices):
            key = value_key(choice)
            if key is None:
                raise ValueError(
                    f"`choices` must be str, int, float or bool scalars, got {choice!r}"
                )
            if key in positions:
                raise ValueError(f"`choices` must be distinct, got {choice!r} twice")
            positions[key] = i
        object.__setattr__(self, "choices", choices)
        # value_key(a) == value_key(b) exactly when same_value(a, b): a lookup, not a scan of
        # what may be 100,000 choices, each time a candidate is sampled or checked
        object.__setattr__(self, "_positions", positions)
        if self.default is None:
            object.__setattr__(self, "default", choices[0])
        self._check_default()
        object.__setattr__(self, "default", self.choices[self.index(self.default)])

    def index(self, value: Any) -> int:
        """Position of ``value`` among the choices (ValueError when absent)."""
        position = self._positions.get(value_key(value))  # a non-scalar's key is None
        if position is not None:
            return position
        raise ValueError(f"{value!r} is not in the domain of {self.name}: {self.domain()}")

    def sample(self, rng: np.random.Generator) -> Any:
        return self.choices[int(rng.integers(len(self.choices)))]

    def contains(self, value: Any) -> bool:
        return value_key(value) in self._positions

    def normalise(self, value: Any) -> Any:
        return self.choices[self.index(value)]

    def domain(self) -> str:
        return "{" + ", ".join(str(c) for c in self.choices) + "}"

    @property
    def cardinality(self) -> float:
        return len(self.choices)

    def values(self) -> list[Any]:
        return list(self.choices)


@dataclass(frozen=True)
class Integer(Dimension):
    """An integer in ``[low, high]`` (both inclusive); ``log`` samples log-uniformly."""

    name: str
    low: int
    high: int
    log: bool = False
    default: int | None = None
    condition: Condition | None = None

    def __post_init__(self) -> None:
        for key in ("low", "high"):
            value = getattr(self, key)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"`{key}` must be an int, got {key}={value!r}")
            object.__setattr__(self, key, int(value))
        if self.low > self.high:
            raise ValueError(f"`low <= high` must hold, got low={self.low}, high={self.high}")
        if self.log and self.low < 1:
            raise ValueError(f"`low >= 1` must hold when log=True, got low={self.low}")
        if self.default is None:
            object.__setattr__(self, "default", self.low)
        self._check_default()

    def sample(self, rng: np.random.Generator) -> int:
        if not self.log:
            return int(rng.integers(self.low, self.high + 1))
        value = math.exp(rng.uniform(math.log(self.low), math.log(self.high + 1)))
        return min(max(int(value), self.low), self.high)

    def contains(self, value: Any) -> bool:
        return (
            kind_of(value) == "number"
            and isinstance(value, (int, np.integer))
            and self.low <= value <= self.high
        )

    def domain(self) -> str:
        return f"[{self.low}, {self.high}]" + (" log" if self.log else "")

    @property
    def cardinality(self) -> float:
        return self.high - self.low + 1

    def values(self) -> list[int]:
        return list(range(self.low, self.high + 1))


@dataclass(frozen=True)
class Float(Dimension):
    """A real number in ``[low, high]``; ``log`` samples log-uniformly (needs ``low > 0``)."""

    name: str
    low: float
    high: float
    log: bool = False
    default: float | None = None
    condition: Condition | None = None

    def __post_init__(self) -> None:
        for key in ("low", "high"):
            value = getattr(self, key)
            if kind_of(value) != "number" or not math.isfinite(value):
                raise ValueError(f"`{key}` must be a finite number, got {key}={value!r}")
            object.__setattr__(self, key, float(value))
        if self.low > self.high:
            raise ValueError(f"`low <= high` must hold, got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"`low > 0` must hold when log=True, got low={self.low}")
        if self.default is None:
            object.__setattr__(self, "default", self.low)
        self._check_default()
        object.__setattr__(self, "default", float(self.default))

    def sample(self, rng: np.random.Generator) -> float:
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = float(rng.uniform(self.low, self.high))
        return min(max(value, self.low), self.high)

    def contains(self, value: Any) -> bool:
        return (
            kind_of(value) == "number" and math.isfinite(value) and self.low <= value <= self.high
        )

    def normalise(self, value: Any) -> float:
        return float(super().normalise(value))

    def domain(self) -> str:
        return f"[{self.low:g}, {self.high:g}]" + (" log" if self.log else "")

    @property
    def cardinality(self) -> float:
        return 1 if self.low == self.high else math.inf

    def values(self) -> list[float]:
        raise ValueError(f"{self.name} is a float range; it has no finite list of values")


@dataclass(frozen=True)
class Boolean(Dimension):
    """``False`` or ``True`` (e.g. whether a layer has a residual connection)."""

    name: str
    default: bool = False
    condition: Condition | None = None

    def __post_init__(self) -> None:
        self._check_default()

    def sample(self, rng: np.random.Generator) -> bool:
        return bool(rng.integers(2))

    def contains(self, value: Any) -> bool:
        return isinstance(value, (bool, np.bool_))

    def normalise(self, value: Any) -> bool:
        return bool(super().normalise(value))

    def domain(self) -> str:
        return "{false, true}"

    @property
    def cardinality(self) -> float:
        return 2

    def values(self) -> list[bool]:
        return [False, True]
