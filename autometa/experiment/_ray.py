"""Ray executor: evaluations as Ray tasks on a cluster (the ``distributed`` extra)."""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

from autometa._optional import import_optional
from autometa.errors import ConfigurationError
from autometa.evaluation import Evaluator, failed_result
from autometa.experiment._executor import BaseExecutor, keys_text
from autometa.experiment._worker import OUT_OF_MEMORY, Job, JobKey, Outcome, run_jobs

__all__ = ["RayExecutor"]

logger = logging.getLogger(__name__)


def _import_ray() -> Any:
    return import_optional("ray", "the Ray executor")


def _ray_evaluate(evaluator: Evaluator, job: Job) -> list[Outcome]:
    """Body of one Ray task: evaluate a job or a batch on the GPU Ray assigned, if any."""
    import ray

    context = ray.get_runtime_context()
    gpus = context.get_accelerator_ids().get("GPU", [])
    device = "cuda" if gpus else "cpu"
    outcomes = run_jobs(evaluator, job, device)
    node = context.get_node_id()
    ip = ray.util.get_node_ip_address()
    for outcome in outcomes:
        outcome.device = f"ray:{node[:8]}/{device}{':' + ','.join(map(str, gpus)) if gpus else ''}"
        outcome.result.metrics["ray_node"] = node
        outcome.result.metrics["ray_node_ip"] = ip
    return outcomes


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """Refuse an explicit ``host:port`` address nothing listens on, in one line.

    ``ray.init`` keeps retrying an address where no cluster answers for minutes; a TCP
    connection to the head's port tells at once. ``"auto"``, ``"local"`` and addresses
    without a port are left to Ray.
    """
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        if isinstance(exc, TimeoutError):
            reason = f"no answer in {timeout:g} s"
        else:
            reason = (exc.strerror or type(exc).__name__).lower()
        raise ConfigurationError(
            f"--ray-address {address}: no Ray cluster answers there ({reason}); "
            "start its head with `ray start --head` or check the address"
        ) from None


