"""Running searches: trial records, storage, executors, budgets, multi-fidelity, progress.

>>> import autometa
>>> result = autometa.search(  # doctest: +SKIP
...     "search_spaces/tiny.yaml", strategy="random",
...     evaluator=autometa.SyntheticObjective(), budget=autometa.Budget(trials=10),
...     storage="runs/tiny.db", workers=2,
... )
>>> result.best.score, len(result.trials)  # doctest: +SKIP

See ``docs/experiments.md``.
"""

from autometa.experiment._ray import RayExecutor
from autometa.experiment.budget import Budget, Usage
from autometa.experiment.executors import (
    BaseExecutor,
    InlineExecutor,
    ProcessExecutor,
    default_devices,
)
from autometa.experiment.fidelity import BracketPlan, Hyperband, SuccessiveHalving
from autometa.experiment.progress import ProgressBar
from autometa.experiment.search import (
    SearchResult,
    default_storage_path,
    describe_evaluator,
    load_result,
    search,
)
from autometa.experiment.storage import (
    BaseStorage,
    InMemoryStorage,
    SQLiteStorage,
    get_storage,
)
from autometa.experiment.trial import StudyInfo, TrialRecord, TrialState, trial_seed

__all__ = [
    "BaseExecutor",
    "BaseStorage",
    "BracketPlan",
    "Budget",
    "Hyperband",
    "InMemoryStorage",
    "InlineExecutor",
    "ProcessExecutor",
    "ProgressBar",
    "RayExecutor",
    "SQLiteStorage",
    "SearchResult",
    "StudyInfo",
    "SuccessiveHalving",
    "TrialRecord",
    "TrialState",
    "Usage",
    "default_devices",
    "default_storage_path",
    "describe_evaluator",
    "get_storage",
    "load_result",
    "search",
    "trial_seed",
]
