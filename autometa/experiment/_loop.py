"""The search loop: ask the strategy, run trials on the executor, record, tell, repeat.

One dispatch loop runs every job of a session: the search's trials, then the final stage's
runs, which :func:`~autometa.experiment._final.run_final_stage` plans phase by phase and
:class:`~autometa.experiment._final_runs.FinalRuns` keeps the books of. Each job carries a
:class:`~autometa.experiment._worker.JobKey` (``("trial", number)`` or ``("final", run id)``)
that its outcome and the executor's ``cancel()`` hand back.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from autometa.errors import ConfigurationError, StudyTakenOverError
from autometa.evaluation import Evaluator, abilities, default_iterations, failed_result
from autometa.experiment._callbacks import CallbackList
from autometa.experiment._candidates import candidate_records, told_value
from autometa.experiment._failures import log_session_failures
from autometa.experiment._final import Final, run_final_stage
from autometa.experiment._final_runs import FinalRuns
from autometa.experiment._lease import Lease
from autometa.experiment._memory import check_memory
from autometa.experiment._mirror import StudyMirror
from autometa.experiment._pruning import job_contexts
from autometa.experiment._trial_jobs import trial_job, write_outcome
from autometa.experiment._worker import FINAL, TRIAL, Job, JobKey, Outcome, batch_job
from autometa.experiment.budget import Budget, Usage
from autometa.experiment.fidelity import Scheduler
from autometa.experiment.storage.base import BaseStorage
from autometa.experiment.trial import FinalRun, TrialRecord, TrialState

__all__ = ["SearchLoop", "default_iterations"]

logger = logging.getLogger("autometa.experiment")


class SearchLoop(StudyMirror):
    """Drives one session of a study until its budget is spent or nothing is left to run.

    Every change is written to storage as it happens (creation with the strategy state after
    the ``ask``, start, finish with the strategy state after the ``tell``), so a process
    killed at any point loses at most the evaluations in flight; they are re-queued and run
    first by the next session. The loop keeps an in-memory mirror of the records it wrote.
    It runs under a :class:`Lease` (the study claimed by this process); if another process
    takes the study over, the loop stops evaluating and writes nothing more.

    Failures are loud: the first failure of each kind (exception type, out of memory, time-out,
    ...) is logged in full, with its traceback, as it happens, and the end of the session
    logs the count of each kind. An evaluation that raises :class:`ConfigurationError` stops
    the session: its trial is queued again and the error is raised.

    Args:
        storage: the study's storage (the study must exist).
        strategy: an ask/tell strategy, already restored from the stored state.
        executor: where evaluations run.
        evaluator: the evaluator handed to the executor.
        scheduler: full evaluation or multi-fidelity rungs.
        budget: the limits.
        progress: an object with ``update(loop)`` and ``close()``, or None.
        max_retries: evaluations lost to a dead worker that a trial may retry (a final-stage
            run: in this session).
        seeds: seeds each candidate is scored on (the score is their mean).
        final: the final stage to run when the search ends (None: none).
        search_seed: the study's seed (the final stage draws its fresh seeds from it).
        executor_started: the caller has already called ``executor.start(evaluator)``.
        lease: this process's claim on the study; default: claimed in :meth:`run` and
            released when it returns.
        callbacks: told of each trial this session finishes (``on_trial_end``).
        max_memory: bytes one evaluation may need (by ``evaluator.estimate_memory``); a
            candidate over it fails before it is dispatched. None: not checked.
        batch: trials sent to the executor as one job; an evaluator with
            ``evaluate_population`` scores those of one architecture in one program.
        pruner: stops trials whose reported values fall behind the finished trials' (each
            job carries what its worker decides with, ``docs/pruning.md``); None: none.
    """

    def __init__(
        self,
        *,
        storage: BaseStorage,
        strategy: Any,
        executor: Any,
        evaluator: Evaluator,
        scheduler: Scheduler,
        budget: Budget,
        progress: Any = None,
        max_retries: int = 1,
        seeds: int = 1,
        final: Final | None = None,
        search_seed: int = 0,
        executor_started: bool = False,
        lease: Lease | None = None,
        callbacks: CallbackList | None = None,
        max_memory: int | None = None,
        batch: int = 1,
        pruner: Any = None,
    ) -> None:
        super().__init__(storage, budget, final, callbacks or CallbackList())
        self.strategy, self.executor, self.pruner = strategy, executor, pruner
        self.evaluator, self.scheduler = evaluator, scheduler
        self.progress = progress
        self.max_retries = max_retries
        self.seeds, self.search_seed = max(1, int(seeds)), int(search_seed)
        self._searching = True  # False once the final stage runs
        self._finals = FinalRuns(storage, max_retries)
        self._inflight: dict[JobKey, Job] = {}
        self.lease = lease
        self.max_memory = max_memory
        self.batch = max(1, int(batch))
        self.abilities = abilities(evaluator)
        """What the evaluator offers beyond a call (:func:`~autometa.evaluation.abilities`)."""
        self._default_iterations = self.abilities.default_iterations
        self._executor_started = executor_started
        self.failures: dict[str, int] = {}
        """Failed trials of this session per failure kind."""

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> str:
        """Run until done; returns why it stopped. Ctrl-C re-queues running trials, re-raises.

        Raises:
            StudyInUseError: another process holds the study (on the claim).
            StudyTakenOverError: another process took the study over while this loop ran
                (the loop then stopped without writing; storage refuses the writes of a
                session that was taken over).
        """
        own_lease = self.lease is None
        lease = self.lease = self.lease or Lease(self.storage)
        self.trials.update((t.number, t) for t in self.storage.get_all_trials())
        self._base_elapsed = self.storage.elapsed_seconds()
        self._t0 = time.monotonic()
        try:
            if not self._executor_started:
                self.executor.start(self.evaluator)
            reason = self._loop()
            if self.final is not None and self.final.enabled:
                self._final_started, self._searching = True, False
                run_final_stage(
                    self.final, self.search_seed, storage=self.storage,
                    trials=list(self.trials.values()), evaluator=self.evaluator,
                    evaluate=self.run_final,
                )  # fmt: skip
        except BaseException as exc:
            if isinstance(exc, StudyTakenOverError) or lease.lost.is_set():
                self.executor.cancel()  # its writes are refused: leave everything to the taker
            else:
                self._requeue_in_flight()
            raise
        finally:
            self.executor.shutdown()
            if own_lease:
                lease.release()
            if self.progress is not None:
                self.progress.close(self)
        logger.info("search stopped: %s", reason)
        log_session_failures(self.failures)
        return reason

    def run_final(self, runs: list[FinalRun]) -> None:
        """Evaluate the QUEUED ones of ``runs`` (final-stage runs, the seeds of an entry
        batched together) as jobs of this loop; returns once every one has ended."""
        self._finals.add(runs)
        self._loop()

    def _loop(self) -> str:
        """Send jobs and record their outcomes until the phase ends (the search, or one phase
        of the final stage); returns why it ended."""
        while True:
            self._check_lease()
            reason = self._search_step() if self._searching else self._final_step()
            if reason is not None:
                return reason
            if self.executor.in_flight == 0:
                continue
            timeout = 0.25
            if self._searching and self.budget.seconds is not None:
                timeout = min(timeout, max(0.0, self.budget.seconds - self.usage().seconds))
            for outcome in self.executor.wait(timeout):
                self._check_lease()
                self._handle(outcome)
            if self.progress is not None:
                self.progress.update(self)

    def _search_step(self) -> str | None:
        """Apply rung decisions and fill free slots; why the search ends, or None."""
        self._decide()
        usage = self.usage()
        if self.budget.seconds is not None and usage.seconds >= self.budget.seconds:
            self._requeue_in_flight()
            return self.budget.exhausted(usage) or "time budget reached"
        if not self._meta_spent(usage):
            self._dispatch()
        if self.executor.in_flight > 0:
            return None
        usage = self.usage()
        if self._meta_spent(usage):
            return self.budget.exhausted(usage) or "meta-iterations budget reached"
        if not self._runnable() and (self._exhausted or not self._can_create(usage)):
            return self._end_reason(usage)
        return None

    def _final_step(self) -> str | None:
        """Send queued final-stage runs; a reason once none is queued or in flight."""
        self._dispatch()
        return "final runs ended" if self.executor.in_flight == 0 else None

    def _end_reason(self, usage: Usage) -> str:
        if self._exhausted:
            return "the strategy has no new candidates"
        return self.budget.exhausted(usage) or "nothing left to run"

    def _check_lease(self) -> None:
        """Stop at once, writing nothing, when another process took the study over."""
        if self.lease is None or not self.lease.lost.is_set():
            return
        self.executor.cancel()
        self._inflight.clear()
        self._finals.clear()
        raise self.lease.taken_over()

    def _runnable(self) -> list[TrialRecord]:
        return [
            t
            for t in self.scheduler.runnable(self.trials.values())
            if JobKey(TRIAL, t.number) not in self._inflight
        ]

    def _dispatch(self) -> None:
        """Fill free executor slots: final-stage runs, queued trials, then new candidates.

        With ``batch`` > 1 each slot takes up to ``batch`` trials of one length (or final runs)
        as one job (the strategy is asked for a batch at a time); a partial batch goes out when
        no more can come, and promotions to a rung go out together, without waiting for new
        candidates.
        """
        while self.executor.in_flight < self.executor.capacity:
            if self._finals.queued:
                jobs = self._finals.take(self.batch)
                self._inflight.update((job.key, job) for job in jobs)
                self.executor.submit(batch_job(jobs))
                continue
            if not self._searching:
                return
            runnable = self._runnable()
            group = self._one_length(runnable)
            if len(group) >= self.batch or (group and group[0].rung):  # no new one can join
                self._submit(group[: self.batch])  # a promotion waits for no new candidate
                continue
            usage = self.usage()
            n = (self.executor.capacity - self.executor.in_flight) * self.batch - len(runnable)
            slots, placement = (None, {})
            if self._can_create(usage):
                slots, placement = self.scheduler.next_slots(list(self.trials.values()))
            else:
                n = 0
            if slots is not None:
                n = min(n, slots)
            if self.budget.trials is not None:
                n = min(n, self.budget.trials - usage.trials)
            if n > 0 and self._ask(n, placement):
                continue
            if not group:
                return
            self._submit(group[: self.batch])

    def _one_length(self, runnable: list[TrialRecord]) -> list[TrialRecord]:
        """The runnable trials that run as long as the first (one population runs one number
        of meta-iterations): promotions to a rung batch together, apart from new candidates."""
        if not runnable:
            return []
        length = self.scheduler.job_fidelity(runnable[0])
        return [t for t in runnable if self.scheduler.job_fidelity(t) == length]

    def _ask(self, n: int, placement: dict[str, Any]) -> bool:
        """Ask for ``n`` candidates and create their trials; False when none came."""
        candidates = self.strategy.ask(n)
        if not candidates:
            self._exhausted = True
            logger.info("the strategy returned no new candidate; finishing what is queued")
            return False
        records = candidate_records(
            self.strategy, candidates, self.trials.values(), placement,
            reuse=self.scheduler.fidelity is None,  # rung scores are not comparable
        )  # fmt: skip
        state = self.strategy.state_dict()
        for record in self.storage.create_trials(records, strategy_state=state):
            self._put(record)
            if record.duplicate_of is not None:
                logger.info("trial %d repeats trial %d", record.number, record.duplicate_of)
        return True

    def _value(self, score: float | None, objectives: dict[str, float]) -> Any:
        """What to tell the strategy (:func:`~autometa.experiment._candidates.told_value`)."""
        return told_value(self.strategy, score, objectives)

    def _submit(self, trials: list[TrialRecord]) -> None:
        """Start ``trials`` as one job (a batch when there are several)."""
        jobs = []
        pruning: list[Any] = [None] * len(trials)
        if self.pruner is not None:  # the finished trials now: the workers decide with these
            n = int(getattr(self.strategy, "n_objectives", 1) or 1)
            graphs = [t.graph_json for t in trials]
            pruning = job_contexts(self.pruner, self.trials.values(), graphs, self.evaluator, n)
        for trial, context in zip(trials, pruning):
            job = trial_job(
                trial, context, seeds=self.seeds, scheduler=self.scheduler, storage=self.storage
            )
            self._put(self.storage.update_trial(trial.number, state=TrialState.RUNNING,
                                                started=time.time()))  # fmt: skip
            self._inflight[job.key] = job
            # Checked here, before dispatch, rather than in the worker: a candidate too big
            # for the machine never takes a worker's slot, and every executor (inline,
            # processes, Ray) gets the same check against one limit.
            too_big = check_memory(self.evaluator, job, self.max_memory, self.abilities)
            if too_big is not None:
                reason, needed = too_big
                result = failed_result(
                    reason, memory_estimate=needed, memory_limit=self.max_memory
                )
                result.fidelity = 0  # nothing was spent
                self._handle(Outcome(job.key, result, 0.0))
                continue
            jobs.append(job)
        if jobs:
            self.executor.submit(batch_job(jobs))

    def _handle(self, outcome: Outcome) -> None:
        """Record one outcome: a final-stage run's, or a trial's."""
        job = self._inflight.pop(outcome.key)
        if outcome.key.kind == FINAL:
            self._finals.record(outcome)
        else:
            self._handle_trial(job, self.trials[outcome.key.id], outcome)

    def _handle_trial(self, job: Job, trial: TrialRecord, outcome: Outcome) -> None:
        """Record a trial's outcome, tell the strategy when the trial is finished."""
        result = outcome.result
        if outcome.fatal:  # the settings cannot work: stop, and keep the trial for later
            self._put(self.storage.update_trial(trial.number, state=TrialState.QUEUED,
                                                started=None))  # fmt: skip
            raise ConfigurationError(
                f"{result.error} (raised by the evaluation of trial {trial.number}; the search "
                "stopped and the trial is queued again)"
            )
        lost = list(trial.metrics.get("lost", []))
        if outcome.lost:
            lost.append(result.error)
            if trial.attempts < self.max_retries:
                logger.warning("trial %d: %s; retrying", trial.number, result.error)
                self._put(self.storage.update_trial(
                    trial.number, state=TrialState.QUEUED, started=None,
                    attempts=trial.attempts + 1, metrics={**trial.metrics, "lost": lost},
                ))  # fmt: skip
                return
            result.error = f"{result.error}; gave up after {trial.attempts + 1} attempts"
        record = write_outcome(
            self.storage, self.strategy, trial, job, outcome, lost=lost,
            last_rung=self.scheduler.is_final(trial), failures=self.failures,
            default_iterations=self._default_iterations,
        )  # fmt: skip
        self._put(record)
        if self.progress is not None:
            self.progress.update(self)

    def _decide(self) -> None:
        """Apply multi-fidelity rung decisions that are due: promote or prune."""
        accepting = self._can_create(self.usage())
        free = (self.executor.capacity - self.executor.in_flight) * self.batch
        promoted, pruned = self.scheduler.decide(
            list(self.trials.values()),
            accepting=accepting,
            free=max(0, free - len(self._runnable())),
        )
        for trial in pruned:
            self.strategy.tell(trial.candidate_id, self._value(trial.score, trial.objectives))
            self._put(self.storage.finish_trial(
                trial.number, TrialState.PRUNED, strategy_state=self.strategy.state_dict()
            ))  # fmt: skip
        for trial in promoted:
            self._put(self.storage.update_trial(trial.number, rung=(trial.rung or 0) + 1))

    def _requeue_in_flight(self) -> None:
        """Stop running evaluations and put their trials and final runs back in the queue."""
        for key in self.executor.cancel():
            self._inflight.pop(key, None)
            if key.kind == FINAL:
                self._finals.requeue(key.id)
                continue
            try:
                record = self.storage.update_trial(key.id, state=TrialState.QUEUED, started=None)
                self._put(record)
            except StudyTakenOverError:
                raise  # the taker re-queued it already: stop here
            except Exception:  # noqa: BLE001 - the next session re-queues it anyway
                logger.exception("could not re-queue trial %d", key.id)
