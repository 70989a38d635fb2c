"""Reading a space file (YAML or JSON) or dict into a :class:`SearchSpace`.

Files are read with PyYAML's safe loader only, so nothing in a file is ever executed; its
libyaml (C) parser reads them when PyYAML has it (``_yaml.py``), several times faster.
Problems are collected with their line and column and raised as one
:class:`~autometa.errors.SpaceValidationError`. The limits of ``_limits.py`` (file size,
alias expansion, integer digits) are checked while reading, before anything is built.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import yaml

from autometa._shipped import is_space_name, shipped_path
from autometa.space._errors import Problems, SpaceError, Text, raise_problems
from autometa.space._limits import (
    MAX_FILE_BYTES,
    MAX_INT_DIGITS,
)
from autometa.space._parse import parse_space
from autometa.space._yaml import LimitError, PureLoader, SpaceLoader
from autometa.space.space import SearchSpace

__all__ = ["load_space"]

Marks = dict[tuple, tuple[Any, Any]]
_INT_TAG = "tag:yaml.org,2002:int"
_INT_EXPECTED = f"an integer of at most {MAX_INT_DIGITS} digits"


def _mark(mark: Any) -> tuple[int, int] | None:
    return (mark.line + 1, mark.column + 1) if mark is not None else None


def _int_digits(node: Any) -> int:
    """Digits of an integer scalar (sign, ``_`` and a base prefix such as ``0x`` not counted)."""
    text = node.value.replace("_", "").lstrip("+-")
    if text[:2].lower() in ("0x", "0o", "0b"):
        text = text[2:]
    return sum(c.isalnum() for c in text)


def _walk(
    loader: Any, node: Any, path: tuple, marks: Marks, problems: Problems, seen: set[int]
) -> None:
    """Record the marks of every key path under ``node``; flag duplicate keys and long ints.

    An integer of more than ``MAX_INT_DIGITS`` digits is flagged before it is converted
    (Python refuses to convert more than a few thousand digits, and slowly).
    """
    if id(node) in seen:  # aliases may repeat (or nest) a node: visit it once
        return
    seen.add(id(node))
    if isinstance(node, yaml.ScalarNode):
        # a digit is a character: only a long literal can have too many
        digits = (
            _int_digits(node) if node.tag == _INT_TAG and len(node.value) > MAX_INT_DIGITS else 0
        )
        if digits > MAX_INT_DIGITS:
            got = Text(f"an integer of {digits} digits")
            problems.errors.append(
                _located(problems.file, node, path, _INT_EXPECTED, got, "int_too_long")
            )
    elif isinstance(node, yaml.MappingNode):
        keys: set[Any] = set()
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == _INT_TAG:
                _walk(loader, key_node, path, marks, problems, seen)  # an int key: check it
            try:
                key = loader.construct_object(key_node, deep=True)
                hash(key)
            except Exception:  # noqa: BLE001 - an odd key keeps its raw text
                key = getattr(key_node, "value", None)
            sub = (*path, key if isinstance(key, (str, int)) else str(key))
            if isinstance(key, (str, int)) and key in keys:
                problems.errors.append(
                    _located(
                        problems.file,
                        key_node,
                        sub,
                        "each key at most once",
                        key,
                        "duplicate_key",
                        "a later value would silently win",
                    )
                )
            keys.add(key)
            marks.setdefault(sub, (_mark(key_node.start_mark), _mark(value_node.start_mark)))
            _walk(loader, value_node, sub, marks, problems, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            marks.setdefault((*path, i), (None, _mark(item.start_mark)))
            if not isinstance(item, yaml.ScalarNode) or len(item.value) > MAX_INT_DIGITS:
                _walk(loader, item, (*path, i), marks, problems, seen)  # a short scalar is fine


def _located(
    file: str, node: Any, path: tuple, expected: str, got: Any, code: str, hint: str | None = None
) -> Any:
    line, col = _mark(node.start_mark) or (None, None)
    return SpaceError(file, line, col, path, expected, got, code, hint)


def _read_yaml(text: str, problems: Problems, marks: Marks) -> tuple[bool, Any]:
    """Read ``text`` as YAML, recording the marks of every key path in ``marks``.

    libyaml reads it when it is installed; a document libyaml refuses is read again by the
    pure loader, whose words are the ones messages give (a broken file is small or rare).
    """
    if SpaceLoader is not PureLoader:
        found = Problems(problems.file)
        try:
            ok, data = _compose(SpaceLoader, text, found, marks)
        except _Refused:
            marks.clear()
        else:
            problems.errors.extend(found.errors)
            return ok, data
    return _compose(PureLoader, text, problems, marks, words=True)


class _Refused(Exception):
    """The fast loader refused the document; the pure loader reads it again for the words."""


def _compose(
    loader_type: type, text: str, problems: Problems, marks: Marks, words: bool = False
) -> tuple[bool, Any]:
    """Compose, check and construct the document with ``loader_type``.

    With ``words`` False, a syntax error or an unreadable document raises :class:`_Refused`
    instead of being recorded.
    """
    try:
        loader = loader_type(text)
    except yaml.YAMLError as exc:  # the reader refuses control characters up front
        if not words:
            raise _Refused from exc
        problems.add((), "valid YAML", Text(f"unreadable text ({exc})"), "yaml_syntax")
        return False, None
    try:
        node = loader.get_single_node()
        if node is None:
            return True, None
        marks[()] = (None, _mark(node.start_mark))
        _walk(loader, node, (), marks, problems, set())
        if any(e.code == "int_too_long" for e in problems.errors):
            return False, None
        return True, loader.construct_document(node)
    except LimitError as exc:
        line, col = _mark(exc.mark) or (None, None)
        problems.errors.append(
            SpaceError(problems.file, line, col, (), exc.expected, exc.got, exc.code)
        )
    except (yaml.YAMLError, RecursionError, ValueError, TypeError) as exc:
        if not words:
            raise _Refused from exc
        if isinstance(exc, yaml.MarkedYAMLError):
            mark = _mark(exc.problem_mark or exc.context_mark) or (None, None)
            problem = exc.problem or exc.context or "malformed YAML"
            problems.errors.append(
                _syntax_error(problems.file, mark, "valid YAML", f"{problem}", "yaml_syntax")
            )
        else:
            got = Text(f"an unreadable document ({exc})")
            problems.add((), "valid YAML", got, "yaml_syntax")
    finally:
        loader.dispose()
    return False, None


def _syntax_error(file: str, mark: tuple, expected: str, problem: str, code: str) -> Any:
    return SpaceError(
        file, mark[0], mark[1], (), expected, Text(f"a syntax error: {problem}"), code
    )


class _LongInt(Exception):
    """An integer literal of more than ``MAX_INT_DIGITS`` digits in a JSON file."""


def _json_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _LongInt(digits)
    return int(text)


def _read_json(text: str, problems: Problems, marks: Marks) -> tuple[bool, Any]:
    ok, data, long_int, nested = True, None, None, False
    try:
        data = json.loads(text, parse_int=_json_int)
    except _LongInt as exc:
        ok, long_int = False, exc
    except RecursionError:
        ok, nested = False, True
    except json.JSONDecodeError as exc:
        problems.errors.append(
            _syntax_error(
                problems.file, (exc.lineno, exc.colno), "valid JSON", exc.msg, "json_syntax"
            )
        )
        return False, None
    scratch = Problems(problems.file)  # JSON is (almost always) YAML: borrow its marks
    try:
        _read_yaml(text, scratch, marks)
    except Exception:  # noqa: BLE001 - marks are a nicety; JSON errors may omit line/col
        marks.clear()
    deep = [e for e in scratch.errors if e.code == "too_deep"]
    if deep or nested:  # the same depth limit as YAML (deeper, Python's recursion fails)
        problems.errors.extend(deep)
        if not deep:
            problems.add((), "valid JSON", Text("a document nested too deeply"), "json_syntax")
        return False, None
    keep = "duplicate_key" if ok else "int_too_long"
    found = [e for e in scratch.errors if e.code == keep]
    problems.errors.extend(found)
    if long_int is not None and not found:  # the YAML reading found no place for it
        got = Text(f"an integer of {long_int.args[0]} digits")
        problems.add((), _INT_EXPECTED, got, "int_too_long")
    return ok, data


def _read_text(path: str, file: str, max_bytes: int) -> str:
    """The file's text, refusing one over ``max_bytes`` (regular file or endless stream)."""
    got = None
    try:
        with open(path, encoding="utf-8") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                got = f"{size} bytes"
            else:
                text = handle.read(max_bytes + 1)  # characters: never fewer than bytes
                if len(text) > max_bytes:
                    got = f"more than {max_bytes} bytes"
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        error = SpaceError(
            file, None, None, (), "a readable UTF-8 text file", Text(reason), "read_error"
        )
        raise_problems(file, [error])
        raise AssertionError("unreachable") from exc
    if got is not None:
        error = SpaceError(
            file,
            None,
            None,
            (),
            f"a file of at most {max_bytes} bytes",
            Text(got),
            "file_too_large",
            "pass max_bytes= to load_space to allow a larger file",
        )
        raise_problems(file, [error])
    return text


