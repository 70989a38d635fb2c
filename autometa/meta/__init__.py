"""Scoring candidates: MAML meta-training and few-step adaptation over task families.

The names below are what users need: the evaluator and its configuration, the result record,
the two loops of an evaluation (:func:`meta_train`, :func:`adapt_to_tasks`) and the registries
of outer steps and meta-learners. Each is imported here from its one home. The algorithm's
stages are public modules too, for code that builds on them (``autometa.meta.rollout``,
``baseline``, ``inner``, ``maml``, ``linalg``, ``trpo``, ``outer``, ``traced``,
``cuda_graphs``, ...; each lists in ``__all__`` only the names it defines); see
``docs/evaluator.md`` for what each holds and for one meta-iteration through them.
"""

from autometa._maml_config import PRESETS, MAMLConfig, config_for, settable_fields
from autometa._meta_learners import META_LEARNERS, MetaLearner
from autometa.evaluation import EvalResult, Evaluator, failed_result
from autometa.meta import _promp  # noqa: F401  (registers the "promp" meta-learner)
from autometa.meta._training import Adaptation, adapt_to_tasks, meta_train
from autometa.meta.evaluator import MAMLEvaluator
from autometa.meta.outer import OUTER_STEPS, OuterStep
from autometa.meta.result import is_candidate_error, runtime_versions
from autometa.meta.synthetic import SyntheticObjective

__all__ = [
    "META_LEARNERS",
    "OUTER_STEPS",
    "PRESETS",
    "Adaptation",
    "EvalResult",
    "Evaluator",
    "MAMLConfig",
    "MAMLEvaluator",
    "MetaLearner",
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
