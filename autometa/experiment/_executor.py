"""The contract every executor follows: the search loop drives any executor the same way."""

from __future__ import annotations

import abc
from typing import Any

from autometa.evaluation import Evaluator
from autometa.experiment._worker import Job, JobKey, Outcome

__all__ = ["BaseExecutor", "keys_text"]


class BaseExecutor(abc.ABC):
    """Runs :class:`Job` s and hands back :class:`Outcome` s; the search loop drives it.

    Life: :meth:`start` once with the evaluator, then :meth:`submit` while
    ``in_flight < capacity`` and :meth:`wait` for outcomes, then :meth:`shutdown`.
    :meth:`cancel` stops every in-flight job (Ctrl-C, time budget) and returns their keys
    (:class:`~autometa.experiment._worker.JobKey`: a trial or a final-stage run) so the
    search can re-queue them. Executors never write to storage: the loop records what they
    return, so every executor gets the same bookkeeping, resume and retries.

    Every submitted job comes back exactly once, from :meth:`wait` (one :class:`Outcome` per
    key in ``job.keys``, carrying that key) or from :meth:`cancel` (its keys). An evaluation
    that fails comes back as an outcome whose result is failed, never as an exception: the
    evaluator's errors are caught where it runs (:func:`run_jobs`). An outcome with
    ``lost=True`` says the *place* it ran was lost (a worker process killed, a Ray node
    gone) rather than the candidate failing: the search retries such a trial once. A
    failure that running again would only repeat (a time-out, the OS killing a worker for
    memory) is not lost.

    A new executor is a subclass and one registration under a name in
    :data:`~autometa.experiment.executors.EXECUTORS`; ``search(executor="name")``, the
    ``--executor`` option and ``autometa resume`` then build it with :meth:`from_settings`.
    """

    #: How many jobs may be in flight at once.
    capacity: int = 1

    @classmethod
    def from_settings(
        cls, *, workers: int, trial_timeout: float | None, **options: Any
    ) -> BaseExecutor:
        """Build the executor a search asks for by name (:func:`make_executor`).

        The default calls ``cls(workers=max(1, workers), timeout=trial_timeout)``; override
        it for another constructor. ``options`` are the command line's executor options
        (``ray_address``, ``gpus_per_trial``; None when not given); an executor that does not
        use one ignores it, as the command line always passes them.

        Args:
            workers: parallel evaluations the search was given (>= 0).
            trial_timeout: seconds after which one evaluation is stopped; None for no limit.
            **options: executor-specific settings.
        """
        return cls(workers=max(1, workers), timeout=trial_timeout)  # type: ignore[call-arg]

    @abc.abstractmethod
    def start(self, evaluator: Evaluator) -> None:
        """Get ready to evaluate with ``evaluator`` (start workers, connect).

        Called once, before the study is touched, so that a setting that cannot work (no
        ``__main__`` guard, no cluster) stops the search before anything is stored.
        """

    @abc.abstractmethod
    def submit(self, job: Job) -> None:
        """Start one job; the caller keeps ``in_flight < capacity``."""

    @abc.abstractmethod
    def wait(self, timeout: float | None = None) -> list[Outcome]:
        """Outcomes that are ready, waiting up to ``timeout`` seconds for the first one.

        Returns an empty list when nothing finished in time (or nothing is in flight); the
        loop calls it again. A job over its time limit is stopped here and comes back failed.
        """

    @property
    @abc.abstractmethod
    def in_flight(self) -> int:
        """Jobs submitted whose outcome has not been returned yet."""

    @abc.abstractmethod
    def cancel(self) -> list[JobKey]:
        """Stop every in-flight job; returns their keys (``job.keys``; the loop re-queues
        them)."""

    def shutdown(self) -> None:  # noqa: B027 - optional hook
        """Release workers; the default does nothing. Called once, also after an error."""

    def describe(self) -> dict[str, Any]:
        """JSON-safe description for the study record and logs."""
        return {"executor": type(self).__name__, "capacity": self.capacity}

    def memory_limit(self) -> int | None:
        """Default memory limit for one evaluation in bytes; None (the default): no limit.

        Executors that run on this machine offer half of the memory of the device their
        evaluations use, shared among the workers on it.
        """
        return None

    def __enter__(self) -> BaseExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def keys_text(job: Job) -> str:
    """``"trial 3"`` for a job, ``"trial 3, trial 4"`` for a batch, ``"final run 0"`` for a
    final-stage evaluation (log messages)."""
    return ", ".join(map(str, job.keys))