def load_space(
    source: str | os.PathLike[str] | Mapping[str, Any], *, max_bytes: int = MAX_FILE_BYTES
) -> SearchSpace:
    """Load and check a search space from a shipped space's name, a YAML/JSON file, or a dict.

    Args:
        source: the name of a shipped space (``"tiny"``, ``"dag_cell"``: see
            ``autometa spaces``), a ``.yaml``/``.yml``/``.json`` path (JSON by extension,
            YAML otherwise), or an already-parsed mapping (shown as ``<dict>`` in messages).
            A bare name without a path separator or extension is looked up among the shipped
            spaces unless a file of that name exists.
        max_bytes: the largest file read (default ``MAX_FILE_BYTES``, 1 MiB); a larger one
            is refused before it is parsed.

    Returns:
        The :class:`SearchSpace`.

    Raises:
        SpaceValidationError: listing every problem, each with the file, line, column and
            key path; ``str()`` is the text to show the user and ``.errors`` the records.
            An unknown space name gets one line listing the shipped spaces.
    """
    if isinstance(source, Mapping):
        problems = Problems("<dict>")
        parsed = parse_space(problems, source)
        problems.raise_if_any()
        return SearchSpace(parsed, source=None, file="<dict>", marks={})
    if isinstance(source, str) and is_space_name(source):
        source = shipped_path(source)
    path = os.fspath(source)
    file = os.path.basename(path) or path
    problems = Problems(file)
    text = _read_text(path, file, max_bytes)
    marks: Marks = {}
    reader = _read_json if path.lower().endswith(".json") else _read_yaml
    ok, data = reader(text, problems, marks)
    problems.marks = marks
    if ok:
        parsed = parse_space(problems, data)
    problems.raise_if_any()
    return SearchSpace(parsed, source=path, file=file, marks=marks)
