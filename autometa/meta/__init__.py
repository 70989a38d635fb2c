"""Scoring candidates: MAML meta-training and few-step adaptation over task families.

The names below are what users need: the evaluator and its configuration, the result record,
the two loops of an evaluation (:func:`meta_train`, :func:`adapt_to_tasks`) and the registry
of outer steps. The algorithm's stages are public modules too, for code that builds on them
(``autometa.meta.rollout``, ``baseline``, ``maml``, ``linalg``, ``trpo``, ``outer``,
``traced``, ``cuda_graphs``, ...; each lists its names in ``__all__``); see
``docs/evaluator.md`` for what each holds and for one meta-iteration through them.
"""

from autometa.meta import _promp  # noqa: F401  (registers the "promp" meta-learner)
from autometa.meta.config import PRESETS, MAMLConfig, config_for, settable_fields
from autometa.meta.evaluator import (
    Adaptation,
    MAMLEvaluator,
    adapt_to_tasks,
    is_candidate_error,
    meta_train,
)
from autometa.meta.outer import OUTER_STEPS, OuterStep
from autometa.meta.result import EvalResult, Evaluator, failed_result, runtime_versions
from autometa.meta.synthetic import SyntheticObjective

__all__ = [
    "OUTER_STEPS",
    "PRESETS",
    "Adaptation",
    "EvalResult",
    "Evaluator",
    "MAMLConfig",
    "MAMLEvaluator",
    "OuterStep",
    "SyntheticObjective",
    "adapt_to_tasks",
    "config_for",
    "failed_result",
    "is_candidate_error",
    "meta_train",
    "runtime_versions",
    "settable_fields",
]
