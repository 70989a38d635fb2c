"""``--import MODULE_OR_FILE``: the option every command that opens a study takes.

``autometa.cli.main`` imports the named modules and files (``autometa.plugins.import_modules``)
before the command runs, so the evaluators, strategies and task families they register can be
named. A study never decides what is imported: it only records the list for its messages.
"""

from __future__ import annotations

import argparse


def add_import_option(p: argparse.ArgumentParser) -> None:
    """Add ``--import MODULE_OR_FILE`` (repeatable) to a command's parser."""
    p.add_argument(
        "--import", dest="imports", action="append", default=[], metavar="MODULE_OR_FILE",
        help="import a module or Python file first, so the evaluators, strategies and task "
        "families it registers can be used (repeatable)",
    )  # fmt: skip
