"""How many members of a program one batched kernel of the held-out test should hold here.

A program puts P members' tensors side by side. On a GPU that is what fills the device. On a
CPU it only saves per-operation overhead, and it costs cache: the held-out test (and the TRPO
step) are chains of memory-bound element-wise operations over tensors of ``transitions x
width`` floats per member (at the paper's 2D navigation size, 40,000 x 64 floats, 10 MiB, for
the TRPO step; four times as many for the test), and such a chain runs several times slower
per element once its working set (about three such tensors: an input, a product and its
activation) leaves the last-level cache. Measured on a 2-core AMD EPYC with a 32 MiB L3
(``benchmarks/bench_population_phases.py``, ``docs/evaluator.md``): ``tanh(x @ w)`` on
40,000 x 64 rows ran at 360-390 ns a row, on 80,000 rows at 1,100 ns a row; four members
batched made the TRPO step 1.2-2x slower than four single steps. The environments' step
works on small per-step tensors and gains from batching at every size.

So on a CPU the held-out test runs in groups of :func:`members_per_kernel` members: one when
one member's working set already fills the cache, more when they are small; within a group
the environments step together. Whatever a member's parameters touch (its policy's forward,
inner steps, outer loss and TRPO step) runs member by member on a CPU
(:func:`one_member_at_a_time`), so that a member's numbers do not depend on its batch.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

__all__ = [
    "CACHE_ENV",
    "DEFAULT_CACHE_BYTES",
    "WORKING_SET_TENSORS",
    "last_level_cache",
    "members_per_kernel",
    "one_member_at_a_time",
]

CACHE_ENV = "AUTOMETA_CPU_CACHE_BYTES"
"""Environment variable that replaces the detected last-level cache size, in bytes (for a
container that reports the host's cache, or to force one member per kernel with ``1``)."""

DEFAULT_CACHE_BYTES = 32 * 1024 * 1024
"""The last-level cache assumed when the system does not say (a common server L3 slice)."""

WORKING_SET_TENSORS = 3
"""Tensors of ``transitions x width`` floats live at once in an element-wise chain."""

_UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3}


def _parse_size(text: str) -> int | None:
    text = text.strip().upper().removesuffix("B")
    if not text:
        return None
    scale = _UNITS.get(text[-1], 1)
    digits = text[:-1] if text[-1] in _UNITS else text
    return int(digits) * scale if digits.isdigit() else None


def last_level_cache() -> int:
    """Bytes of the CPU's largest cache: ``$AUTOMETA_CPU_CACHE_BYTES`` when set to a positive
    whole number, else Linux's sysfs, else :data:`DEFAULT_CACHE_BYTES`."""
    text = os.environ.get(CACHE_ENV, "").strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    return _detected_cache()


@functools.cache
def _detected_cache() -> int:
    sizes = []
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            size = _parse_size((index / "size").read_text())
        except OSError:
            continue
        if size:
            sizes.append(size)
    return max(sizes) if sizes else DEFAULT_CACHE_BYTES


def members_per_kernel(
    device: torch.device, members: int, transitions: int, width: int, itemsize: int = 4
) -> int:
    """Members one batched TRPO step or test should hold (1 to ``members``).

    Args:
        device: where the population runs; every member at once off the CPU.
        members: the population size.
        transitions: one member's transitions in the largest batch (post-adaptation episodes
            for the TRPO step, a test rollout for the test).
        width: the widest layer of the policy.
        itemsize: bytes per number.
    """
    if device.type != "cpu":
        return members
    working_set = WORKING_SET_TENSORS * transitions * max(int(width), 1) * itemsize
    return max(1, min(members, last_level_cache() // max(working_set, 1)))


def one_member_at_a_time(device: torch.device) -> bool:
    """Whether the members' policy forwards and inner steps run member by member here.

    On a CPU they do: each member then runs exactly its own one-member code, so its numbers
    cannot depend on what it is batched with, and a candidate alone pays nothing for the
    member axis (``vmap`` over a member axis of one cost 0.4-0.6 ms per rollout step of
    the 2x64 policy at 2 threads, measured; a meta-iteration at the paper's size 1.2x slower).
    Off the CPU every member runs in the same ``vmap`` kernels: that is what fills a GPU.
    """
    return device.type == "cpu"