class RayExecutor(BaseExecutor):
    """Sends each evaluation to a Ray cluster as a task with its own resource request.

    Connects with ``ray.init(address=address)`` unless Ray is already initialised in this
    process (then the running instance is used and left running); an explicit ``host:port``
    where nothing listens is refused at once (:class:`ConfigurationError`) rather than
    retried by Ray for minutes. The evaluator is put in the object store once. Each
    outcome records where it ran: ``device`` is ``"ray:<node id, 8 hex>/cpu"`` (or
    ``/cuda:<GPU ids>``) and the result's metrics hold ``ray_node`` (the full node id) and
    ``ray_node_ip``. A task lost with its worker (node failure, killed process) comes
    back as a *lost* outcome, so the search retries it once; Ray's own retries are off.

    Args:
        address: the cluster address (``"auto"``, ``"ray://host:10001"``); None starts or
            joins a local instance.
        num_gpus_per_trial: GPUs per evaluation; fractions (``0.25``) share a GPU between
            small policies.
        num_cpus_per_trial: CPUs per evaluation.
        workers: evaluations in flight at once; default: what the cluster's CPUs and GPUs
            allow for the per-trial request.
        timeout: per-trial time limit in seconds, counted from submission (the executor never
            submits more than the cluster can run, so this is close to the run time); the
            task is cancelled with ``force=True``.
        init_kwargs: extra keyword arguments for ``ray.init``.
    """

    def __init__(
        self,
        address: str | None = None,
        num_gpus_per_trial: float = 0.0,
        num_cpus_per_trial: float = 1,
        *,
        workers: int | None = None,
        timeout: float | None = None,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if num_gpus_per_trial < 0 or num_cpus_per_trial < 0:
            raise ValueError(
                "`num_gpus_per_trial` and `num_cpus_per_trial` must be >= 0, got "
                f"{num_gpus_per_trial=}, {num_cpus_per_trial=}"
            )
        self.address = address
        self.num_gpus_per_trial = float(num_gpus_per_trial)
        self.num_cpus_per_trial = float(num_cpus_per_trial)
        self.timeout = timeout
        self.init_kwargs = dict(init_kwargs or {})
        self._workers = workers
        self.capacity = workers or 1
        self._owns_ray = False
        self._refs: dict[Any, tuple[Job, float]] = {}
        self._remote: Any = None
        self._evaluator_ref: Any = None

    @classmethod
    def from_settings(
        cls, *, workers: int, trial_timeout: float | None, **options: Any
    ) -> RayExecutor:
        """Connect to ``options["ray_address"]`` (None: a local instance) with
        ``options["gpus_per_trial"]`` GPUs per evaluation; ``workers=0``: as many evaluations
        in flight as the cluster allows."""
        return cls(
            options.get("ray_address"),
            options.get("gpus_per_trial") or 0.0,
            workers=workers or None,
            timeout=trial_timeout,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "executor": type(self).__name__,
            "address": self.address,
            "capacity": self.capacity,
            "num_gpus_per_trial": self.num_gpus_per_trial,
            "num_cpus_per_trial": self.num_cpus_per_trial,
            "timeout": self.timeout,
        }

    def start(self, evaluator: Evaluator) -> None:
        ray = _import_ray()
        if not ray.is_initialized():
            if self.address is not None:
                _check_reachable(self.address)
            try:
                ray.init(address=self.address, **self.init_kwargs)
            except ConnectionError as exc:  # "auto" with no cluster running, and the like
                first = (str(exc).strip().splitlines() or [""])[0]
                raise ConfigurationError(f"--ray-address {self.address}: {first}") from None
            self._owns_ray = True
        if self._workers is None:
            resources = ray.cluster_resources()
            limits = []
            if self.num_cpus_per_trial > 0:
                limits.append(int(resources.get("CPU", 1) // self.num_cpus_per_trial))
            if self.num_gpus_per_trial > 0:
                limits.append(int(resources.get("GPU", 0) // self.num_gpus_per_trial))
            self.capacity = max(1, min(limits) if limits else 1)
        self._evaluator_ref = ray.put(evaluator)
        self._remote = ray.remote(_ray_evaluate).options(
            num_cpus=self.num_cpus_per_trial,
            num_gpus=self.num_gpus_per_trial,
            max_retries=0,
        )
        logger.info("Ray executor: %d evaluations in flight", self.capacity)

    @property
    def in_flight(self) -> int:
        return len(self._refs)

    def submit(self, job: Job) -> None:
        ref = self._remote.remote(self._evaluator_ref, job)
        self._refs[ref] = (job, time.monotonic())

    def wait(self, timeout: float | None = None) -> list[Outcome]:
        ray = _import_ray()
        if not self._refs:
            return []
        wait_for = timeout
        if self.timeout is not None:
            now = time.monotonic()
            next_deadline = min(start + self.timeout for _, start in self._refs.values()) - now
            wait_for = max(0.0, next_deadline if timeout is None else min(timeout, next_deadline))
        refs = list(self._refs)
        ready, _ = ray.wait(refs, num_returns=1, timeout=wait_for)
        if ready:
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        outcomes = [o for ref in ready for o in self._collect(ray, ref)]
        if self.timeout is not None:
            now = time.monotonic()
            for ref, (job, start) in list(self._refs.items()):
                if now - start >= self.timeout:
                    ray.cancel(ref, force=True)
                    del self._refs[ref]
                    reason = f"timed out after {self.timeout:g} s (Ray task cancelled)"
                    logger.warning("%s: %s", keys_text(job), reason)
                    outcomes.extend(
                        Outcome(k, failed_result(reason), self.timeout) for k in job.keys
                    )
        return outcomes

    def _collect(self, ray: Any, ref: Any) -> list[Outcome]:
        job, start = self._refs.pop(ref)
        try:
            return list(ray.get(ref))
        except ray.exceptions.RayTaskError as exc:  # the task body raised (run_job did not catch)
            return [Outcome(k, failed_result(f"Ray task failed: {exc}")) for k in job.keys]
        except ray.exceptions.OutOfMemoryError:  # Ray's memory monitor killed it: not lost
            reason = f"{OUT_OF_MEMORY}Ray's memory monitor killed the task on its node"
            took = time.monotonic() - start
            return [Outcome(k, failed_result(reason), took) for k in job.keys]
        except ray.exceptions.RayError as exc:  # worker or node died, object lost
            reason = f"worker died (Ray: {type(exc).__name__})"
            took = time.monotonic() - start
            return [Outcome(k, failed_result(reason), took, lost=True) for k in job.keys]

    def cancel(self) -> list[JobKey]:
        ray = _import_ray()
        keys = []
        for ref, (job, _) in list(self._refs.items()):
            ray.cancel(ref, force=True)
            keys.extend(job.keys)
        self._refs.clear()
        return keys

    def shutdown(self) -> None:
        if self._refs:
            self.cancel()
        if self._owns_ray:
            _import_ray().shutdown()
            self._owns_ray = False
