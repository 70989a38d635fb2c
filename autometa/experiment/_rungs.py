"""Rungs that continue: a promoted trial's next rung resumes the meta-training of its last.

Between rungs the search stores where a trial's meta-training stopped (its
``EvalResult.training_state``, safetensors in the study) and sends it with the trial's next
job, so a candidate promoted through rungs of 10, 30 and 90 meta-iterations pays 90, not 130.
A state read back from the study is untrusted: it is decoded from safetensors and checked
(:meth:`~autometa.meta.training_state.TrainingState.from_tensors`); one that fails is logged
and the rung starts from scratch (it costs iterations, never correctness).
"""

from __future__ import annotations

import logging
from typing import Any

from autometa.errors import StorageError
from autometa.evaluation import EvalResult
from autometa.experiment._seed_states import split_seed_states
from autometa.experiment.storage.base import (
    BaseStorage,
    decode_training_state,
    encode_training_state,
)
from autometa.experiment.trial import TrialRecord
from autometa.meta.training_state import TrainingState

__all__ = ["new_iterations", "state_bytes", "stored_state"]

logger = logging.getLogger("autometa.experiment")


def stored_state(
    storage: BaseStorage, trial: TrialRecord, seeds: int = 1
) -> dict[str, Any] | None:
    """The checked training state stored for ``trial`` (named tensors), or None.

    A trial on ``seeds`` > 1 seeds stores every seed's state in one record
    (``autometa.experiment._seed_states``); each is checked. None when the trial has none (its
    first rung, an evaluator that keeps none) or when the stored one cannot be used (logged
    with the reason).
    """
    try:
        data = storage.get_training_state_bytes(trial.number)
        if data is None:
            return None
        tensors = decode_training_state(data)
        for part in split_seed_states(tensors, seeds):
            TrainingState.from_tensors(part)
    except (StorageError, ValueError) as exc:
        logger.warning(
            "trial %d: its stored training state cannot be used (%s); its rung starts from "
            "scratch",
            trial.number,
            exc,
        )
        return None
    return tensors


def state_bytes(result: EvalResult) -> bytes | None:
    """``result``'s training state as safetensors bytes to store, or None without one."""
    if not result.ok or not result.training_state:
        return None
    return encode_training_state(result.training_state)


def new_iterations(result: EvalResult, reached: int | None) -> int:
    """Meta-iterations this evaluation ran: ``reached`` less those it continued from."""
    start = result.metrics.get("resumed_from") if isinstance(result.metrics, dict) else None
    start = int(start) if isinstance(start, int) and not isinstance(start, bool) else 0
    return max(0, int(reached or 0) - start)
