"""``autometa spaces`` and the ``SPACE`` argument's help: the shipped spaces, without torch.

Only the standard library, PyYAML and :mod:`autometa._shipped` are imported here, so listing
the spaces (and every command's ``--help``) starts in a fraction of a second.
"""

from __future__ import annotations

import argparse

import yaml

from autometa._shipped import shipped_spaces

__all__ = ["add_spaces", "run_spaces", "shipped_names", "space_help"]


def shipped_names() -> list[str]:
    """Names of the spaces shipped with the package, found without importing torch."""
    return list(shipped_spaces())


def space_help() -> str:
    """Help text of a ``SPACE`` argument, listing the shipped names."""
    return (
        "a shipped space's name (one of: "
        + ", ".join(shipped_names())
        + "; see `autometa spaces`) or the path of a YAML or JSON search-space file"
    )


def add_spaces(sub: argparse._SubParsersAction) -> None:
    """Register ``autometa spaces``."""
    p = sub.add_parser(
        "spaces",
        help="list the search spaces shipped with autometa",
        description="List the shipped search spaces, each with its description. Any command "
        "that takes a SPACE accepts these names as well as file paths.",
    )
    p.set_defaults(handler=run_spaces)


def run_spaces(args: argparse.Namespace) -> int:
    """Print each shipped space's name and the description its file gives."""
    spaces = shipped_spaces()
    width = max(map(len, spaces))
    for name, path in spaces.items():
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        print(f"{name:<{width}}  {spec.get('description', '')}")
    return 0
