"""How a study refers to its evaluator, strategy and task family: registered names only.

A study file is data. It names its evaluator and strategy by the names they are registered
under (``EVALUATORS``, ``STRATEGIES``, ``TASKS``) plus JSON options, and those names are looked
up in the registries; no module path read from a study is ever imported and no object it names
is called. A name that is not registered is refused with one line that names it, the valid
names and the ``--import`` the study was created with.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from typing import Any, cast

from autometa.errors import StorageError
from autometa.evaluation import ConfigExporting, Evaluator, abilities
from autometa.registry import Registry
from autometa.strategies import STRATEGIES, make_strategy
from autometa.tasks import TASKS

__all__ = [
    "EVALUATORS",
    "build_strategy",
    "check_study",
    "describe_evaluator",
    "evaluator_name",
    "rebuild_evaluator",
    "register_evaluator",
    "strategy_spec",
]

EVALUATORS: Registry[Any] = Registry("evaluator")
"""Registered evaluators: name -> class with ``from_config(config)`` (lazy ``"module:attr"``)."""

_BUILT_IN = {
    "maml": "autometa.meta.evaluator:MAMLEvaluator",
    "synthetic": "autometa.meta.synthetic:SyntheticObjective",
}
for _name, _entry in _BUILT_IN.items():
    EVALUATORS.register(_name, _entry)

# Studies written before evaluators had names recorded the class path as "target"; these
# built-in paths are mapped to their names by this table (nothing is imported from a path).
_LEGACY_TARGETS = {entry: name for name, entry in _BUILT_IN.items()}


def register_evaluator(name: str, entry: Any = None, *, overwrite: bool = False) -> Any:
    """Register an evaluator class under ``name`` so studies can refer to it.

    The class needs ``from_config(config) -> evaluator`` (a classmethod), and its instances
    ``to_config() -> dict`` (JSON-safe); a study stores the name and ``to_config()``, and
    ``autometa resume`` rebuilds the evaluator with ``from_config``. Without ``entry`` it
    returns a decorator. Register in a module that ``--import`` or a plugin imports.

    Raises:
        TypeError: ``entry`` has no ``from_config``.
        ValueError: ``name`` is taken (pass ``overwrite=True`` to replace it).
    """
    if entry is None:

        def decorator(obj: Any) -> Any:
            register_evaluator(name, obj, overwrite=overwrite)
            return obj

        return decorator
    if not isinstance(entry, str) and not callable(getattr(entry, "from_config", None)):
        raise TypeError(
            f"evaluator {name!r}: {getattr(entry, '__qualname__', entry)!r} has no "
            "from_config(config) classmethod, so a study could not rebuild it"
        )
    return EVALUATORS.register(name, entry, overwrite=overwrite)


def describe_evaluator(evaluator: Evaluator) -> dict[str, Any]:
    """``{"name": ..., "target": "module:Class", "config": {...}}``, stored with a study.

    ``name`` is the evaluator's registered name, or None when no registry knows its class
    (then only Python can resume the study). ``target`` is a record for people, never
    imported. ``config`` is ``evaluator.to_config()`` when it exists, else the JSON-safe public
    attributes (objects with ``to_dict()`` expanded, others by ``repr``).
    """
    cls = type(evaluator)
    description: dict[str, Any] = {
        "name": EVALUATORS.name_of(cls),
        "target": f"{cls.__module__}:{cls.__qualname__}",
    }
    if abilities(evaluator).to_config:
        description["config"] = cast(ConfigExporting, evaluator).to_config()
        return description
    config: dict[str, Any] = {}
    for name, value in vars(evaluator).items() if hasattr(evaluator, "__dict__") else []:
        if name.startswith("_"):
            continue
        if hasattr(value, "to_dict"):
            value = value.to_dict()
        config[name] = value if _json_safe(value) else repr(value)
    description["config"] = config
    return description


def evaluator_name(description: dict[str, Any]) -> Any:
    """The registered name a study's evaluator description refers to (None: unregistered).

    A description without ``name`` (written by an older autometa) refers to a built-in
    evaluator by its class path; any other path is returned as is, to be reported unknown.
    """
    if "name" in description:
        return description["name"]
    target = description.get("target")
    return _LEGACY_TARGETS.get(target, target) if isinstance(target, str) else target


def rebuild_evaluator(description: dict[str, Any], imports: Iterable[str] = ()) -> Any:
    """The evaluator a study recorded with :func:`describe_evaluator`, built again.

    Looks the name up in ``EVALUATORS`` and calls its ``from_config`` with the stored config.

    Raises:
        StorageError: the name is not registered (the message lists the valid names and the
            ``--import`` to pass), the evaluator was never registered, or the stored config
            does not fit it.
    """
    name = evaluator_name(description)
    if name is None:
        raise StorageError(_unregistered("evaluator", description.get("target")))
    _require(EVALUATORS, name, imports)
    factory = EVALUATORS.get(name)
    config = description.get("config") or {}
    if not isinstance(config, dict):
        raise StorageError(f"the study's evaluator config must be a dict, got {config!r}")
    try:
        return factory.from_config(dict(config))
    except (TypeError, ValueError, KeyError) as exc:
        raise StorageError(f"the study's evaluator {name!r} cannot be rebuilt: {exc}") from exc


def strategy_spec(strategy: Any) -> tuple[str, dict[str, Any], bool]:
    """``(name, options, registered)`` stored for a strategy given by name or as an instance.

    An instance of a registered class is stored by its name; any other instance by its class
    path, as a record (``registered`` False: only Python can resume such a study).
    """
    if isinstance(strategy, str):
        return strategy, {}, True
    options = dict(getattr(strategy, "options", {}) or {})
    name = STRATEGIES.name_of(type(strategy))
    if name is None:
        return f"{type(strategy).__module__}:{type(strategy).__qualname__}", options, False
    return name, options, True


def build_strategy(strategy: Any, space: Any, seed: int, options: dict[str, Any]) -> Any:
    """The strategy instance: as given, or made from its registered name."""
    if not isinstance(strategy, str):
        return strategy
    return make_strategy(strategy, space, seed=seed, **options)


def check_study(study: Any, where: str, *, resume: bool = False) -> None:
    """Refuse a study that refers to something no registry holds, before anything runs.

    Checks the evaluator's name, its task family, the strategy's name and the names in the
    stored command line. Nothing is imported or called. Parts recorded as unregistered
    objects (``study.unregistered``) pass, except when resuming: only Python, given the same
    objects again, can resume those.

    Raises:
        StorageError: one line naming the first problem, the valid names and what to pass.
    """
    imports = list(study.imports)
    try:
        for kind, registry, name in _named(study, resume):
            if name is None and kind in study.unregistered:
                target = study.evaluator.get("target") if kind == "evaluator" else study.strategy
                raise StorageError(_unregistered(kind, target))
            _require(registry, name, imports)
    except StorageError as exc:
        raise StorageError(f"{where}: {exc}") from None


def _named(study: Any, resume: bool) -> list[tuple[str, Registry[Any], Any]]:
    """``(kind, registry, name)`` for every name the study refers to; None: unregistered."""
    out: list[tuple[str, Registry[Any], Any]] = []
    evaluator = study.evaluator
    if "evaluator" not in study.unregistered:
        out.append(("evaluator", EVALUATORS, evaluator_name(evaluator)))
    elif resume:
        out.append(("evaluator", EVALUATORS, None))
    config = evaluator.get("config")
    family = config.get("task_family") if isinstance(config, dict) else None
    if family is not None:
        out.append(("task family", TASKS, family))
    if "strategy" not in study.unregistered:
        out.append(("strategy", STRATEGIES, study.strategy))
    elif resume:
        out.append(("strategy", STRATEGIES, None))
    cli = study.settings.get("cli")
    if isinstance(cli, dict):
        out.append(("evaluator", EVALUATORS, cli.get("objective")))
        out.append(("strategy", STRATEGIES, cli.get("strategy")))
        if cli.get("objective") == "maml":
            out.append(("task family", TASKS, cli.get("task")))
    return out


def _require(registry: Registry[Any], name: Any, imports: Iterable[str]) -> None:
    """Raise the one-line refusal when ``name`` is not registered."""
    if isinstance(name, str) and name in registry:
        return
    imports = list(imports)
    if imports:
        given = " ".join(f"--import {_quote(spec)}" for spec in imports)
        hint = f"The study was created with {given}: pass the same"
    else:
        hint = (
            "Pass the module that registers it with --import MODULE_OR_FILE, or install its plugin"
        )
    raise StorageError(f"the study names an {registry.unknown_message(name)}. {hint}")


def _unregistered(kind: str, target: Any) -> str:
    what = f"{target!r}" if isinstance(target, str) else "object"
    return (
        f"the study's {kind} {what} was not registered when the study was created; resume "
        "it from Python by calling autometa.search(...) on this storage with the same object"
    )


def _quote(text: str) -> str:
    return shlex.quote(text) if text.isprintable() else repr(text)


def _json_safe(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_json_safe(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_safe(v) for k, v in value.items())
    return False
