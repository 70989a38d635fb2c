"""The search loop: ask the strategy, run trials on the executor, record, tell, repeat."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from autometa.errors import ConfigurationError, StudyTakenOverError
from autometa.evaluation import Evaluator, abilities, default_iterations, failed_result
from autometa.experiment._callbacks import CallbackList
from autometa.experiment._failures import describe_failure, failure_kind
from autometa.experiment._final import Final, run_final_stage
from autometa.experiment._lease import Lease
from autometa.experiment._memory import check_memory
from autometa.experiment._pruning import cost_names, job_contexts
from autometa.experiment._rungs import new_iterations, state_bytes, stored_state
from autometa.experiment._worker import Job, Outcome, batch_job
from autometa.experiment.budget import Budget, Usage
from autometa.experiment.fidelity import Scheduler
from autometa.experiment.storage.base import BaseStorage, encode_weights
from autometa.experiment.trial import TrialRecord, TrialState, seed_list
from autometa.graph import to_json

__all__ = ["SearchLoop", "default_iterations"]

logger = logging.getLogger("autometa.experiment")


def _told_cost(name: str, value: float) -> float:
    """A cost as a multi-objective strategy maximises it (see ``SearchLoop._value``)."""
    return -math.log10(max(value, 1.0)) if name in ("params", "macs") else -value


class SearchLoop:
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
        max_retries: evaluations lost to a dead worker that a trial may retry.
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
        self.storage, self.strategy, self.executor = storage, strategy, executor
        self.pruner = pruner
        self.evaluator, self.scheduler, self.budget = evaluator, scheduler, budget
        self.progress = progress
        self.max_retries = max_retries
        self.seeds, self.final, self.search_seed = max(1, int(seeds)), final, int(search_seed)
        self.final_inflight: set[int] = set()
        self._final_started = False
        self.trials: dict[int, TrialRecord] = {}
        self._inflight: dict[int, Job] = {}
        self._exhausted = False
        self._base_elapsed = 0.0
        self._t0 = time.monotonic()
        self.lease = lease
        self.callbacks = callbacks or CallbackList()
        self.max_memory = max_memory
        self.batch = max(1, int(batch))
        self.abilities = abilities(evaluator)
        """What the evaluator offers beyond a call (:func:`~autometa.evaluation.abilities`)."""
        self._default_iterations = self.abilities.default_iterations
        self._executor_started = executor_started
        self.failures: dict[str, int] = {}
        """Failed trials of this session per failure kind."""

    # -- accounting ----------------------------------------------------------------------

    def usage(self) -> Usage:
        """What the study has spent, this session included."""
        spent = sum(int(t.metrics.get("meta_iterations_spent") or 0) for t in self.trials.values())
        return Usage(
            trials=len(self.trials),
            seconds=self._base_elapsed + time.monotonic() - self._t0,
            meta_iterations=spent,
        )

    def counts(self) -> dict[TrialState, int]:
        """Trials per state, from the in-memory mirror."""
        counts = dict.fromkeys(TrialState, 0)
        for trial in self.trials.values():
            counts[trial.state] += 1
        return counts

    def best(self) -> TrialRecord | None:
        """The best DONE trial so far."""
        done = [t for t in self.trials.values() if t.state == TrialState.DONE and t.has_score]
        return max(done, key=lambda t: (t.score, -t.number), default=None)

    def _meta_spent(self, usage: Usage) -> bool:
        limit = self.budget.meta_iterations
        return limit is not None and usage.meta_iterations >= limit

    def _can_create(self, usage: Usage) -> bool:
        limit = self.budget.trials
        return (
            not self._exhausted
            and (limit is None or usage.trials < limit)
            and not self._meta_spent(usage)
        )

    def _put(self, record: TrialRecord) -> TrialRecord:
        before = self.trials.get(record.number)
        self.trials[record.number] = record
        if record.state.is_finished() and (before is None or not before.state.is_finished()):
            self.callbacks.trial_end(self, record)
        return record

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
                self._final_started = True
                run_final_stage(self, self.final, self.search_seed)
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
        if self.failures:
            logger.warning(
                "%d trial(s) failed in this session: %s",
                sum(self.failures.values()),
                ", ".join(f"{n} {kind}" for kind, n in sorted(
                    self.failures.items(), key=lambda item: -item[1]
                )),
            )  # fmt: skip
        return reason

    def _loop(self) -> str:
        while True:
            self._check_lease()
            self._decide()
            usage = self.usage()
            if self.budget.seconds is not None and usage.seconds >= self.budget.seconds:
                self._requeue_in_flight()
                return self.budget.exhausted(usage) or "time budget reached"
            if not self._meta_spent(usage):
                self._dispatch()
            if self.executor.in_flight == 0:
                usage = self.usage()
                if self._meta_spent(usage):
                    return self.budget.exhausted(usage) or "meta-iterations budget reached"
                if not self._runnable() and not self._can_create(usage):
                    return self._end_reason(usage)
                if not self._runnable() and self._exhausted:
                    return self._end_reason(usage)
                continue
            timeout = 0.25
            if self.budget.seconds is not None:
                timeout = min(timeout, max(0.0, self.budget.seconds - usage.seconds))
            for outcome in self.executor.wait(timeout):
                self._check_lease()
                self._handle(outcome)
            if self.progress is not None:
                self.progress.update(self)

    def _end_reason(self, usage: Usage) -> str:
        if self._exhausted:
            return "the strategy has no new candidates"
        return self.budget.exhausted(usage) or "nothing left to run"

    def final_progress(self) -> tuple[int, int] | None:
        """``(finished, planned)`` final-stage evaluations, or None before the stage starts."""
        if self.final is None or not self.final.enabled:
            return None
        runs = self.storage.get_final_runs() if self._final_started else []
        if not runs:
            return None
        return sum(r.state.is_finished() for r in runs), len(runs)

    def heartbeat(self) -> None:
        """Between final-stage evaluations: stop if the study was taken over, redraw progress."""
        self._check_lease()
        if self.progress is not None:
            self.progress.update(self)

    def _check_lease(self) -> None:
        """Stop at once, writing nothing, when another process took the study over."""
        if self.lease is None or not self.lease.lost.is_set():
            return
        self.executor.cancel()
        self._inflight.clear()
        self.final_inflight.clear()
        raise self.lease.taken_over()

    def _runnable(self) -> list[TrialRecord]:
        return [
            t
            for t in self.scheduler.runnable(self.trials.values())
            if t.number not in self._inflight
        ]

    def _dispatch(self) -> None:
        """Fill free executor slots: queued trials first, then new candidates.

        With ``batch`` > 1 each slot takes up to ``batch`` trials of one length as one job (the
        strategy is asked for a batch at a time); a partial batch goes out when no more can
        come, and promotions to a rung go out together, without waiting for new candidates.
        """
        while self.executor.in_flight < self.executor.capacity:
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
        records = []
        now = time.time()
        for cand in candidates:
            base = TrialRecord(
                number=-1,
                state=TrialState.QUEUED,
                key=cand.key,
                graph_json=to_json(cand.graph),
                values=dict(cand.values),
                candidate_id=cand.id,
                **placement,
            )
            done = self._find_done(cand.key)
            if done is not None:  # answered from storage, no evaluation
                self.strategy.tell(cand.id, self._value(done.score, done.objectives))
                base = base.replace(
                    state=TrialState.DONE,
                    score=done.score,
                    objectives=dict(done.objectives),
                    metrics={"duplicate_of": done.number},
                    fidelity=done.fidelity,
                    duplicate_of=done.number,
                    started=now,
                    finished=now,
                    wall_time=0.0,
                )
            records.append(base)
        state = self.strategy.state_dict()
        for record in self.storage.create_trials(records, strategy_state=state):
            self._put(record)
            if record.duplicate_of is not None:
                logger.info("trial %d repeats trial %d", record.number, record.duplicate_of)
        return True

    def _find_done(self, key: str) -> TrialRecord | None:
        """The first DONE, evaluated (not copied) trial of ``key`` among this search's trials."""
        if self.scheduler.fidelity is not None:
            return None  # rung scores are not comparable across fidelities
        for trial in self.trials.values():
            if trial.key == key and trial.state == TrialState.DONE and trial.duplicate_of is None:
                return trial
        return None

    def _value(self, score: float | None, objectives: dict[str, float]) -> Any:
        """What to tell the strategy: the score, or a tuple for a multi-objective strategy.

        The strategy maximises every value, and the evaluation's objectives are costs (lower
        is better), so each is told negated: the counts ``params`` and ``macs``, which span
        orders of magnitude, as ``-log10(max(count, 1))``, any other as ``-value``. Two
        objectives are ``(score, -log10(params))``; more are the score and the first
        ``n_objectives - 1`` objectives (:func:`cost_names`, the costs a dominance pruner
        compares). Missing objectives make the value None (failed).
        """
        if score is None:
            return None
        n = int(getattr(self.strategy, "n_objectives", 1) or 1)
        if n == 1:
            return float(score)
        names = cost_names(objectives, n)
        if len(names) != n - 1:
            return None
        return (float(score), *(_told_cost(k, float(objectives[k])) for k in names))

    def _submit(self, trials: list[TrialRecord]) -> None:
        """Start ``trials`` as one job (a batch when there are several)."""
        jobs = []
        pruning: list[Any] = [None] * len(trials)
        if self.pruner is not None:  # the finished trials now: the workers decide with these
            n = int(getattr(self.strategy, "n_objectives", 1) or 1)
            graphs = [t.graph_json for t in trials]
            pruning = job_contexts(self.pruner, self.trials.values(), graphs, self.evaluator, n)
        for trial, context in zip(trials, pruning):
            fidelity = self.scheduler.job_fidelity(trial)
            states = self.seeds == 1 and fidelity is not None  # rungs that continue
            job = Job(
                trial.number, trial.graph_json, trial.seed, fidelity,
                tuple(seed_list(trial.seed, self.seeds)) if self.seeds > 1 else (),
                pruning=context,
                resume=stored_state(self.storage, trial) if states and trial.rung else None,
                keep_state=states and not self.scheduler.is_final(trial),
            )  # fmt: skip
            self._put(self.storage.update_trial(trial.number, state=TrialState.RUNNING,
                                                started=time.time()))  # fmt: skip
            self._inflight[trial.number] = job
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
                self._handle(Outcome(trial.number, result, 0.0))
                continue
            jobs.append(job)
        if jobs:
            self.executor.submit(batch_job(jobs))

    def _handle(self, outcome: Outcome) -> None:
        """Record one outcome, tell the strategy when the trial is finished."""
        job = self._inflight.pop(outcome.number)
        trial = self.trials[outcome.number]
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
        reached = result.fidelity if result.fidelity is not None else job.meta_iterations
        if reached is None:
            reached = self._default_iterations
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
        weights = (
            encode_weights(result.state_dict, result.step_sizes)
            if result.ok and result.state_dict
            else None
        )
        if result.status == "pruned" and not outcome.lost:
            fields["fidelity"] = result.fidelity
            score = result.score if math.isfinite(result.score) else None
            self.strategy.tell(trial.candidate_id, self._value(score, result.objectives))
            record = self.storage.finish_trial(
                trial.number, TrialState.PRUNED, score=score,
                strategy_state=self.strategy.state_dict(), **fields,
            )  # fmt: skip
            logger.info("trial %d pruned at step %s", trial.number, metrics.get("pruned_step"))
        elif not result.ok:
            self._report_failure(trial.number, result.error, metrics)
            self.strategy.tell(trial.candidate_id, None)
            record = self.storage.finish_trial(
                trial.number, TrialState.FAILED, error=result.error or "failed",
                strategy_state=self.strategy.state_dict(), **fields,
            )  # fmt: skip
        elif self.scheduler.is_final(trial):
            self.strategy.tell(trial.candidate_id, self._value(result.score, result.objectives))
            record = self.storage.finish_trial(
                trial.number, TrialState.DONE, score=result.score, weights=weights,
                strategy_state=self.strategy.state_dict(), **fields,
            )  # fmt: skip
            logger.info("trial %d done: score %.4g", trial.number, result.score)
        else:
            record = self.storage.update_trial(
                trial.number, state=TrialState.QUEUED, score=result.score, weights=weights,
                training_state=state_bytes(result), **fields,
            )  # fmt: skip
        self._put(record)
        if self.progress is not None:
            self.progress.update(self)

    def _report_failure(self, number: int, error: str | None, metrics: dict[str, Any]) -> None:
        """Log the first failure of each kind in full (with traceback), later ones briefly."""
        kind = failure_kind(error)
        first = kind not in self.failures
        self.failures[kind] = self.failures.get(kind, 0) + 1
        if first:
            logger.warning(
                "%s\n(the first failure of kind %r in this session; later ones are counted "
                "at the end)",
                describe_failure(number, error, metrics),
                kind,
            )
        else:
            logger.info("trial %d failed: %s", number, error)

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
        """Stop running evaluations and put their trials back in the queue."""
        for number in self.executor.cancel():
            self._inflight.pop(number, None)
            if number < 0:  # a final-stage evaluation
                self.final_inflight.discard(number)
                try:
                    self.storage.update_final_run(-number - 1, state=TrialState.QUEUED)
                except StudyTakenOverError:
                    raise  # the taker re-queued it already: stop here
                except Exception:  # noqa: BLE001 - the next session re-queues it anyway
                    logger.exception("could not re-queue final run %d", -number - 1)
                continue
            try:
                record = self.storage.update_trial(number, state=TrialState.QUEUED, started=None)
                self._put(record)
            except StudyTakenOverError:
                raise  # the taker re-queued it already: stop here
            except Exception:  # noqa: BLE001 - the next session re-queues it anyway
                logger.exception("could not re-queue trial %d", number)
