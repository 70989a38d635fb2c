"""The record an evaluator returns for one candidate."""

from __future__ import annotations

import math
import platform
from dataclasses import dataclass, field
from typing import Any, Protocol

import networkx as nx
import numpy
import torch

from autometa import __version__
from autometa.errors import BuildError, EvaluationError, GraphValidationError

__all__ = [
    "EvalResult",
    "Evaluator",
    "Trained",
    "failed_result",
    "is_candidate_error",
    "is_out_of_memory",
    "runtime_versions",
]


@dataclass
class EvalResult:
    """What an evaluation of one candidate produced.

    Attributes:
        status: ``"ok"``, ``"failed"`` or ``"pruned"``; a failed result never carries a usable
            score; a pruned one (stopped early by its reporter, ``docs/pruning.md``) carries
            its last reported value.
        score: the value to maximise (post-adaptation return for MAML); NaN when failed.
        objectives: extra objective values for multi-objective search (e.g. ``params``).
        metrics: JSON-safe details: returns before/after adaptation, learning curve,
            parameter count, MACs, env steps, wall time, device, seed, versions.
        error: why the evaluation failed (exception text, ``"nan in loss"``, ...).
        state_dict: the meta-learned initial weights, for export; None when not kept.
        fidelity: how far the evaluation ran (meta-iterations), for multi-fidelity search.
        step_sizes: the meta-learned per-parameter inner step sizes of Meta-SGD, keyed like
            ``state_dict`` (one tensor of the parameter's shape each), for export and
            ``autometa.adapt``; None without Meta-SGD or when the weights are not kept.
        training_state: where meta-training stopped, as named CPU tensors, when asked for
            (``keep_training_state=True``), so that a later evaluation continues it
            (``autometa.meta.training_state``); None otherwise.
    """

    status: str
    score: float = math.nan
    objectives: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    state_dict: dict[str, Any] | None = None
    fidelity: int | None = None
    step_sizes: dict[str, Any] | None = None
    training_state: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """True when the evaluation finished with a finite score."""
        return self.status == "ok" and math.isfinite(self.score)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe view without the weights and step sizes (they are stored separately)."""
        return {
            "status": self.status,
            "score": self.score,
            "objectives": dict(self.objectives),
            "metrics": dict(self.metrics),
            "error": self.error,
            "fidelity": self.fidelity,
        }


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


def failed_result(error: str, **metrics: Any) -> EvalResult:
    """A failed :class:`EvalResult` with its reason."""
    return EvalResult(status="failed", error=error, metrics=dict(metrics))


class Evaluator(Protocol):
    """What the search calls to score a candidate. Must not raise for a bad candidate."""

    def __call__(
        self, graph: nx.DiGraph, *, seed: int, device: str | None = None
    ) -> EvalResult: ...


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
