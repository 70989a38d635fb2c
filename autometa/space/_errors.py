"""Problem records for malformed space files, collected and raised as one error.

Every problem names the file, the line and column (when known), the key path, what was
expected and what was given, so ``autometa validate`` can print it without a traceback.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from autometa.errors import SpaceValidationError

__all__ = [
    "SpaceError",
    "Problems",
    "Text",
    "NOTHING",
    "render_path",
    "raise_problems",
    "short_repr",
]

Path = tuple[str | int, ...]
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class Text(str):
    """A ``got`` value printed as prose rather than as a repr with its type."""


NOTHING = Text("nothing")


_KEY_LIMIT = 40  # characters of one key shown in a path
_BIG_INT_BITS = 1000  # ints this long show as their digit count (about 300 digits and up)


def render_path(path: Path) -> str:
    """``('graph', 'node', 'width', 'choice', 1)`` -> ``graph.node.width.choice[1]``.

    Long keys are cut short (``['kkk...']``) so a message stays one readable line.
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.match(part) and len(part) <= _KEY_LIMIT:
            out += f".{part}" if out else part
        else:
            out += f"[{short_repr(part, _KEY_LIMIT)}]"
    return out


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


class _Full(Exception):
    """Raised inside :func:`short_repr` once the text is long enough to be cut."""


def _int_repr(value: int) -> str:
    bits = abs(value).bit_length()
    if bits <= _BIG_INT_BITS:
        return repr(value)
    if bits <= 4 * _BIG_INT_BITS:  # well within Python's int-string conversion limit
        return f"an integer of {len(str(abs(value)))} digits"
    return f"an integer of about {math.floor(bits * math.log10(2)) + 1} digits"


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters (``...`` at the end), in bounded time.

    Containers are written only as far as the limit, so a value that shares its parts
    (YAML aliases, or a list of the same list) costs no more than a short one, and nesting
    deeper than the limit never recurses further. Huge ints show their number of digits.
    """
    pieces: list[str] = []
    size = 0

    def emit(text: str) -> None:
        nonlocal size
        pieces.append(text)
        size += len(text)
        if size > limit:
            raise _Full

    def walk(item: Any) -> None:
        if isinstance(item, (list, tuple)):
            brackets = "[]" if isinstance(item, list) else "()"
            emit(brackets[0])
            for i, sub in enumerate(item):
                emit(", " if i else "")
                walk(sub)
            emit("," if isinstance(item, tuple) and len(item) == 1 else "")
            emit(brackets[1])
        elif isinstance(item, Mapping):
            emit("{")
            for i, (key, sub) in enumerate(item.items()):
                emit(", " if i else "")
                walk(key)
                emit(": ")
                walk(sub)
            emit("}")
        elif isinstance(item, str):
            emit(repr(item if len(item) <= limit else item[: limit + 1]))
        elif isinstance(item, int) and not isinstance(item, bool):
            emit(_int_repr(item))
        else:
            emit(repr(item))

    try:
        walk(value)
    except _Full:
        return "".join(pieces)[: limit - 3] + "..."
    return "".join(pieces)


@dataclass(frozen=True, eq=False)
class SpaceError:
    """One problem in a space file.

    Attributes:
        file: the file name as shown to the user (basename, or ``<dict>``).
        line: 1-based line, or None when unknown (dicts, some JSON errors).
        col: 1-based column, or None.
        path: key path into the document (strings for keys, ints for list positions).
        expected: what the key should hold, in words.
        got: the offending value (a :class:`Text` when it is prose, not a value).
        code: a short stable identifier of the kind of problem (``unknown_key``, ...).
        hint: a suggestion (``did you mean 'width'?``) or None.
    """

    file: str
    line: int | None
    col: int | None
    path: Path
    expected: str
    got: Any
    code: str
    hint: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}" + (f":{self.col}" if self.col is not None else "")
        parts = [where]
        if self.path:
            parts.append(render_path(self.path))
        if isinstance(self.got, Text):
            got = str(self.got)
        else:
            got = f"{short_repr(self.got)} ({_type_name(self.got)})"
        text = ": ".join(parts) + f": expected {self.expected}, got {got} [{self.code}]"
        return text + (f"; hint: {self.hint}" if self.hint else "")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (``got`` as its repr unless it is prose)."""
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "path": render_path(self.path),
            "expected": self.expected,
            "got": str(self.got) if isinstance(self.got, Text) else short_repr(self.got),
            "code": self.code,
            "hint": self.hint,
        }

    def sort_key(self) -> tuple[Any, ...]:
        return (
            self.line is None,
            self.line or 0,
            self.col or 0,
            render_path(self.path),
            self.code,
        )


def raise_problems(file: str, errors: Iterable[SpaceError]) -> None:
    """Raise one :class:`SpaceValidationError` listing ``errors`` by position (no-op if none).

    The exception carries ``.errors`` (the sorted records) and ``.file``.
    """
    unique = {str(record): record for record in errors}  # values may be unhashable lists
    lines = sorted(unique, key=lambda line: unique[line].sort_key())
    records = [unique[line] for line in lines]
    if not records:
        return
    count = f"{len(records)} problem" + ("s" if len(records) > 1 else "")
    message = "\n".join([f"{file}: {count} in the search space", *lines])
    raise SpaceValidationError(message, errors=records, file=file)


class Problems:
    """Collects problems while a space is parsed, locating each one by its key path.

    ``marks`` maps a key path to ``(key_mark, value_mark)``, each a 1-based ``(line, col)``
    or None; a path without a mark falls back to its nearest marked ancestor.
    """

    def __init__(self, file: str, marks: dict[Path, tuple[Any, Any]] | None = None) -> None:
        self.file = file
        self.marks = marks or {}
        self.errors: list[SpaceError] = []

    def locate(self, path: Path, *, at_key: bool = False) -> tuple[int | None, int | None]:
        """Line and column of ``path`` (its key when ``at_key``, else its value)."""
        for end in range(len(path), -1, -1):
            marks = self.marks.get(tuple(path[:end]))
            if marks is None:
                continue
            mark = marks[0] if at_key and end == len(path) else marks[1]
            mark = mark or marks[0] or marks[1]
            if mark is not None:
                return mark
        return None, None

    def add(
        self,
        path: Path,
        expected: str,
        got: Any,
        code: str,
        hint: str | None = None,
        *,
        at_key: bool = False,
    ) -> None:
        """Record one problem at ``path``."""
        line, col = self.locate(tuple(path), at_key=at_key)
        self.errors.append(
            SpaceError(self.file, line, col, tuple(path), expected, got, code, hint)
        )

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self) -> None:
        """Raise the collected problems as one :class:`SpaceValidationError`."""
        raise_problems(self.file, self.errors)
