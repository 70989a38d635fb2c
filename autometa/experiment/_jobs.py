"""A job and its outcome: what an executor runs and hands back, plain data for any transport."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from autometa.evaluation import EvalResult
from autometa.experiment._pruning import PruneContext

__all__ = ["FINAL", "TRIAL", "Job", "JobKey", "Outcome", "batch_job"]


#: The kind of a search trial's job (its id is the trial number).
TRIAL = "trial"
#: The kind of a final-stage evaluation's job (its id is the final run's id).
FINAL = "final"


class JobKey(NamedTuple):
    """What a job evaluates: ``("trial", number)`` or ``("final", run id)``.

    Executors hand it back unchanged (on each :class:`Outcome`, and from ``cancel()``), so the
    search loop knows which record an answer belongs to.
    """

    kind: str
    id: int

    def __str__(self) -> str:
        return f"trial {self.id}" if self.kind == TRIAL else f"{self.kind} run {self.id}"


def _as_key(key: JobKey | int) -> JobKey:
    """``key``, or a trial's key for a bare trial number."""
    if isinstance(key, JobKey):
        return key
    if isinstance(key, int) and not isinstance(key, bool):
        return JobKey(TRIAL, key)
    raise TypeError(f"a job key must be a JobKey or a trial number, got {key!r}")


@dataclass(frozen=True)
class Job:
    """One evaluation to run: plain data, cheap to send to another process or machine.

    Attributes:
        key: what it evaluates (:class:`JobKey`; a bare int is a trial number).
        graph_json: the candidate as node-link JSON.
        seed: the evaluation seed.
        meta_iterations: the fidelity to evaluate at; None lets the evaluator use its default.
        seeds: every seed to score the candidate on (``seed`` first); empty means ``(seed,)``.
            The score is their mean (:func:`combine_seeds`).
        members: for a *batch* (:func:`batch_job`), the jobs it runs together; the batch's
            own fields repeat its first member's.
        pruning: the pruner and the finished trials' values the worker decides with, or
            None without pruning (``autometa.experiment._pruning``).
        resume: where the trial's meta-training stopped at its last rung (named CPU
            tensors, ``autometa.meta.training_state``; with several seeds, one state a seed
            in one record, ``autometa.experiment._seed_states``): an evaluator that takes
            ``resume_from`` continues from it.
        keep_state: ask the evaluator (one that takes ``keep_training_state``) for the state
            it reaches, so that the next rung can continue it.
    """

    key: JobKey
    graph_json: dict[str, Any]
    seed: int
    meta_iterations: int | None = None
    seeds: tuple[int, ...] = ()
    members: tuple[Job, ...] = ()
    pruning: PruneContext | None = None
    resume: dict[str, Any] | None = None
    keep_state: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", _as_key(self.key))

    @property
    def keys(self) -> tuple[JobKey, ...]:
        """The keys this job answers for: its members', or its own."""
        return tuple(m.key for m in self.members) or (self.key,)


def batch_job(jobs: list[Job]) -> Job:
    """One job that runs ``jobs`` together (a single job stays as it is).

    An evaluator with ``evaluate_population`` scores all their (candidate, seed) pairs in one
    call, batching those of one architecture; each member still gets its own
    :class:`Outcome`.
    """
    if len(jobs) == 1:
        return jobs[0]
    first = jobs[0]
    return Job(first.key, first.graph_json, first.seed, first.meta_iterations,
               first.seeds, members=tuple(jobs))  # fmt: skip


@dataclass
class Outcome:
    """What came back for a :class:`Job`.

    Attributes:
        key: the :class:`Job`'s key it answers for (a bare int is a trial number).
        result: the evaluation result (failed ones carry the reason in ``error``).
        wall_time: seconds the evaluation took (as measured where it ran).
        device: where it ran.
        lost: True when the worker died before answering; the search may retry the trial.
        started: wall-clock time (seconds since the epoch) when the evaluation started.
        fatal: True when the evaluator raised :class:`ConfigurationError`: the settings
            cannot work for any candidate, so the search stops (the trial is not failed).
    """

    key: JobKey
    result: EvalResult
    wall_time: float = 0.0
    device: str | None = None
    lost: bool = False
    started: float | None = None
    fatal: bool = False

    def __post_init__(self) -> None:
        self.key = _as_key(self.key)

    @property
    def number(self) -> int:
        """The trial number or final run id (``key.id``)."""
        return self.key.id
