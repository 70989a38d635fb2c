"""The final stage's runs as jobs of the search loop: queued, sent, recorded as they end.

The final stage (:mod:`autometa.experiment._final`) plans its runs; the search loop sends them
to the executor among its jobs, with the key ``("final", run id)``, and hands each outcome
back here. This keeps the stage's bookkeeping in one place: which runs wait, which are in
flight, how often each was lost with its worker in this session, and what is written when a
run ends.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

from autometa.errors import StudyTakenOverError
from autometa.experiment._worker import FINAL, Job, JobKey, Outcome
from autometa.experiment.storage.base import BaseStorage
from autometa.experiment.trial import FinalRun, TrialState

__all__ = ["FinalRuns"]

logger = logging.getLogger("autometa.experiment")

#: Metrics a final run does not keep (the search trial of the same candidate has them).
_HEAVY = ("config", "versions", "learning_curve_pre")


class FinalRuns:
    """The final-stage runs of one session: a queue, the runs in flight, their retries.

    A run lost with its worker (a signal, a lost Ray node; not out of memory) is queued again
    up to ``max_retries`` times in this session, as a search trial is; after that it is
    recorded FAILED with the reason, and the next resume runs it again.

    Args:
        storage: the study's storage.
        max_retries: evaluations lost to a dead worker that a run may retry in this session.
    """

    def __init__(self, storage: BaseStorage, max_retries: int) -> None:
        self.storage = storage
        self.max_retries = max_retries
        self._queue: deque[FinalRun] = deque()
        self._inflight: dict[int, FinalRun] = {}
        self._tries: dict[int, int] = {}  # this session's lost evaluations per run

    def add(self, runs: list[FinalRun]) -> None:
        """Queue the QUEUED ones of ``runs``, in their order."""
        self._queue.extend(r for r in runs if r.state == TrialState.QUEUED)

    @property
    def queued(self) -> int:
        """Runs waiting to be sent."""
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        """Runs sent whose outcome has not come back."""
        return len(self._inflight)

    def take(self, n: int) -> list[Job]:
        """Up to ``n`` queued runs as jobs (the seeds of an entry come together), each
        recorded RUNNING."""
        jobs = []
        while self._queue and len(jobs) < n:
            run = self._queue.popleft()
            self.storage.update_final_run(run.id, state=TrialState.RUNNING)
            self._inflight[run.id] = run
            jobs.append(Job(JobKey(FINAL, run.id), run.graph_json, run.seed))
        return jobs

    def record(self, outcome: Outcome) -> None:
        """Write what came back for a run, or queue it again when its worker was lost."""
        run = self._inflight.pop(outcome.key.id)
        result = outcome.result
        lost = list(run.metrics.get("lost", []))
        if outcome.lost:
            lost.append(result.error)
            tries = self._tries[run.id] = self._tries.get(run.id, 0) + 1
            if tries <= self.max_retries:
                logger.warning("final run %d (%s, seed %d): %s; retrying", run.id, run.entry,
                               run.seed, result.error)  # fmt: skip
                self._queue.append(self.storage.update_final_run(
                    run.id, state=TrialState.QUEUED, attempts=run.attempts + 1,
                    metrics={**run.metrics, "lost": lost},
                ))  # fmt: skip
                return
            result.error = f"{result.error}; gave up after {tries} attempts"
        metrics = {k: v for k, v in result.metrics.items() if k not in _HEAVY}
        if lost:
            metrics["lost"] = lost
        if result.ok:
            fields: dict[str, Any] = dict(state=TrialState.DONE, score=result.score)
        else:
            fields = dict(state=TrialState.FAILED, error=result.error or "failed")
            logger.info("final run %d (%s, seed %d) failed: %s", run.id, run.entry, run.seed,
                        result.error)  # fmt: skip
        self.storage.update_final_run(
            run.id, metrics=metrics, device=outcome.device, wall_time=outcome.wall_time,
            finished=time.time(), **fields,
        )  # fmt: skip

    def requeue(self, run_id: int) -> None:
        """Record a run that was stopped (Ctrl-C, SIGTERM) QUEUED again, for the next session.

        Raises:
            StudyTakenOverError: another process took the study over (it re-queued the run).
        """
        self._inflight.pop(run_id, None)
        try:
            self.storage.update_final_run(run_id, state=TrialState.QUEUED)
        except StudyTakenOverError:
            raise  # the taker re-queued it already: stop here
        except Exception:  # noqa: BLE001 - the next session re-queues it anyway
            logger.exception("could not re-queue final run %d", run_id)

    def clear(self) -> None:
        """Forget every run (the study was taken over: nothing more is written)."""
        self._queue.clear()
        self._inflight.clear()
