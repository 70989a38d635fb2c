"""Scoring candidates: MAML meta-training and few-step adaptation over task families."""

from autometa.meta import _promp  # noqa: F401  (registers the "promp" meta-learner)
from autometa.meta.config import PRESETS, MAMLConfig, config_for
from autometa.meta.evaluator import (
    Adaptation,
    MAMLEvaluator,
    adapt,
    is_candidate_error,
    meta_train,
)
from autometa.meta.result import EvalResult, Evaluator, failed_result, runtime_versions
from autometa.meta.synthetic import SyntheticObjective

__all__ = [
    "PRESETS",
    "Adaptation",
    "EvalResult",
    "Evaluator",
    "MAMLConfig",
    "MAMLEvaluator",
    "SyntheticObjective",
    "adapt",
    "config_for",
    "failed_result",
    "is_candidate_error",
    "meta_train",
    "runtime_versions",
]
