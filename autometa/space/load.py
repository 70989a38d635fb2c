"""Reading a space file (YAML or JSON) or dict into a :class:`SearchSpace`.

Files are read with PyYAML's safe loader only, so nothing in a file is ever executed.
Problems are collected with their line and column and raised as one
:class:`~autometa.errors.SpaceValidationError`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

import yaml

from autometa.space._errors import Problems, SpaceError, Text, raise_problems
from autometa.space._parse import parse_space
from autometa.space._shipped import is_space_name, shipped_path
from autometa.space.space import SearchSpace

__all__ = ["load_space"]

Marks = dict[tuple, tuple[Any, Any]]


class _Loader(yaml.SafeLoader):
    """The safe loader, also reading ``1e-3`` as a float (YAML 1.1 wants ``1.0e-3``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _mark(mark: Any) -> tuple[int, int] | None:
    return (mark.line + 1, mark.column + 1) if mark is not None else None


def _walk(
    loader: _Loader, node: Any, path: tuple, marks: Marks, problems: Problems, seen: set[int]
) -> None:
    """Record the marks of every key path under ``node`` and flag duplicate keys."""
    if id(node) in seen:  # aliases may repeat (or nest) a node: visit it once
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys: set[Any] = set()
        for key_node, value_node in node.value:
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
            _walk(loader, item, (*path, i), marks, problems, seen)


def _located(
    file: str, node: Any, path: tuple, expected: str, got: Any, code: str, hint: str | None = None
) -> Any:
    line, col = _mark(node.start_mark) or (None, None)
    return SpaceError(file, line, col, path, expected, got, code, hint)


def _read_yaml(text: str, problems: Problems, marks: Marks) -> tuple[bool, Any]:
    try:
        loader = _Loader(text)
    except yaml.YAMLError as exc:  # the reader refuses control characters up front
        problems.add((), "valid YAML", Text(f"unreadable text ({exc})"), "yaml_syntax")
        return False, None
    try:
        node = loader.get_single_node()
        if node is None:
            return True, None
        marks[()] = (None, _mark(node.start_mark))
        _walk(loader, node, (), marks, problems, set())
        return True, loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = _mark(exc.problem_mark or exc.context_mark) or (None, None)
        problem = exc.problem or exc.context or "malformed YAML"
        problems.errors.append(
            _syntax_error(problems.file, mark, "valid YAML", f"{problem}", "yaml_syntax")
        )
    except (yaml.YAMLError, RecursionError, ValueError, TypeError) as exc:
        problems.add((), "valid YAML", Text(f"an unreadable document ({exc})"), "yaml_syntax")
    finally:
        loader.dispose()
    return False, None


def _syntax_error(file: str, mark: tuple, expected: str, problem: str, code: str) -> Any:
    return SpaceError(
        file, mark[0], mark[1], (), expected, Text(f"a syntax error: {problem}"), code
    )


def _read_json(text: str, problems: Problems, marks: Marks) -> tuple[bool, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.errors.append(
            _syntax_error(
                problems.file, (exc.lineno, exc.colno), "valid JSON", exc.msg, "json_syntax"
            )
        )
        return False, None
    except RecursionError:
        problems.add((), "valid JSON", Text("a document nested too deeply"), "json_syntax")
        return False, None
    scratch = Problems(problems.file)  # JSON is (almost always) YAML: borrow its marks
    try:
        _read_yaml(text, scratch, marks)
    except Exception:  # noqa: BLE001 - marks are a nicety; JSON errors may omit line/col
        marks.clear()
    problems.errors.extend(e for e in scratch.errors if e.code == "duplicate_key")
    return True, data


def load_space(source: str | os.PathLike[str] | Mapping[str, Any]) -> SearchSpace:
    """Load and check a search space from a shipped space's name, a YAML/JSON file, or a dict.

    Args:
        source: the name of a shipped space (``"tiny"``, ``"dag_cell"``: see
            ``autometa spaces``), a ``.yaml``/``.yml``/``.json`` path (JSON by extension,
            YAML otherwise), or an already-parsed mapping (shown as ``<dict>`` in messages).
            A bare name without a path separator or extension is looked up among the shipped
            spaces unless a file of that name exists.

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
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        error = SpaceError(
            file, None, None, (), "a readable UTF-8 text file", Text(reason), "read_error"
        )
        raise_problems(file, [error])
        raise AssertionError("unreachable") from exc
    marks: Marks = {}
    reader = _read_json if path.lower().endswith(".json") else _read_yaml
    ok, data = reader(text, problems, marks)
    problems.marks = marks
    if ok:
        parsed = parse_space(problems, data)
    problems.raise_if_any()
    return SearchSpace(parsed, source=path, file=file, marks=marks)
