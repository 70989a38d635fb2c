"""The study a command uses when no path is given: the one ``autometa search`` wrote here.

``autometa search`` without ``--storage`` stores its study in ``runs/<space>-<strategy>-
seed<seed>.db`` under the current folder (:func:`autometa.experiment.default_storage_path`).
``show``, ``plot``, ``export`` and ``resume`` without a path look in that folder: one study
there is the one they use; several are listed (like ``optuna studies``) so the user names
one; none is said in one line. Both are usage errors (exit code 2).
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from pathlib import Path

from autometa.errors import ConfigurationError

__all__ = ["DEFAULT_FOLDER", "add_storage_argument", "default_study", "resolve_storage"]

DEFAULT_FOLDER = Path("runs")
"""Where ``autometa search`` stores a study without ``--storage``, relative to the current
folder (the parent of :func:`autometa.experiment.default_storage_path`)."""


def add_storage_argument(p: argparse.ArgumentParser, metavar: str = "STORAGE") -> None:
    """The optional positional study path of ``show``, ``plot``, ``export`` and ``resume``."""
    p.add_argument(
        "storage",
        metavar=metavar,
        nargs="?",
        default=None,
        help=f"the study's SQLite file (default: the only study in {DEFAULT_FOLDER}/, where "
        "`autometa search` stores one without --storage)",
    )


def resolve_storage(args: argparse.Namespace) -> str:
    """``args.storage``, or the default study when none was given (written back to ``args``,
    so later error messages name the file)."""
    if args.storage is None:
        args.storage = str(default_study(args.command))
    return str(args.storage)


def default_study(command: str, folder: Path = DEFAULT_FOLDER) -> Path:
    """The one study file (``*.db``) in ``folder``.

    Raises:
        ConfigurationError: ``folder`` holds no study file, or several (the message lists
            them by name with their trial counts and when they last changed, and shows the
            command with the first).
    """
    found = sorted(p for p in folder.glob("*.db") if p.is_file()) if folder.is_dir() else []
    if len(found) == 1:
        return found[0]
    if not found:
        raise ConfigurationError(
            f"no study given and none in {folder}/ (where `autometa search` stores one without "
            f"--storage); give the study's file: autometa {command} STUDY.db"
        )
    listing = "; ".join(f"{p} ({_summary(p)})" for p in found)
    raise ConfigurationError(
        f"no study given and {folder}/ holds {len(found)}: {listing}; name one, e.g. "
        f"autometa {command} {found[0]}"
    )


def _modified(path: Path) -> float:
    """When the study last changed: its file's or its write-ahead log's time, the later."""
    times = []
    for file in (path, path.with_name(path.name + "-wal")):
        try:
            times.append(file.stat().st_mtime)
        except OSError:
            pass
    return max(times, default=0.0)


def _summary(path: Path) -> str:
    """``12 trials, changed 2026-01-02 10:11`` read without writing (the file is untrusted:
    anything unreadable is said so, never raised)."""
    changed = time.strftime("%Y-%m-%d %H:%M", time.localtime(_modified(path)))
    try:
        connection = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
        try:
            (count,) = connection.execute("SELECT count(*) FROM trials").fetchone()
        finally:
            connection.close()
    except (sqlite3.Error, ValueError, TypeError):
        return f"not a readable study, changed {changed}"
    return f"{count} trial{'s' if count != 1 else ''}, changed {changed}"
