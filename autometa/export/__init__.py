"""Export the best architecture, load it back, and adapt it to a new task.

>>> result = autometa.experiment.load_result("runs/study.db")              # doctest: +SKIP
>>> folder = autometa.export(result, "runs/best")                          # doctest: +SKIP
>>> policy = autometa.load(folder)                                         # doctest: +SKIP
>>> adapted, returns = autometa.adapt(policy, "navigation2d", task=0)      # doctest: +SKIP

The package shares its name with its main function, so the package object is callable:
``autometa.export(...)`` runs :func:`export` whether or not ``autometa.export`` was imported
as a module first (importing a subpackage rebinds the parent's attribute to the module).

See ``docs/export.md`` for the folder layout and the fields of ``model.json``.
"""

import sys
import types
from typing import Any

from autometa.export._adapt import AdaptResult, adapt
from autometa.export._export import export
from autometa.export._files import FORMAT
from autometa.export._load import load, read_export
from autometa.export._plot import pareto_front, plot
from autometa.export._table import TRIAL_COLUMNS, trial_rows, write_trials_csv

__all__ = [
    "FORMAT",
    "TRIAL_COLUMNS",
    "AdaptResult",
    "adapt",
    "export",
    "load",
    "pareto_front",
    "plot",
    "read_export",
    "trial_rows",
    "write_trials_csv",
]


class _CallablePackage(types.ModuleType):
    """``autometa.export`` the package, callable as ``autometa.export`` the function."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
