"""The process executor: evaluations in local worker processes, one job per worker."""

from __future__ import annotations

import logging
import os
import pickle
import signal
import time
from multiprocessing import connection, get_all_start_methods, get_context
from typing import Any

import torch

from autometa.evaluation import Evaluator, failed_result
from autometa.experiment._executor import BaseExecutor, keys_text
from autometa.experiment._memory import (
    default_memory_limit,
    oom_kill_reason,
    resident_bytes,
    total_memory,
)
from autometa.experiment._startup import wait_ready
from autometa.experiment._worker import OUT_OF_MEMORY, Job, JobKey, Outcome, run_jobs

__all__ = ["ProcessExecutor", "default_devices"]

logger = logging.getLogger("autometa.experiment.executors")

#: Seconds between samples of a busy worker's resident set.
_SAMPLE_EVERY = 0.25


def default_devices(workers: int) -> list[tuple[str, str | None]]:
    """``(device, CUDA_VISIBLE_DEVICES)`` per worker: one GPU each when there are several.

    With more than one visible GPU, worker ``i`` is pinned to GPU ``i % n`` through
    ``CUDA_VISIBLE_DEVICES`` (so inside the worker it is ``cuda:0``) and its trials record
    ``cuda:<i % n>``; with one GPU every worker shares ``cuda``; otherwise ``cpu``.
    """
    try:
        count = torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - a broken driver: CPU workers
        count = 0
    if count > 1:
        return [(f"cuda:{i % count}", str(i % count)) for i in range(workers)]
    if count == 1:
        return [("cuda", None)] * workers
    return [("cpu", None)] * workers


def _worker_main(
    conn: Any, evaluator: Evaluator, device: str, visible: str | None, threads: int | None
) -> None:
    """Body of a worker process: answer jobs until the pipe closes or ``None`` arrives.

    Ctrl-C and a hang-up reach the whole process group; the parent handles them and stops its
    workers, so a worker ignores them. If the parent is gone (its end of the pipe is closed),
    the worker exits quietly instead of raising ``BrokenPipeError``.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if visible is not None:  # before anything initialises CUDA in this process
        os.environ["CUDA_VISIBLE_DEVICES"] = visible
    if threads:
        torch.set_num_threads(threads)
    evaluate_on = "cuda" if device.startswith("cuda") else device
    conn.send(("ready", os.getpid()))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            conn.send(("start", job.key, time.time()))
            outcomes = run_jobs(evaluator, job, evaluate_on)
            for outcome in outcomes:
                outcome.device = device
            try:
                conn.send(("done", outcomes))
            except (BrokenPipeError, ConnectionError, EOFError):
                raise
            except Exception as exc:  # noqa: BLE001 - an unpicklable result fails the trial only
                for outcome in outcomes:
                    outcome.result = failed_result(f"result could not be sent back: {exc}")
                conn.send(("done", outcomes))
        except (BrokenPipeError, ConnectionError, EOFError):
            return  # the search process is gone: nobody to answer


class _Worker:
    """One worker process with its pipe, device and current job."""

    def __init__(self, process: Any, conn: Any, device: str) -> None:
        self.process, self.conn, self.device = process, conn, device
        self.job: Job | None = None
        self.deadline: float | None = None
        self.started_a_job = False
        self.resident = 0  # the largest resident set sampled while running the current job

    def sample(self) -> None:
        """Note the worker's resident set (from ``/proc``; nothing where it is unavailable)."""
        self.resident = max(self.resident, resident_bytes(self.process.pid) or 0)

    def stop(self, grace: float = 1.0) -> None:
        """Terminate (SIGTERM, then SIGKILL after ``grace`` seconds) and reap the process."""
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(grace)
            if self.process.is_alive():
                self.process.kill()
        self.process.join(5)
        self.conn.close()


