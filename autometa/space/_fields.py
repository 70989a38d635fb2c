"""Parsing of one space-file value that is either a constant or a dimension.

Syntax (each may add ``default: <value>``)::

    64                         # a constant: not a dimension
    {choice: [32, 64, 128]}    # Categorical
    {int: [1, 4]}              # Integer, both ends inclusive; add ``log: true`` for log-uniform
    {float: [0.01, 1.0], log: true}   # Float
    {bool: {}}                 # Boolean (``{bool: null}`` works too)

A choice of one value, or a range whose ends are equal, is a constant too.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autometa.space._errors import NOTHING, Problems, Text, short_repr
from autometa.space._limits import MAX_INT_DIGITS
from autometa.space.dims import (
    Boolean,
    Categorical,
    Condition,
    Dimension,
    Float,
    Integer,
    same_value,
    value_key,
)

__all__ = ["Element", "Field", "parse_field", "check_keys", "expect_mapping", "suggest"]

_KINDS = ("choice", "int", "float", "bool")
_RANGE_SYNTAX = {"int": "{int: [lo, hi]}", "float": "{float: [lo, hi]}", "bool": "{bool: {}}"}
_INT_BOUND = 10**MAX_INT_DIGITS


def suggest(name: Any, known: Sequence[str]) -> str | None:
    """``did you mean 'x'?`` for the closest of ``known``, or None (always for containers)."""
    if isinstance(name, (list, tuple, Mapping)):
        return None
    close = difflib.get_close_matches(str(name), list(known), n=1)
    return f"did you mean {close[0]!r}?" if close else None


def is_int(value: Any) -> bool:
    """An int (not a bool) of at most ``MAX_INT_DIGITS`` digits."""
    return (
        isinstance(value, int) and not isinstance(value, bool) and -_INT_BOUND < value < _INT_BOUND
    )


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool) that converts to a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond any float
        return False


@dataclass(frozen=True)
class Element:
    """What the values of one field may be.

    Attributes:
        what: one value in words (``a positive integer``).
        plural: several values in words (``positive integers``).
        check: accepts a valid value.
        code: error code for a bad value (``bad_width``, ``unknown_op``).
        names: the valid names, for ``did you mean`` hints (None for non-name values).
        ranges: which range syntaxes are allowed besides ``choice`` (``int``, ``float``, ``bool``).
    """

    what: str
    plural: str
    check: Callable[[Any], bool]
    code: str = "bad_value"
    names: Callable[[], Sequence[str]] | None = None
    ranges: tuple[str, ...] = ()

    def expected(self) -> str:
        """The accepted forms of a field of this element, in words."""
        forms = [f"{{choice: [...]}} of {self.plural}", *(_RANGE_SYNTAX[r] for r in self.ranges)]
        if len(forms) == 1:
            return f"{self.what} or {forms[0]}"
        return f"{self.what}, " + ", ".join(forms[:-1]) + f" or {forms[-1]}"

    def hint(self, value: Any) -> str | None:
        if self.names is None:
            return None
        names = list(self.names())
        close = suggest(value, names)
        return (close + " " if close else "") + f"valid: {', '.join(map(str, names))}"


@dataclass(frozen=True)
class Field:
    """A parsed field: a constant (``kind == 'const'``) or the recipe of a dimension."""

    kind: str
    value: Any = None
    choices: tuple[Any, ...] = ()
    low: Any = None
    high: Any = None
    log: bool = False
    default: Any = None

    @property
    def is_constant(self) -> bool:
        """True when the field has a single possible value."""
        return len(self.options()) == 1 if self.kind != "float" else self.low == self.high

    @property
    def constant(self) -> Any:
        """The single value of a constant field."""
        if self.kind == "const":
            return self.value
        return self.default if self.default is not None else (self.options() or [self.low])[0]

    def options(self) -> Sequence[Any]:
        """Every possible value (empty for a float range).

        An int range gives a lazy ``range``: ``{int: [1, 1000000000]}`` is never a list.
        """
        if self.kind == "const":
            return [self.value]
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int":
            return range(self.low, self.high + 1)
        if self.kind == "bool":
            return [False, True]
        return []

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is one of the field's values (type-aware, without listing them)."""
        if self.kind == "const":
            return same_value(value, self.value)
        if self.kind == "choice":
            return any(same_value(value, c) for c in self.choices)
        if self.kind == "int":
            return is_int(value) and self.low <= value <= self.high
        if self.kind == "bool":
            return isinstance(value, bool)
        return is_number(value) and self.low <= value <= self.high

    def dimension(self, name: str, condition: Condition | None = None) -> Dimension | None:
        """The dimension this field becomes under ``name`` (None for a constant)."""
        if self.is_constant:
            return None
        if self.kind == "choice":
            return Categorical(name, self.choices, self.default, condition)
        if self.kind == "int":
            return Integer(name, self.low, self.high, self.log, self.default, condition)
        if self.kind == "float":
            return Float(name, self.low, self.high, self.log, self.default, condition)
        return Boolean(name, bool(self.default), condition)

    def to_spec(self) -> Any:
        """The normalised space-file syntax of this field (JSON-safe)."""
        if self.kind == "const":
            return self.value
        spec: dict[str, Any] = {}
        if self.kind == "choice":
            spec["choice"] = list(self.choices)
        elif self.kind == "bool":
            spec["bool"] = {}
        else:
            spec[self.kind] = [self.low, self.high]
            if self.log:
                spec["log"] = True
        if self.default is not None:
            spec["default"] = self.default
        return spec


