"""Export the best architecture, load it back, and adapt it to a new task.

>>> folder = autometa.export(result.best, "runs/best", storage=storage)   # doctest: +SKIP
>>> policy = autometa.load(folder)                                         # doctest: +SKIP
>>> adapted, returns = autometa.adapt(policy, make_task("navigation2d"), task=0)  # doctest: +SKIP

See ``docs/export.md`` for the folder layout and the fields of ``model.json``.
"""

from autometa.export._adapt import AdaptResult, adapt
from autometa.export._export import export
from autometa.export._files import FORMAT
from autometa.export._load import load, read_export
from autometa.export._plot import pareto_front, plot

__all__ = [
    "FORMAT",
    "AdaptResult",
    "adapt",
    "export",
    "load",
    "pareto_front",
    "plot",
    "read_export",
]