class ProcessExecutor(BaseExecutor):
    """Local worker processes (``forkserver`` or ``spawn``, safe with torch and CUDA).

    Workers are started once and reused. A worker that dies (killed by a signal, crashed) is
    noticed through its process sentinel: its job comes back as a *lost* outcome with the
    reason ``"worker died (signal 9)"`` and a fresh worker takes its place. While a job runs
    its worker's resident set is sampled (every quarter second, from ``/proc``); a worker
    killed by SIGKILL after reaching ``oom_resident`` bytes was most likely killed by the
    kernel for lack of memory: its job fails with ``"out of memory: worker killed by the OS
    (signal 9) at ~X GiB resident"`` and is not retried (it would only thrash again). A job
    running past ``timeout`` seconds has its worker terminated and comes back failed with the
    reason. The evaluator is pickled to every worker, so it must be picklable.

    Args:
        workers: number of worker processes (parallel evaluations).
        timeout: per-trial time limit in seconds, measured from when the worker starts the job.
        devices: device per worker; default :func:`default_devices` (one GPU per worker when
            there are several, pinned with ``CUDA_VISIBLE_DEVICES``; CPU otherwise).
        threads_per_worker: torch intra-op threads in each worker; default splits the CPU
            cores between the workers.
        start_method: ``"forkserver"`` (default where available: torch is imported once in
            a clean server process and each worker is forked from it, so starting or
            replacing a worker is fast) or ``"spawn"`` (a fresh interpreter per worker).
            Both are safe with torch and CUDA; plain ``fork`` is not offered.
        oom_resident: resident bytes from which a worker killed by SIGKILL counts as out of
            memory; default half of the machine's memory.

    :meth:`start` waits until every worker is ready. A worker that cannot start raises
    :class:`ConfigurationError` there, before anything is evaluated: in particular a script
    that calls ``search()`` without an ``if __name__ == "__main__":`` guard, which every
    worker would run again.
    """

    def __init__(
        self,
        workers: int = 1,
        timeout: float | None = None,
        *,
        devices: list[str] | None = None,
        threads_per_worker: int | None = None,
        start_method: str | None = None,
        oom_resident: int | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"`workers` must be at least 1, got {workers=}")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"`timeout` must be positive seconds or None, got {timeout=}")
        self.capacity = workers
        self.timeout = timeout
        if devices is None:
            self._devices = default_devices(workers)
        else:
            self._devices = [(d, None) for d in (devices * workers)[:workers]]
        self.threads = threads_per_worker or max(1, (os.cpu_count() or 1) // workers)
        if start_method is None:
            start_method = "forkserver" if "forkserver" in get_all_start_methods() else "spawn"
        if start_method not in ("spawn", "forkserver"):
            raise ValueError(
                f"`start_method` must be 'spawn' or 'forkserver' (fork is not safe with torch), "
                f"got {start_method=}"
            )
        self.start_method = start_method
        total = total_memory()
        self.oom_resident = oom_resident or (total // 2 if total else None)
        self._ctx = get_context(start_method)
        self._evaluator: Evaluator = None
        self._workers: list[_Worker | None] = [None] * workers
        self._ready: list[Outcome] = []

    def describe(self) -> dict[str, Any]:
        return {
            "executor": type(self).__name__,
            "capacity": self.capacity,
            "timeout": self.timeout,
            "devices": [d for d, _ in self._devices],
        }

    def memory_limit(self) -> int | None:
        return default_memory_limit([d for d, _ in self._devices])

    def start(self, evaluator: Evaluator) -> None:
        try:
            pickle.dumps(evaluator)
        except Exception as exc:
            raise TypeError(
                f"the evaluator must be picklable to run in worker processes; pickling "
                f"{type(evaluator).__name__} failed: {exc}"
            ) from exc
        self._evaluator = evaluator
        if self.start_method == "forkserver":  # never the main script: each worker runs it
            modules = ["autometa.experiment._worker", type(evaluator).__module__]
            self._ctx.set_forkserver_preload([m for m in modules if m != "__main__"])
        for slot in range(self.capacity):
            self._spawn(slot)
        try:
            wait_ready({slot: (w.process, w.conn) for slot, w in enumerate(self._workers) if w})
        except BaseException:
            self.shutdown()
            raise

    def _spawn(self, slot: int) -> _Worker:
        device, visible = self._devices[slot]
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(
            target=_worker_main,
            args=(child, self._evaluator, device, visible, self.threads),
            name=f"autometa-worker-{slot}",
            daemon=True,
        )
        process.start()
        child.close()
        worker = _Worker(process, parent, device)
        self._workers[slot] = worker
        logger.debug("started worker %d (pid %s, device %s)", slot, process.pid, device)
        return worker

    @property
    def in_flight(self) -> int:
        return sum(1 for w in self._workers if w is not None and w.job is not None) + len(
            self._ready
        )

    def submit(self, job: Job) -> None:
        for slot, worker in enumerate(self._workers):
            if worker is None or not worker.process.is_alive() and worker.job is None:
                if worker is not None:
                    worker.stop()
                worker = self._spawn(slot)
            if worker.job is None:
                worker.job, worker.deadline, worker.resident = job, None, 0
                worker.conn.send(job)
                return
        raise RuntimeError(f"all {self.capacity} workers are busy; wait() before submit()")

    def wait(self, timeout: float | None = None) -> list[Outcome]:
        end = None if timeout is None else time.monotonic() + timeout
        while not self._ready:
            busy = [w for w in self._workers if w is not None and w.job is not None]
            if not busy:
                break
            for worker in busy:
                worker.sample()
            now = time.monotonic()
            limits = [w.deadline - now for w in busy if w.deadline is not None]
            limits.append(_SAMPLE_EVERY)
            if end is not None:
                limits.append(end - now)
            wait_for = max(0.0, min(limits)) if limits else None
            handles = [w.conn for w in busy] + [w.process.sentinel for w in busy]
            ready = set(connection.wait(handles, wait_for))
            for slot, worker in enumerate(self._workers):
                if worker is None or worker.job is None:
                    continue
                if worker.conn in ready or worker.process.sentinel in ready:
                    self._receive(slot, worker)
                elif worker.deadline is not None and time.monotonic() >= worker.deadline:
                    self._time_out(slot, worker)
            if end is not None and time.monotonic() >= end:
                break
        ready_outcomes, self._ready = self._ready, []
        return ready_outcomes

    def _receive(self, slot: int, worker: _Worker) -> None:
        """Read what a worker sent, or notice that it died."""
        job = worker.job
        assert job is not None
        try:
            while worker.conn.poll():
                message = worker.conn.recv()
                if message[0] == "ready":  # a replacement worker's hello
                    continue
                if message[0] == "start":
                    worker.started_a_job = True
                    if self.timeout is not None:
                        worker.deadline = time.monotonic() + self.timeout
                else:
                    worker.job, worker.deadline = None, None
                    self._ready.extend(message[1])
                    return
        except (EOFError, OSError):
            pass
        if worker.process.is_alive():
            return
        worker.process.join(1)
        reason = oom_kill_reason(worker.process.exitcode, worker.resident, self.oom_resident)
        if not worker.started_a_job and worker.process.exitcode == 1:
            reason += (
                " before starting; the worker could not be set up (with the spawn and forkserver "
                "start methods a script's main code needs an `if __name__ == '__main__':` guard)"
            )
        logger.warning("%s: %s", keys_text(job), reason)
        worker.stop()
        self._workers[slot] = None
        lost = not reason.startswith(OUT_OF_MEMORY)  # an OOM kill would only thrash again
        self._ready.extend(
            Outcome(k, failed_result(reason), 0.0, worker.device, lost=lost) for k in job.keys
        )

    def _time_out(self, slot: int, worker: _Worker) -> None:
        job = worker.job
        assert job is not None
        reason = f"timed out after {self.timeout:g} s (worker terminated)"
        logger.warning("%s: %s", keys_text(job), reason)
        worker.stop()
        self._workers[slot] = None
        took = float(self.timeout or 0.0)
        self._ready.extend(
            Outcome(k, failed_result(reason), took, worker.device) for k in job.keys
        )

    def cancel(self) -> list[JobKey]:
        keys = [o.key for o in self._ready]
        self._ready = []
        for slot, worker in enumerate(self._workers):
            if worker is not None and worker.job is not None:
                keys.extend(worker.job.keys)
                worker.stop(grace=0.5)
                self._workers[slot] = None
        return keys

    def shutdown(self) -> None:
        live = [w for w in self._workers if w is not None]
        for worker in live:  # ask idle workers to exit, all at once, then reap them
            if worker.job is None and worker.process.is_alive():
                try:
                    worker.conn.send(None)
                except OSError:
                    pass
        deadline = time.monotonic() + 2.0
        for worker in live:
            if worker.job is None:
                worker.process.join(max(0.0, deadline - time.monotonic()))
            worker.stop(grace=0.5)
        self._workers = [None] * self.capacity
