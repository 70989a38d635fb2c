"""The search spaces shipped with autometa, addressable by name (``"tiny"``, ``"dag_cell"``).

Their single source is the ``search_spaces/`` folder at the top of the repository. A wheel
carries it as the data-only package ``autometa.search_spaces`` (``package-dir`` in
``pyproject.toml``), an editable install maps that name onto the folder, and a plain checkout
on ``sys.path`` reads the folder beside the ``autometa`` package. This module needs only the
standard library, so the light commands (``autometa spaces``, ``--help``) can list the spaces
without importing the rest of autometa.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
from pathlib import Path

from autometa.errors import SpaceValidationError

__all__ = ["is_space_name", "shipped_folder", "shipped_path", "shipped_spaces"]

_SUFFIXES = (".yaml", ".yml", ".json")
_PACKAGE = "autometa.search_spaces"
_CHECKOUT = Path(__file__).resolve().parent.parent / "search_spaces"


def shipped_folder() -> Path:
    """The folder holding the shipped ``*.yaml`` files.

    The installed package ``autometa.search_spaces`` (a wheel, or an editable install's
    mapping) when there is one, else ``search_spaces/`` beside the package in a checkout.

    Raises:
        SpaceValidationError: neither exists (an installation without its package data).
    """
    spec = importlib.util.find_spec(_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        if Path(location).is_dir():
            return Path(location)
    if _CHECKOUT.is_dir():
        return _CHECKOUT
    message = (
        f"{_PACKAGE}: the shipped search spaces are missing from this installation "
        f"(expected the package {_PACKAGE} or the folder {_CHECKOUT}); reinstall autometa"
    )
    raise SpaceValidationError(message, errors=[], file=_PACKAGE)


def shipped_spaces() -> dict[str, Path]:
    """The shipped spaces: name (the file name without ``.yaml``) -> path, sorted by name."""
    return {p.stem: p for p in sorted(shipped_folder().glob("*.yaml"))}


def is_space_name(source: str) -> bool:
    """Whether ``source`` reads as a space name rather than a path.

    A name has no path separator and no file extension, and no file of that name exists in
    the working folder (an existing file always wins, so a local ``tiny`` file is read as is).
    """
    return (
        bool(source)
        and "/" not in source
        and os.sep not in source
        and (os.altsep is None or os.altsep not in source)
        and not source.lower().endswith(_SUFFIXES)
        and source not in (".", "..")
        and not os.path.exists(source)
    )


def shipped_path(name: str) -> Path:
    """The file of the shipped space ``name``.

    Raises:
        SpaceValidationError: one line naming the unknown space, the closest shipped name if
            there is one, and every shipped name.
    """
    spaces = shipped_spaces()
    if name in spaces:
        return spaces[name]
    close = difflib.get_close_matches(name, list(spaces), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    message = (
        f"{name}: not a file and not a shipped search space.{hint} "
        f"Shipped spaces: {', '.join(spaces)}"
    )
    raise SpaceValidationError(message, errors=[], file=name)