def expect_mapping(problems: Problems, raw: Any, path: tuple, what: str) -> bool:
    """Record a problem unless ``raw`` is a mapping; returns whether it is one."""
    if isinstance(raw, Mapping):
        return True
    problems.add(path, what, NOTHING if raw is None else raw, "bad_type")
    return False


def check_keys(
    problems: Problems,
    raw: Mapping[str, Any],
    path: tuple,
    allowed: Sequence[str],
    required: Sequence[str] = (),
    *,
    required_what: Mapping[str, str] | None = None,
) -> None:
    """Record unknown keys (with a ``did you mean`` hint) and missing required ones."""
    for key in raw:
        if key not in allowed:
            problems.add(
                (*path, str(key)),
                "one of the keys " + ", ".join(allowed),
                key,
                "unknown_key",
                suggest(key, allowed),
                at_key=True,
            )
    for key in required:
        if key not in raw:
            what = (required_what or {}).get(key, f"a {key!r} key")
            problems.add((*path, key), what, NOTHING, "missing_key")


def parse_field(problems: Problems, raw: Any, path: tuple, element: Element) -> Field | None:
    """Parse a constant or a dimension spec whose values must satisfy ``element``.

    Records every problem it finds and returns None when the field is unusable.
    """
    if isinstance(raw, Mapping):
        return _parse_dimension(problems, raw, path, element)
    if raw is None or isinstance(raw, list):
        hint = "write {choice: [...]} to choose among values" if isinstance(raw, list) else None
        problems.add(path, element.expected(), NOTHING if raw is None else raw, "bad_type", hint)
        return None
    if not element.check(raw):
        problems.add(path, element.expected(), raw, element.code, element.hint(raw))
        return None
    return Field("const", value=raw)


def _parse_dimension(
    problems: Problems, raw: Mapping[str, Any], path: tuple, element: Element
) -> Field | None:
    kinds = [k for k in raw if k in _KINDS]
    allowed_kinds = ("choice", *element.ranges)
    if len(kinds) > 1:
        expected = "exactly one of the keys " + ", ".join(kinds)
        problems.add(path, expected, Text("all of them"), "bad_type")
        return None
    if not kinds:
        before = len(problems.errors)
        check_keys(problems, raw, path, (*allowed_kinds, "log", "default"))
        if len(problems.errors) == before:  # no misspelt key to blame: show the forms
            problems.add(path, element.expected(), dict(raw), "bad_type")
        return None
    kind = kinds[0]
    if kind not in allowed_kinds:
        problems.add(
            (*path, kind),
            element.expected(),
            Text(f"a {kind} dimension"),
            "bad_type",
            at_key=True,
        )
        return None
    extra = ("log",) if kind in ("int", "float") else ()
    check_keys(problems, raw, path, (kind, *extra, "default"))
    body, kpath = raw[kind], (*path, kind)
    field: Field | None
    if kind == "choice":
        field = _parse_choice(problems, body, kpath, element)
    elif kind == "bool":
        if body not in (None, {}):
            problems.add(kpath, "{} (write {bool: {}})", body, "bad_type")
            return None
        field = Field("bool")
    else:
        field = _parse_range(problems, raw, kind, path, element)
    if field is None:
        return None
    if "default" in raw:
        default = raw["default"]
        if not field.contains(default):
            problems.add((*path, "default"), "a value of the dimension", default, "bad_default")
            return None
        if kind == "float":
            default = float(default)
        field = Field(
            field.kind, field.value, field.choices, field.low, field.high, field.log, default
        )
    return field


def _parse_choice(problems: Problems, body: Any, path: tuple, element: Element) -> Field | None:
    if not isinstance(body, list) or not body:
        problems.add(
            path,
            f"a non-empty list of {element.plural}",
            body,
            "empty_choice" if body == [] else "bad_type",
        )
        return None
    ok = True
    seen: set[Any] = set()  # value_key of every scalar so far: one look-up per value
    for i, value in enumerate(body):
        key = None if isinstance(value, (list, Mapping)) else value_key(value)
        if isinstance(value, (list, Mapping)) or value is None or not element.check(value):
            problems.add((*path, i), element.what, value, element.code, element.hint(value))
            ok = False
        elif key is not None and key in seen:
            problems.add(
                (*path, i),
                f"distinct {element.plural}",
                value,
                "duplicate_choice",
                f"{short_repr(value)} is listed twice",
            )
            ok = False
        if key is not None:
            seen.add(key)
    return Field("choice", choices=tuple(body)) if ok else None


def _parse_range(
    problems: Problems, raw: Mapping[str, Any], kind: str, path: tuple, element: Element
) -> Field | None:
    body, kpath = raw[kind], (*path, kind)
    number = is_int if kind == "int" else is_number
    word = "integers" if kind == "int" else "numbers"
    if not (isinstance(body, list) and len(body) == 2 and all(number(v) for v in body)):
        problems.add(kpath, f"[low, high], two {word}", body, "bad_type")
        return None
    low, high = body
    if low > high:
        problems.add(kpath, "[low, high] with low <= high", body, "bad_range")
        return None
    for i, value in enumerate(body):
        if not element.check(value):
            problems.add((*kpath, i), element.what, value, element.code)
            return None
    log = raw.get("log", False)
    if not isinstance(log, bool):
        problems.add((*path, "log"), "true or false", log, "bad_type")
        return None
    if log and low <= 0:
        problems.add(kpath, "a range with low > 0 (log: true)", body, "bad_log")
        return None
    if kind == "float":
        low, high = float(low), float(high)
    return Field(kind, low=low, high=high, log=log)
