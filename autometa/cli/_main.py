"""Argument parsing and dispatch for the ``autometa`` console script.

A command's module is imported only when that command runs: the command table names each
one's parser-building function as a ``"module:function"`` string, resolved on use (as
entry points are). ``autometa --help``, ``--version`` and ``autometa spaces`` therefore start
without importing torch; a heavy command imports what it needs when it is chosen.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence

from autometa import __version__
from autometa._study_file import study_file_error
from autometa.cli._args import OneLineParser
from autometa.cli._signals import EXIT_INTERRUPTED, exit_code, report, signals_as_interrupts
from autometa.errors import AutometaError
from autometa.plugins import import_modules

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

#: Exit code after a closed output pipe (``autometa show ... | head -1``): 128 + SIGPIPE.
EXIT_BROKEN_PIPE = 141

__all__ = [
    "COMMANDS",
    "EXIT_BROKEN_PIPE",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "main",
]

#: Every subcommand, in the order ``--help`` lists them: its one-line help and the
#: ``"module:function"`` that adds its full parser (options, description, handler).
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("check a search-space file and summarise it", "autometa.cli._space:add_validate"),
    "sample": (
        "draw seeded candidates from a space and print or save them",
        "autometa.cli._space:add_sample",
    ),
    "spaces": ("list the search spaces shipped with autometa", "autometa.cli._spaces:add_spaces"),
    "export": (
        "write a trial's architecture and meta-learned weights to a folder",
        "autometa.cli._export:add_export",
    ),
    "plot": (
        "draw a stored search: progress, score vs size with the Pareto front, best graph",
        "autometa.cli._export:add_plot",
    ),
    "search": (
        "search a space for the architecture that meta-learns best",
        "autometa.cli._search:add_search",
    ),
    "resume": (
        "continue a stored search with its stored configuration",
        "autometa.cli._resume:add_resume",
    ),
    "show": ("print a study's leaderboard and status counts", "autometa.cli._show:add_show"),
}


def _resolve(target: str) -> Callable[[argparse._SubParsersAction], None]:
    """The function a ``"module:function"`` string names (the module is imported now)."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _chosen(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` names: its first word that is not an option (global options
    take no value), or None."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The top-level parser; only the subcommand ``argv`` names gets its full parser.

    The other subcommands are registered by name and help line only, so that building the
    parser imports the module of one command at most. Without ``argv`` every subcommand
    gets its full parser (every command module is imported).
    """
    parser = OneLineParser(
        prog="autometa",
        description="Neural architecture search for policies that meta-learn RL tasks.",
    )
    parser.add_argument("--version", action="version", version=f"autometa {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    chosen = _chosen(argv) if argv is not None else None
    for name, (help_line, target) in COMMANDS.items():
        if argv is None or name == chosen:
            _resolve(target)(sub)
        else:
            sub.add_parser(name, help=help_line)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code.

    A reader that closes the output early (``autometa show study.db | head -1``) ends the
    command quietly with ``EXIT_BROKEN_PIPE``: no traceback, and nothing more is written.
    """
    try:
        code = _run(list(sys.argv[1:] if argv is None else argv))
        sys.stdout.flush()  # a closed pipe shows here, while it can still be handled
        return code
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE


def _discard_stdout() -> None:
    """Point standard output at the null device, so that the flush at exit cannot fail."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by a stream without a descriptor
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _run(argv: list[str]) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        if getattr(args, "imports", None):  # --import: user code that registers names
            args.imports = import_modules(args.imports)
        with signals_as_interrupts():
            return int(handler(args) or EXIT_OK)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM / SIGHUP (Terminated)
        report(exc, "")
        return exit_code(exc)
    except (AutometaError, FileNotFoundError, IsADirectoryError) as exc:
        print(f"autometa {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except sqlite3.Error as exc:  # the study file's own failure, reached outside storage
        where = getattr(args, "storage", None) or "the study"
        print(
            f"autometa {args.command}: error: {study_file_error(exc, where) or f'{where}: {exc}'}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS):
            raise
        print(f"autometa {args.command}: error: {_os_error(exc, args)}", file=sys.stderr)
        return EXIT_USAGE


def _os_error(exc: OSError, args: argparse.Namespace) -> str:
    """One line for a file the command could not write: which file and what to do."""
    written = (getattr(args, name, None) for name in ("csv", "out", "out_dir", "storage"))
    where = exc.filename or next((w for w in written if w is not None), "a file")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"{where}: no space left on the disk ({exc.strerror}); free some space and run "
            "the command again (the study keeps everything written before)"
        )
    return f"{where}: cannot write here ({exc.strerror}); choose a folder you can write"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
