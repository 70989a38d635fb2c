"""The command line a study stored, checked before ``autometa resume`` runs it again, and the
executor a command line names, built by name.

A study file is untrusted data: every stored option is checked for its type and range, the
worker count is capped, and a log folder the study names is used only inside the study's own
folder (or when the user passes ``--log`` again).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from autometa.cli._logs import LOG_KINDS
from autometa.errors import ConfigurationError, StorageError
from autometa.experiment import EXECUTORS, BaseExecutor, make_executor

__all__ = [
    "MAX_WORKERS",
    "build_executor",
    "check_executor",
    "check_recipe",
    "check_workers",
    "stored_logs",
]

MAX_WORKERS = (os.cpu_count() or 1) * 4
"""The most workers a stored setting may start (4 per CPU of this machine); ``--workers``
given on the command line is not capped."""


class _Bad(Exception):
    pass


def _int(low: int, none: bool = False) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if value is None and none:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise _Bad(f"expected an int >= {low}{' or null' if none else ''}, got {value!r}")

    return check


def _num(low: float, none: bool = True) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if value is None and none:
            return
        ok = not isinstance(value, bool) and isinstance(value, (int, float))
        if not ok or not math.isfinite(value) or value < low:
            raise _Bad(f"expected a number >= {low:g}{' or null' if none else ''}, got {value!r}")

    return check


def _of(*allowed: Any) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if value not in allowed:
            raise _Bad(f"expected one of {', '.join(map(repr, allowed))}, got {value!r}")

    return check


def _kind(*types: type, none: bool = False) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if value is None and none:
            return
        if not isinstance(value, types):
            names = " or ".join(t.__name__ for t in types) + (" or null" if none else "")
            raise _Bad(f"expected {names}, got {type(value).__name__}")

    return check


def _strings(value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Bad("expected a list of strings")


def _executor(value: Any) -> None:
    """None (the default executor) or a name registered here: nothing is imported for it."""
    if value is not None and (not isinstance(value, str) or value not in EXECUTORS):
        raise _Bad(
            f"{EXECUTORS.unknown_message(value)}; pass --executor NAME, or --import the module "
            "that registers it"
        )


def _memory(value: Any) -> None:
    if value not in (None, "auto"):
        _int(1)(value)


_CHECKS: dict[str, Callable[[Any], None]] = {
    "space": _kind(str),
    "strategy": _kind(str),
    "options": _kind(dict),
    "objective": _kind(str),
    "task": _kind(str),
    "meta_iterations": _int(1, none=True),
    "eval_options": _kind(dict),
    "fidelity": _of(None, "successive-halving", "hyperband", "asha"),
    "min_iterations": _int(1, none=True),
    "eta": _int(2),
    "seed": _int(0),
    "seeds": _int(1),
    "batch": _int(1),
    "final": _kind(dict, none=True),
    "trials": _int(1, none=True),
    "seconds": _num(0),
    "budget_meta_iterations": _int(1, none=True),
    "workers": _int(0),
    "executor": _executor,
    "ray_address": _kind(str, none=True),
    "gpus_per_trial": _num(0),
    "trial_timeout": _num(0),
    "max_memory": _memory,
    "imports": _strings,
    "log": _strings,
}


def _where(path: Path, key: str) -> str:
    return f"{path}: table study, row 1, field 'settings.{key}'"


def check_recipe(recipe: Any, path: Path, given: set[str]) -> None:
    """Check the stored command line's values (those given again on this command line are
    replaced and not checked here).

    Raises:
        StorageError: one line naming the file, the setting and what was expected.
    """
    if not isinstance(recipe, dict):
        raise StorageError(f"{_where(path, 'cli')}: expected an object")
    for key, check in _CHECKS.items():
        if key in recipe and key not in given:
            try:
                check(recipe[key])
            except _Bad as exc:
                raise StorageError(f"{_where(path, 'cli.' + key)}: {exc}") from None
    if "workers" not in given:
        check_workers(recipe.get("workers", 1), path, "cli.workers")


def check_executor(name: Any, path: Path, key: str = "executor") -> str | None:
    """A stored executor name: None or a name registered in ``EXECUTORS``.

    Raises:
        StorageError: one line naming the setting, the valid names and the way out.
    """
    try:
        _executor(name)
    except _Bad as exc:
        raise StorageError(f"{_where(path, key)}: {exc}") from None
    return name


def check_workers(workers: Any, path: Path, key: str = "workers") -> int:
    """A stored worker count: an int from 0 to :data:`MAX_WORKERS`.

    Raises:
        StorageError: one line naming the setting, the cap and the ``--workers`` way out.
    """
    try:
        _int(0)(workers)
    except _Bad as exc:
        raise StorageError(f"{_where(path, key)}: {exc}") from None
    if workers > MAX_WORKERS:
        raise StorageError(
            f"{_where(path, key)}: {workers} workers is over the cap of {MAX_WORKERS} (4 per "
            "CPU of this machine) for a stored setting; pass --workers N to choose"
        )
    return int(workers)


def _local(kind: str, where: str) -> Path | None:
    """The local path a ``--log`` target writes to, or None for a remote one."""
    if kind == "tensorboard":
        return Path(where)
    if where.startswith("sqlite:///"):
        return Path(where[len("sqlite:///") :])
    parsed = urlparse(where)
    if parsed.scheme == "file":
        return Path(parsed.path)
    return Path(where) if parsed.scheme == "" else None


def stored_logs(targets: list[str], path: Path) -> list[str]:
    """The stored ``--log`` targets a resume keeps: those inside the study's folder.

    Any other (a folder elsewhere, a remote tracking server) is left out with one warning
    line on stderr; passing ``--log`` again uses it.
    """
    home = path.resolve().parent
    kept = []
    for target in targets:
        kind, _, where = target.partition(":")
        local = _local(kind, where) if kind in LOG_KINDS and where else None
        if local is not None and local.resolve().is_relative_to(home):
            kept.append(target)
            continue
        print(
            f"autometa resume: warning: {path}: not logging to the stored --log {target} "
            f"(outside the study's folder {home}); pass --log {target} to log there",
            file=sys.stderr,
        )
    return kept


def build_executor(recipe: dict[str, Any]) -> BaseExecutor | None:
    """The executor ``recipe["executor"]`` names, built with the recipe's settings; None
    (the default, which follows ``--workers``) is left to ``search``.

    Raises:
        ValueError: an unknown name, with the valid names (``argument --executor: ...``).
    """
    if recipe["executor"] is None:
        return None
    try:
        return make_executor(
            recipe["executor"],
            workers=recipe["workers"],
            trial_timeout=recipe["trial_timeout"],
            ray_address=recipe["ray_address"],
            gpus_per_trial=recipe["gpus_per_trial"],
        )
    except ConfigurationError as exc:
        raise ValueError(f"argument --executor: {exc}") from None
