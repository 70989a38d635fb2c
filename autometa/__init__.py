"""autometa: neural architecture search for policies that meta-learn RL tasks.

Data flow: space file -> SearchSpace -> candidate graph -> torch policy -> MAML evaluation
-> trial record -> strategy -> ... -> export. See ``docs/design.md``.

The top-level names are resolved on first use, so ``import autometa`` stays cheap and never
imports an optional backend (nni, ray, mujoco).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "load_space": "autometa.space",
    "SearchSpace": "autometa.space",
    "shipped_spaces": "autometa.space",
    "build_policy": "autometa.policy",
    "register_op": "autometa.policy",
    "canonical_hash": "autometa.graph",
    "make_task": "autometa.tasks",
    "register_task": "autometa.tasks",
    "MAMLConfig": "autometa.meta",
    "MAMLEvaluator": "autometa.meta",
    "EvalResult": "autometa.evaluation",
    "SyntheticObjective": "autometa.meta",
    "make_strategy": "autometa.strategies",
    "search": "autometa.experiment",
    "Budget": "autometa.experiment",
    "Final": "autometa.experiment",
    "load_result": "autometa.experiment",
    "register_evaluator": "autometa.experiment",
    "export": "autometa.export",
    "load": "autometa.export",
    "adapt": "autometa.export",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        # ``autometa.export`` is a callable package: keep the module so that
        # ``autometa.export.plot`` works as well as ``autometa.export(...)``.
        value = module if name == "export" else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'autometa' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
