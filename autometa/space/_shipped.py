"""The spaces shipped inside the package, addressable by name (``"tiny"``, ``"dag_cell"``).

They are package data (``autometa/space/shipped/*.yaml``) read through
:mod:`importlib.resources`, so they work from a wheel installed anywhere, not only from a
checkout of the repository.
"""

from __future__ import annotations

import atexit
import difflib
import os
from contextlib import ExitStack
from importlib import resources
from pathlib import Path

from autometa.errors import SpaceValidationError

__all__ = ["is_space_name", "shipped_path", "shipped_spaces"]

_SUFFIXES = (".yaml", ".yml", ".json")
_files = ExitStack()  # keeps extracted copies alive when the package is not on a file system
atexit.register(_files.close)


def _folder() -> Path:
    root = resources.files("autometa.space") / "shipped"
    if isinstance(root, Path):
        return root
    return _files.enter_context(resources.as_file(root))  # pragma: no cover - zipped installs


def shipped_spaces() -> dict[str, Path]:
    """The shipped spaces: name (the file name without ``.yaml``) -> path, sorted by name."""
    return {p.stem: p for p in sorted(_folder().glob("*.yaml"))}


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
