"""Running searches: trial records, storage, executors, budgets, multi-fidelity, progress.

>>> import autometa
>>> result = autometa.search(  # doctest: +SKIP
...     "tiny", strategy="random",
...     evaluator=autometa.SyntheticObjective(), budget=autometa.Budget(trials=10),
...     storage="runs/tiny.db", workers=2,
... )
>>> result.best.score, len(result.trials)  # doctest: +SKIP

See ``docs/experiments.md``.
"""

from autometa.experiment._callbacks import Callback, CallbackList
from autometa.experiment._final import BASELINES, Final, baseline_graph, register_baseline
from autometa.experiment._lease import HEARTBEAT_ENV, Lease
from autometa.experiment._loggers import MLflowCallback, TensorBoardCallback
from autometa.experiment._references import (
    EVALUATORS,
    check_study,
    rebuild_evaluator,
    register_evaluator,
)
from autometa.experiment._verdict import Verdict, VerdictEntry, verdict
from autometa.experiment.budget import Budget, Usage
from autometa.experiment.executors import (
    EXECUTORS,
    BaseExecutor,
    InlineExecutor,
    ProcessExecutor,
    RayExecutor,
    default_devices,
    make_executor,
)
from autometa.experiment.fidelity import ASHA, BracketPlan, Hyperband, SuccessiveHalving
from autometa.experiment.progress import ProgressBar
from autometa.experiment.pruners import (
    PRUNERS,
    DominancePruner,
    MedianPruner,
    PercentilePruner,
    Pruner,
    make_pruner,
)
from autometa.experiment.search import (
    SearchResult,
    default_storage_path,
    describe_evaluator,
    load_result,
    search,
)
from autometa.experiment.storage import (
    HEARTBEAT_SECONDS,
    STALE_AFTER_HEARTBEATS,
    BaseStorage,
    InMemoryStorage,
    SQLiteStorage,
    get_storage,
)
from autometa.experiment.trial import (
    FinalRun,
    SessionInfo,
    StudyInfo,
    TrialRecord,
    TrialState,
    final_seeds,
    seed_list,
    trial_seed,
)

__all__ = [
    "ASHA",
    "BASELINES",
    "EVALUATORS",
    "EXECUTORS",
    "HEARTBEAT_ENV",
    "HEARTBEAT_SECONDS",
    "PRUNERS",
    "STALE_AFTER_HEARTBEATS",
    "BaseExecutor",
    "BaseStorage",
    "BracketPlan",
    "Budget",
    "Callback",
    "CallbackList",
    "DominancePruner",
    "Final",
    "FinalRun",
    "Hyperband",
    "InMemoryStorage",
    "InlineExecutor",
    "Lease",
    "MLflowCallback",
    "MedianPruner",
    "PercentilePruner",
    "ProcessExecutor",
    "ProgressBar",
    "Pruner",
    "RayExecutor",
    "SQLiteStorage",
    "SearchResult",
    "SessionInfo",
    "StudyInfo",
    "SuccessiveHalving",
    "TensorBoardCallback",
    "TrialRecord",
    "TrialState",
    "Usage",
    "Verdict",
    "VerdictEntry",
    "baseline_graph",
    "check_study",
    "default_devices",
    "default_storage_path",
    "describe_evaluator",
    "final_seeds",
    "get_storage",
    "load_result",
    "make_executor",
    "make_pruner",
    "register_baseline",
    "rebuild_evaluator",
    "register_evaluator",
    "search",
    "seed_list",
    "trial_seed",
    "verdict",
]
