"""Argument parsing and dispatch for the ``autometa`` console script."""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sqlite3
import sys
from collections.abc import Callable, Sequence

from autometa import __version__
from autometa.cli._args import OneLineParser
from autometa.cli._signals import EXIT_INTERRUPTED, exit_code, report, signals_as_interrupts
from autometa.errors import AutometaError
from autometa.experiment.storage._connection import study_file_error
from autometa.plugins import import_modules

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

__all__ = ["EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

_COMMANDS: list[tuple[str, str]] = [
    ("autometa.cli._space", "validate"),
    ("autometa.cli._space", "sample"),
    ("autometa.cli._space", "spaces"),
    ("autometa.cli._export", "export"),
    ("autometa.cli._export", "plot"),
    ("autometa.cli._search", "search"),
    ("autometa.cli._resume", "resume"),
    ("autometa.cli._show", "show"),
]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = OneLineParser(
        prog="autometa",
        description="Neural architecture search for policies that meta-learn RL tasks.",
    )
    parser.add_argument("--version", action="version", version=f"autometa {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module_name, command in _COMMANDS:
        module = importlib.import_module(module_name)
        getattr(module, f"add_{command}")(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
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
