"""Argument types shared by the subcommands, and a parser that reports bad input in one line.

Each type checks a value when it is parsed, so ``--workers -1`` or ``--trial-timeout 0`` stop
the command with exit code 2 and ``autometa search: error: argument --workers: expected an
integer >= 0, got '-1'`` before anything is opened or spent.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

__all__ = [
    "IntermixedParser",
    "OneLineParser",
    "add_intermixed_parser",
    "integer",
    "memory_size",
    "number",
    "storage_path",
]


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line: ``autometa search: error: ...``.

    The usage block argparse prints by default is left out: ``--help`` shows it, and the
    message already names the option and what it expects.
    """

    def error(self, message: str) -> NoReturn:
        """Print ``<prog>: error: <message>`` and exit with code 2."""
        self.exit(2, f"{self.prog}: error: {message}\n")


class IntermixedParser(OneLineParser):
    """A :class:`OneLineParser` whose positionals may sit among the options.

    ``autometa export s.db --best OUT`` has an optional first positional (the study); plain
    argparse gives ``s.db`` to the last positional it can fill and then refuses ``OUT``.
    Parsing intermixed collects every positional first, then fills them in order.
    """

    _inner = False

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        """Intermixed parsing (which calls back here for each of its two passes)."""
        if self._inner:
            return super().parse_known_args(args, namespace)
        self._inner = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inner = False


def add_intermixed_parser(
    sub: argparse._SubParsersAction, name: str, **kwargs: object
) -> argparse.ArgumentParser:
    """``sub.add_parser(name, **kwargs)`` made an :class:`IntermixedParser`."""
    made_by = sub._parser_class
    sub._parser_class = IntermixedParser
    try:
        return sub.add_parser(name, **kwargs)
    finally:
        sub._parser_class = made_by


def _bound(value: int) -> str:
    """``2**63 - 1`` for a power of two less one, else the number."""
    bits = (value + 1).bit_length() - 1
    return f"2**{bits} - 1" if value == 2**bits - 1 and bits > 16 else str(value)


def integer(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type accepting whole numbers ``>= minimum`` (and ``<= maximum`` if given)."""
    expected = f">= {minimum}" if maximum is None else f"in [{minimum}, {_bound(maximum)}]"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected an integer {expected}, got {text!r}")
        return value

    parse.__name__ = f"integer {expected}"
    return parse


def number(minimum: float, *, strict: bool, unit: str = "a number") -> Callable[[str], float]:
    """An argparse type accepting finite numbers above ``minimum`` (``strict``) or at least it."""
    relation = ">" if strict else ">="

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        ok = math.isfinite(value) and (value > minimum if strict else value >= minimum)
        if not ok:
            raise argparse.ArgumentTypeError(
                f"expected {unit} {relation} {minimum:g}, got {text!r}"
            )
        return value

    parse.__name__ = f"number {relation} {minimum:g}"
    return parse


_UNITS = {"": 1, "b": 1, "k": 2**10, "kib": 2**10, "m": 2**20, "mib": 2**20, "g": 2**30,
          "gib": 2**30, "t": 2**40, "tib": 2**40, "kb": 10**3, "mb": 10**6, "gb": 10**9,
          "tb": 10**12}  # fmt: skip
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*$")


def memory_size(text: str) -> int | str | None:
    """An argparse type for a memory limit: bytes from ``8GiB``, ``512MiB``, ``1.5G``,
    ``1000000``; None for ``none``; ``"auto"`` for ``auto``.

    Binary units (``KiB``, ``MiB``, ``GiB``, ``TiB`` or ``K``, ``M``, ``G``, ``T``) and decimal
    ones (``KB``, ``MB``, ``GB``, ``TB``) are accepted, in any case.
    """
    word = text.strip().lower()
    if word in ("auto", "none"):
        return None if word == "none" else "auto"
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS or float(match.group(1)) * _UNITS[unit] < 1:
        raise argparse.ArgumentTypeError(
            f"expected a size such as 8GiB, 512MiB or a number of bytes, none or auto; "
            f"got {text!r}"
        )
    return int(float(match.group(1)) * _UNITS[unit])


memory_size.__name__ = "memory size"


def storage_path(text: str) -> str:
    """An argparse type for a study file to open or create: not a folder, somewhere writable.

    Checks what can be known without creating anything: the path is not a folder, none of its
    parents is a file, and the nearest existing folder accepts a new file (a trial file is
    created there and removed, which also rejects ``/proc`` and read-only mounts).
    """
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text} is a folder; expected the path of a SQLite file (e.g. {path / 'study.db'})"
        )
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(
                    f"{text}: {parent} is a file, not a folder; expected the path of a SQLite file"
                )
            if not path.exists():
                try:
                    with tempfile.TemporaryFile(dir=parent):
                        pass
                except OSError as exc:
                    reason = exc.strerror or str(exc)
                    raise argparse.ArgumentTypeError(
                        f"{text}: cannot create a file in {parent} ({reason}); expected the path "
                        "of a SQLite file in a writable folder"
                    ) from None
            break
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise argparse.ArgumentTypeError(f"{text}: the file is not readable and writable")
    return text
