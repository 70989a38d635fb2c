"""Scalar values as dimensions compare them, and the conditions built on those comparisons.

A space file mixes YAML and numpy scalars, where ``True == 1``; every comparison here keeps
booleans, numbers and strings apart (:func:`same_value`, :func:`value_key`), and a condition
(see :mod:`autometa.space.dims`) holds only for values of its reference's kind. Kept apart from
the dimension classes, which use these rules, so that the rules read in one place;
:mod:`autometa.space.dims` re-exports the public names.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "Clause",
    "Condition",
    "condition_holds",
    "kind_of",
    "normalise_condition",
    "plain",
    "same_value",
    "value_key",
]

Clause = tuple[str, str, Any]
"""One clause of a condition: ``(dimension_name, op, reference)``."""
Condition = tuple[Clause, ...]
"""Clauses that must all hold for a dimension to be active."""

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
_CLAUSE_OPS = (*_COMPARE, "in")


def kind_of(value: Any) -> str | None:
    """Coarse type of a scalar: ``bool``, ``number`` or ``str`` (None for anything else)."""
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return "number"
    if isinstance(value, str):
        return "str"
    return None


def plain(value: Any) -> Any:
    """Turn numpy scalars into the matching Python scalar."""
    return value.item() if isinstance(value, np.generic) else value


def same_value(a: Any, b: Any) -> bool:
    """Equality that keeps ``True`` apart from ``1`` (YAML and numpy mix them up otherwise)."""
    kind = kind_of(a)
    return kind is not None and kind == kind_of(b) and bool(a == b)


def value_key(value: Any) -> tuple[Any, ...] | None:
    """A hashable key such that ``same_value(a, b)`` exactly when the keys of a and b are equal.

    Lets a set find repeated choices in one pass. None for a value that is no scalar (it
    equals nothing); a NaN gets a key of its own, since it equals nothing either.
    """
    kind = kind_of(value)
    if kind is None:
        return None
    value = plain(value)
    if kind == "number" and value != value:
        return (kind, object())
    return (kind, value)


def condition_holds(condition: Condition | None, values: Mapping[str, Any]) -> bool:
    """True when every clause of ``condition`` holds for ``values`` (None always holds)."""
    if condition is None:
        return True
    for name, op, reference in condition:
        if name not in values:
            return False
        value = values[name]
        if op == "in":
            if not any(same_value(value, r) for r in reference):
                return False
        elif kind_of(value) != kind_of(reference) or not _COMPARE[op](value, reference):
            return False
    return True


def normalise_condition(condition: Any) -> Condition | None:
    """``condition`` as stored: a tuple of ``(name, op, reference)`` clauses (an ``in``
    reference as a tuple), None when it has no clause.

    Raises:
        ValueError: a clause is not ``(name, op, value)`` with a known ``op``.
    """
    if condition is None:
        return None
    clauses = []
    for clause in condition:
        if len(clause) != 3 or clause[1] not in _CLAUSE_OPS or not isinstance(clause[0], str):
            raise ValueError(
                f"each condition clause must be (name, op, value) with op in {_CLAUSE_OPS}, "
                f"got {clause!r}"
            )
        name, op, ref = clause
        clauses.append((name, op, tuple(ref) if op == "in" else ref))
    return tuple(clauses) or None
