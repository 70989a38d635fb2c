"""Where user code comes from: installed plugins and modules the user names.

autometa never imports a module, or calls an object, because a study file names it: a study
refers to its evaluator, strategy and task family by *registered name*, and names are looked
up in registries only (``EVALUATORS``, ``STRATEGIES``, ``TASKS``, ``OPS``). Registries are
filled by

- autometa itself (the built-in names);
- installed plugins: packages that declare an entry point in the ``autometa.plugins`` group.
  Each entry point names a module (``my_pkg.autometa_plugin``) that registers its things when
  imported. :func:`load_plugins` imports them all, once; registries call it before they call
  a name unknown;
- installed executors: an entry point in the ``autometa.executors`` group names an executor
  class (``"my_pkg.executor:MyExecutor"``) under the entry point's name; it is imported only
  when a search asks for that name (:func:`entry_point_targets`);
- modules the user names: ``--import MODULE_OR_FILE`` on the command line
  (:func:`import_modules`), or a plain ``import`` in Python.

Example ``pyproject.toml`` of a plugin package::

    [project.entry-points."autometa.plugins"]
    my_evaluators = "my_pkg.autometa_plugin"

    [project.entry-points."autometa.executors"]
    slurm = "my_pkg.executor:SlurmExecutor"
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Iterable
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from autometa.errors import PluginError

__all__ = [
    "EXECUTOR_GROUP",
    "PLUGIN_GROUP",
    "entry_point_targets",
    "import_module_or_file",
    "import_modules",
    "load_plugins",
]

log = logging.getLogger(__name__)

#: The entry-point group installed packages use to register evaluators, strategies, tasks.
PLUGIN_GROUP = "autometa.plugins"

#: The entry-point group installed packages use to add executors: ``name = "module:Class"``.
EXECUTOR_GROUP = "autometa.executors"

_loaded: list[str] | None = None


def load_plugins() -> list[str]:
    """Import every installed ``autometa.plugins`` entry point (once per process).

    A plugin that fails to import is logged as a warning and skipped, so one broken package
    does not stop every command; a name it would have registered is then reported unknown.

    Returns:
        The names of the entry points that loaded.
    """
    global _loaded
    if _loaded is not None:
        return list(_loaded)
    _loaded = []  # set first: a plugin that looks a name up while importing does not recurse
    for point in entry_points(group=PLUGIN_GROUP):
        try:
            point.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop autometa
            log.warning("autometa plugin %r (%s) could not be loaded: %s", point.name,
                        point.value, _first_line(exc))  # fmt: skip
            continue
        _loaded.append(point.name)
    return list(_loaded)


def entry_point_targets(group: str) -> dict[str, str]:
    """``name -> "module:attr"`` for every installed entry point in ``group``.

    Nothing is imported: a registry keeps each target as a lazy entry and imports it the
    first time its name is asked for, so an installed executor costs nothing until used.
    """
    return {point.name: point.value for point in entry_points(group=group)}


def import_modules(specs: Iterable[str]) -> list[str]:
    """Import each of ``specs`` with :func:`import_module_or_file`, in order.

    Returns:
        What a study records for each: the module name, or the file's absolute path.

    Raises:
        PluginError: one of them cannot be imported (the message names it).
    """
    recorded = []
    for spec in specs:
        module = import_module_or_file(spec)
        recorded.append(module.__file__ if _is_file(spec) and module.__file__ else spec)
    return recorded


def import_module_or_file(spec: str) -> ModuleType:
    """Import a module by dotted name (``my_pkg.evaluators``) or a Python file by path.

    A file ``path/to/my_eval.py`` is imported as the module ``my_eval`` with its folder
    appended to ``sys.path``, so worker processes can unpickle the objects it defines.

    Raises:
        PluginError: no such module or file, a file name that is not a module name, a module
            of that name that is another file, or the module raised while importing.
    """
    if not _is_file(spec):
        return _import(spec, spec)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise PluginError(f"--import {spec}: no such Python file")
    path = path.resolve()
    name = path.stem
    if not name.isidentifier():
        raise PluginError(
            f"--import {spec}: the file name must be a Python module name "
            f"(letters, digits and _), got {name!r}"
        )
    module = sys.modules.get(name)
    if module is None:
        if str(path.parent) not in sys.path:
            sys.path.append(str(path.parent))
        module = _import(name, spec)
    where = getattr(module, "__file__", None)
    if where is None or Path(where).resolve() != path:
        raise PluginError(
            f"--import {spec}: the module name {name!r} is taken by {where or 'a built-in'}; "
            "rename the file"
        )
    return module


def _is_file(spec: str) -> bool:
    return spec.endswith(".py") or os.sep in spec or bool(os.altsep and os.altsep in spec)


def _import(name: str, spec: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name or name.startswith(f"{exc.name}."):
            raise PluginError(f"--import {spec}: no module named {name!r}") from exc
        raise PluginError(f"--import {spec}: importing it failed: {_first_line(exc)}") from exc
    except Exception as exc:  # noqa: BLE001 - the user's module: report it in one line
        raise PluginError(
            f"--import {spec}: importing it raised {type(exc).__name__}: {_first_line(exc)}"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
