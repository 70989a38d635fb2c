"""The records of an evaluation: what an evaluator returns, and what MAML's training leaves.

:class:`EvalResult`, :func:`failed_result` and the :class:`Evaluator` protocol are defined in
:mod:`autometa.evaluation` (the evaluator contract, below both the evaluators and the search)
and imported from there; ``autometa.meta`` re-exports them for users.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

import numpy
import torch

from autometa import __version__
from autometa.errors import BuildError, EvaluationError, GraphValidationError

__all__ = [
    "Trained",
    "is_candidate_error",
    "is_out_of_memory",
    "runtime_versions",
]


@dataclass
class Trained:
    """What meta-training and the held-out test left for one candidate, before scoring.

    Attributes:
        meta: the meta-learned parameters (with Meta-SGD's ``"alpha.<name>"`` step sizes).
        post_curve: mean post-adaptation return of each meta-iteration's training tasks.
        pre_curve: the same before adaptation.
        train_steps: transitions stepped during meta-training.
        test_steps: transitions stepped during the held-out test.
    """

    meta: dict[str, torch.Tensor]
    post_curve: list[float]
    pre_curve: list[float]
    train_steps: int
    test_steps: int


def runtime_versions() -> dict[str, str]:
    """Versions recorded with every result: autometa, torch, numpy, Python."""
    return {
        "autometa": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocation failure: torch's or Python's, on any device."""
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def is_candidate_error(exc: BaseException) -> bool:
    """Whether ``exc`` says that one candidate is bad, not that the settings or code are.

    Candidate errors end as failed results: a graph that does not build or validate, NaN or
    Inf during training or test (:class:`EvaluationError`), and out-of-memory. Everything
    else (a configuration mistake, a bug) is raised, so it cannot fail every candidate quietly.
    """
    if isinstance(exc, BuildError | GraphValidationError | EvaluationError):
        return True
    return is_out_of_memory(exc)
