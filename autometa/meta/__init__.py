"""Scoring candidates: MAML meta-training and few-step adaptation over task families."""

from autometa.meta.result import EvalResult, Evaluator, failed_result, runtime_versions

__all__ = ["EvalResult", "Evaluator", "failed_result", "runtime_versions"]
