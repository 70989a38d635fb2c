"""A trial's job, and what its outcome writes: state, metrics, spent meta-iterations, weights."""

from __future__ import annotations

import logging
import math
from typing import Any

from autometa.evaluation import EvalResult
from autometa.experiment._candidates import told_value
from autometa.experiment._failures import log_failure
from autometa.experiment._pruning import PruneContext
from autometa.experiment._rungs import new_iterations, state_bytes, stored_state
from autometa.experiment._worker import TRIAL, Job, JobKey, Outcome
from autometa.experiment.fidelity import Scheduler
from autometa.experiment.storage.base import BaseStorage, encode_weights
from autometa.experiment.trial import TrialRecord, TrialState, seed_list

__all__ = ["outcome_fields", "outcome_weights", "trial_job", "write_outcome"]

logger = logging.getLogger("autometa.experiment")


def trial_job(
    trial: TrialRecord,
    pruning: PruneContext | None,
    *,
    seeds: int,
    scheduler: Scheduler,
    storage: BaseStorage,
) -> Job:
    """The job that evaluates ``trial``: at its rung's fidelity, on its ``seeds`` seeds.

    With a fidelity plan, a promoted trial continues the training states its last rung stored
    (one a seed), and every rung but the last asks for the states it reaches.
    """
    fidelity = scheduler.job_fidelity(trial)
    states = fidelity is not None  # rungs that continue
    return Job(
        JobKey(TRIAL, trial.number), trial.graph_json, trial.seed, fidelity,
        tuple(seed_list(trial.seed, seeds)) if seeds > 1 else (),
        pruning=pruning,
        resume=stored_state(storage, trial, seeds) if states and trial.rung else None,
        keep_state=states and not scheduler.is_final(trial),
    )  # fmt: skip


def outcome_fields(
    trial: TrialRecord,
    job: Job,
    outcome: Outcome,
    default_iterations: int | None,
    lost: list[str],
) -> dict[str, Any]:
    """The trial's fields once ``outcome`` is recorded, whatever state it ends in.

    ``metrics["meta_iterations_spent"]`` adds what this evaluation spent (nothing for one lost
    with its worker) to what the trial's earlier rungs spent; ``lost`` (the reasons of its
    evaluations lost with their worker) is kept when any; a trial of a multi-fidelity bracket
    adds this rung to ``metrics["rungs"]``; ``started`` is when the evaluation itself began,
    when the executor says.
    """
    result = outcome.result
    reached = result.fidelity if result.fidelity is not None else job.meta_iterations
    if reached is None:
        reached = default_iterations
    metrics = dict(result.metrics)
    metrics["meta_iterations_spent"] = int(trial.metrics.get("meta_iterations_spent") or 0) + (
        new_iterations(result, reached) if not outcome.lost else 0
    )
    if lost:
        metrics["lost"] = lost
    if trial.bracket is not None:
        rung = {"rung": trial.rung, "meta_iterations": job.meta_iterations}
        rung["score"] = result.score if result.ok else None
        metrics["rungs"] = [*trial.metrics.get("rungs", []), rung]
    fields: dict[str, Any] = dict(
        device=outcome.device,
        wall_time=(trial.wall_time or 0.0) + outcome.wall_time,
        fidelity=job.meta_iterations if job.meta_iterations is not None else reached,
        metrics=metrics,
        objectives=dict(result.objectives),
    )
    if outcome.started is not None:  # when the evaluation itself began, not the dispatch
        fields["started"] = outcome.started
    return fields


def outcome_weights(result: EvalResult) -> bytes | None:
    """The weights to store for a successful result that has them (None otherwise)."""
    if result.ok and result.state_dict:
        return encode_weights(result.state_dict, result.step_sizes)
    return None


def write_outcome(
    storage: BaseStorage,
    strategy: Any,
    trial: TrialRecord,
    job: Job,
    outcome: Outcome,
    *,
    lost: list[str],
    last_rung: bool,
    default_iterations: int | None,
    failures: dict[str, int],
) -> TrialRecord:
    """Write a trial's outcome (one not retried): PRUNED, FAILED (counted in ``failures``),
    DONE at its ``last_rung``, or QUEUED again for its next rung with its score and
    training state. The strategy is told the value of a trial that finished."""
    result = outcome.result
    fields = outcome_fields(trial, job, outcome, default_iterations, lost)
    weights = outcome_weights(result)
    if result.status == "pruned" and not outcome.lost:
        fields["fidelity"] = result.fidelity
        score = result.score if math.isfinite(result.score) else None
        strategy.tell(trial.candidate_id, told_value(strategy, score, result.objectives))
        record = storage.finish_trial(
            trial.number, TrialState.PRUNED, score=score,
            strategy_state=strategy.state_dict(), **fields,
        )  # fmt: skip
        step = fields["metrics"].get("pruned_step")
        logger.info("trial %d pruned at step %s", trial.number, step)
    elif not result.ok:
        log_failure(failures, trial.number, result.error, fields["metrics"])
        strategy.tell(trial.candidate_id, None)
        record = storage.finish_trial(
            trial.number, TrialState.FAILED, error=result.error or "failed",
            strategy_state=strategy.state_dict(), **fields,
        )  # fmt: skip
    elif last_rung:
        strategy.tell(trial.candidate_id, told_value(strategy, result.score, result.objectives))
        record = storage.finish_trial(
            trial.number, TrialState.DONE, score=result.score, weights=weights,
            strategy_state=strategy.state_dict(), **fields,
        )  # fmt: skip
        logger.info("trial %d done: score %.4g", trial.number, result.score)
    else:
        record = storage.update_trial(
            trial.number, state=TrialState.QUEUED, score=result.score, weights=weights,
            training_state=state_bytes(result), **fields,
        )  # fmt: skip
    return record
