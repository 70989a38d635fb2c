"""Memory limits: skip candidates too big for the machine, name the kernel's OOM kills.

A candidate whose evaluation needs more memory than the machine has would thrash it for
minutes and then be killed by the kernel. The search asks the evaluator for an estimate first
(``evaluator.estimate_memory(graph, meta_iterations)``, when it has one) and fails a candidate
over the limit at once; a worker killed by SIGKILL while its resident set was high is reported
as out of memory rather than as a dead worker, and not retried.
"""

from __future__ import annotations

import os
from typing import cast

import torch

from autometa.errors import ConfigurationError
from autometa.evaluation import Abilities, Evaluator, MemoryEstimating, abilities
from autometa.experiment._worker import OUT_OF_MEMORY, Job, describe_exitcode
from autometa.graph import from_json

__all__ = [
    "AUTO",
    "check_memory",
    "default_memory_limit",
    "format_size",
    "oom_kill_reason",
    "resident_bytes",
    "total_memory",
]

#: ``max_memory`` value that asks for the executor's default limit.
AUTO = "auto"


def format_size(size: float) -> str:
    """``"1.5 GiB"``, ``"512 MiB"``: three significant digits in the largest unit under it."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{int(size)} B"


def total_memory() -> int | None:
    """This machine's physical memory in bytes, or None where the system does not say."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def _device_memory(device: str) -> int | None:
    """Total memory of ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``) in bytes, if known."""
    if not device.startswith("cuda"):
        return total_memory()
    try:
        index = int(device.partition(":")[2] or 0)
        return int(torch.cuda.get_device_properties(index).total_memory)
    except Exception:  # noqa: BLE001 - no CUDA here after all: no default limit
        return None


def default_memory_limit(devices: list[str]) -> int | None:
    """Half of each device's memory over the workers sharing it: the smallest share.

    ``devices`` holds one entry per worker (``"cpu"``, ``"cuda"``, ``"cuda:0"``, ...); CPU
    workers share the machine's RAM, GPU workers the memory of their GPU.
    """
    shares = []
    for device in set(devices):
        memory = _device_memory(device)
        if memory is not None:
            shares.append(memory // 2 // devices.count(device))
    return min(shares) if shares else None


def resident_bytes(pid: int) -> int | None:
    """The resident set of process ``pid`` (from ``/proc/<pid>/statm``), or None if unknown."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def check_memory(
    evaluator: Evaluator, job: Job, limit: int | None, can: Abilities | None = None
) -> tuple[str, int] | None:
    """``(reason, estimate)`` when the job's estimated memory is over ``limit``; else None.

    Evaluators without ``estimate_memory`` are not checked, nor is a candidate whose estimate
    cannot be made (its evaluation reports what is wrong with it). ``can`` is the evaluator's
    :func:`~autometa.evaluation.abilities`, read here when not given.

    Raises:
        ConfigurationError: from the estimate, for settings no candidate can run with.
    """
    if limit is None or not (abilities(evaluator) if can is None else can).memory_estimate:
        return None
    estimating = cast(MemoryEstimating, evaluator)
    try:
        needed = int(estimating.estimate_memory(from_json(job.graph_json), job.meta_iterations))
    except ConfigurationError:
        raise
    except Exception:  # noqa: BLE001 - a bad candidate: its evaluation says what is wrong
        return None
    if needed <= limit:
        return None
    return (
        f"{OUT_OF_MEMORY}needs ~{format_size(needed)}, limit {format_size(limit)} "
        "(estimate; raise --max-memory to try it)"
    ), needed


def oom_kill_reason(exitcode: int | None, resident: int | None, threshold: int | None) -> str:
    """The reason for a worker that died; out of memory for SIGKILL at a high resident set.

    Args:
        exitcode: the worker's exit code (``-9`` for SIGKILL).
        resident: the largest resident set sampled while it ran the job, in bytes.
        threshold: the resident set from which a SIGKILL is taken as the kernel's OOM killer.
    """
    how = describe_exitcode(exitcode)
    if exitcode == -9 and resident is not None and threshold is not None and resident >= threshold:
        return (
            f"{OUT_OF_MEMORY}worker killed by the OS ({how}) at ~{format_size(resident)} resident"
        )
    return f"worker died ({how})"
