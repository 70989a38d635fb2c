"""The inline executor: evaluations in the calling process, for debugging."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from autometa.evaluation import Evaluator, failed_result
from autometa.experiment._executor import BaseExecutor
from autometa.experiment._memory import default_memory_limit
from autometa.experiment._worker import Job, JobKey, Outcome, run_jobs

__all__ = ["InlineExecutor"]


class InlineExecutor(BaseExecutor):
    """Evaluates in the calling process, one job at a time, inside :meth:`wait`.

    Useful for debugging (breakpoints and tracebacks work). A per-trial time-out cannot stop
    an evaluation here; it is only checked after the evaluation returns.

    Args:
        timeout: seconds after which a finished evaluation is recorded as timed out.
        device: passed to the evaluator.
    """

    capacity = 1

    def __init__(self, timeout: float | None = None, device: str | None = "cpu") -> None:
        self.timeout = timeout
        self.device = device
        self._evaluator: Evaluator = None
        self._queue: deque[Job] = deque()

    @classmethod
    def from_settings(
        cls, *, workers: int, trial_timeout: float | None, **options: Any
    ) -> InlineExecutor:
        """One evaluation at a time in this process, whatever ``workers`` says."""
        return cls(timeout=trial_timeout)

    def start(self, evaluator: Evaluator) -> None:
        self._evaluator = evaluator

    def memory_limit(self) -> int | None:
        return default_memory_limit([self.device or "cpu"])

    def submit(self, job: Job) -> None:
        self._queue.append(job)

    @property
    def in_flight(self) -> int:
        return len(self._queue)

    def wait(self, timeout: float | None = None) -> list[Outcome]:
        if not self._queue:
            return []
        job = self._queue[0]
        start = time.perf_counter()
        outcomes = run_jobs(self._evaluator, job, self.device)
        took = time.perf_counter() - start
        self._queue.popleft()
        if self.timeout is not None and took > self.timeout:
            for outcome in outcomes:
                outcome.result = failed_result(
                    f"timed out: took {took:.3g} s, over the {self.timeout:g} s "
                    "limit (the inline executor checks after the evaluation)"
                )
        return outcomes

    def cancel(self) -> list[JobKey]:
        keys = [k for job in self._queue for k in job.keys]
        self._queue.clear()
        return keys
