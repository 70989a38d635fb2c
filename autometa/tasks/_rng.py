"""Counter-based random numbers for pure, batched stepping.

Native task families keep no random-number generator state: every random draw is a hash of
an integer key (one per task x episode slot), a counter (the step index) and a draw index.
Stepping therefore stays a pure function of its inputs, the same numbers come out on CPU and
CUDA, and episode ``(i, j)`` of a batch sees the same noise as a single-instance view of that
slot. The mixer is the 32-bit "lowbias32" integer hash; all arithmetic is done on int64
tensors (or Python ints) without overflow.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "RESET_COUNTER",
    "box_muller",
    "fold",
    "key_from_seed",
    "normal",
    "slot_keys",
    "uniform",
]

_M32 = 0xFFFFFFFF
RESET_COUNTER = _M32
"""Counter value reserved for reset noise; step noise uses the step index (always smaller)."""


def _mul32(x, c: int):
    """``x * c mod 2**32`` for ``0 <= x, c < 2**32``, in 16-bit halves so int64 never wraps."""
    return (x * (c & 0xFFFF) + (((x * (c >> 16)) & 0xFFFF) << 16)) & _M32


def _mix(x):
    """The lowbias32 avalanche: a bijection on 32-bit integers."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def fold(key, data):
    """Derive a new 32-bit key from ``key`` and ``data`` (ints or int64 tensors, broadcast)."""
    return _mix(key ^ _mix((data & _M32) ^ 0x9E3779B9))


def key_from_seed(seed: int) -> int:
    """A 32-bit root key from a non-negative integer seed of any size."""
    return int(np.random.SeedSequence([seed, 0x6B6579]).generate_state(1, np.uint32)[0])


def slot_keys(root: int | torch.Tensor, tasks: torch.Tensor, episodes: torch.Tensor):
    """Keys of slots ``(tasks[:, None], episodes[None, :])``: depend only on the indices."""
    return fold(fold(root, tasks[:, None]), episodes[None, :])


def uniform(key: torch.Tensor, counter, n: int) -> torch.Tensor:
    """``n`` float32 draws in the open interval (0, 1) per key: shape ``key.shape + (n,)``."""
    draw = torch.arange(n, device=key.device, dtype=torch.int64)
    bits = fold(fold(key, counter).unsqueeze(-1), draw)
    return ((bits >> 8).to(torch.float32) + 0.5) * (1.0 / (1 << 24))


def normal(key: torch.Tensor, counter, n: int) -> torch.Tensor:
    """``n`` standard-normal float32 draws per key (Box-Muller on counter-based uniforms)."""
    u = uniform(key, counter, 2 * n)
    return box_muller(u[..., :n], u[..., n:])


def box_muller(u1: torch.Tensor, u2: torch.Tensor) -> torch.Tensor:
    """Standard normals from two independent uniforms in (0, 1)."""
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos((2.0 * torch.pi) * u2)
