"""CPU allocator settings for the evaluator's allocation pattern.

A meta-iteration on the CPU allocates and frees tensors of ~10 MB (paper-sized
navigation2d: 40,000 transitions x 64 features) hundreds of times. With glibc's defaults
each such block is ``mmap``-ed and given back to the kernel on ``free`` (or trimmed off the
heap top), so every new tensor pays page faults on first touch. Keeping freed blocks in the
heap for reuse makes a CPU meta-iteration 15-25% faster (``docs/evaluator.md``) and changes
no result. The setting is process-wide; set ``AUTOMETA_TUNE_MALLOC=0`` to leave malloc alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["MMAP_THRESHOLD", "tune_cpu_allocator"]

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
MMAP_THRESHOLD = 32 * 1024 * 1024
"""Blocks below this come from the heap (glibc's largest allowed value on 64-bit)."""
_TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int: trim only above 2 GiB free
_TOP_PAD = 64 * 1024 * 1024

_state: dict[str, bool] = {}


def tune_cpu_allocator() -> bool:
    """Make glibc malloc keep freed blocks for reuse (once per process); True if applied.

    A no-op returning False off glibc (macOS, musl), when ``AUTOMETA_TUNE_MALLOC=0``, or
    when glibc refuses a value.
    """
    if "applied" in _state:
        return _state["applied"]
    applied = False
    if sys.platform.startswith("linux") and os.environ.get("AUTOMETA_TUNE_MALLOC", "1") != "0":
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            mallopt = None
        if mallopt is not None:
            mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            applied = all(
                mallopt(option, value) == 1
                for option, value in (
                    (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
                    (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD),
                    (_M_TOP_PAD, _TOP_PAD),
                )
            )
    _state["applied"] = applied
    return applied
