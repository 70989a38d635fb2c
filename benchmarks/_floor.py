"""The arithmetic floor of a computation: its matrix-product FLOPs over the measured GEMM rate.

Used by the benchmarks that compare a meta-iteration's time with what the CPU's matrix
products alone would need (``compare_revisions.py``):

- :class:`MatmulCounter` counts, per operand shape, every matrix product a call executes
  (``mm``, ``addmm``, ``bmm``, ``baddbmm`` at the aten level, so products inside a traced
  program, in autograd's backward and in rollouts all count). It needs no access to the code
  under measurement: wrap a public call such as ``meta_train`` in it;
- :func:`gemm_rate` measures the FLOP/s of one product shape at the current thread count;
- :func:`floor_seconds` divides each shape's FLOPs by that shape's rate.

A product of an ``m x k`` by a ``k x n`` matrix is counted as ``2 m k n`` FLOPs (batched:
times the batch); the additions of ``addmm`` and everything element-wise are left out, so the
floor is a lower bound on the time of any implementation doing these products.
"""

from __future__ import annotations

import time

import torch
from _common import time_samples
from torch.utils._python_dispatch import TorchDispatchMode

_aten = torch.ops.aten
# op -> index of its two matrix operands in the call's arguments
_COUNTED = {
    _aten.mm.default: 0,
    _aten.bmm.default: 0,
    _aten.addmm.default: 1,
    _aten.baddbmm.default: 1,
}
# the shape every floor in the docs was first quoted at: 40,000 x 64 times 64 x 64
REFERENCE_SHAPE = "40000x64x64"


def shape_key(a: torch.Size, b: torch.Size) -> str:
    """``"MxKxN"`` for a product, ``"BxMxKxN"`` for a batched one."""
    dims = [*a[:-2], a[-2], a[-1], b[-1]] if len(a) == 3 else [a[0], a[1], b[1]]
    return "x".join(str(int(d)) for d in dims)


def shape_flops(key: str) -> int:
    """FLOPs of one product of shape ``key`` (see :func:`shape_key`)."""
    dims = [int(d) for d in key.split("x")]
    batch = dims[0] if len(dims) == 4 else 1
    m, k, n = dims[-3:]
    return 2 * batch * m * k * n


class MatmulCounter(TorchDispatchMode):
    """Counts the matrix products run while active: ``counts[shape] = number of calls``.

    Example:
        >>> with MatmulCounter() as counter:  # doctest: +SKIP
        ...     meta_train(policy, family, cfg, 0)
        >>> counter.total_flops()  # doctest: +SKIP
    """

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        first = _COUNTED.get(func)
        if first is not None:
            key = shape_key(args[first].shape, args[first + 1].shape)
            self.counts[key] = self.counts.get(key, 0) + 1
        return func(*args, **(kwargs or {}))

    def flops(self) -> dict[str, int]:
        """FLOPs per shape, largest first."""
        out = {key: n * shape_flops(key) for key, n in self.counts.items()}
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def total_flops(self) -> int:
        """All counted FLOPs."""
        return sum(self.flops().values())


def main_shapes(flops: dict[str, int], share: float = 0.99, most: int = 12) -> list[str]:
    """The largest shapes that together hold ``share`` of the FLOPs (at most ``most``)."""
    total, running, keys = sum(flops.values()), 0, []
    for key, value in sorted(flops.items(), key=lambda kv: -kv[1]):
        if running >= share * total or len(keys) >= most:
            break
        keys.append(key)
        running += value
    return keys


def gemm_rate(key: str, *, seconds: float = 0.5, repeats: int = 7) -> float:
    """FLOP/s of the product ``key`` in float32 at the current torch thread count.

    Each of ``repeats`` samples times as many products as fit in about ``seconds /
    repeats``; the best sample is returned (a rate the machine demonstrably reached, which is
    what a floor needs).
    """
    dims = [int(d) for d in key.split("x")]
    m, k, n = dims[-3:]
    gen = torch.Generator().manual_seed(0)
    lead = dims[:1] if len(dims) == 4 else []
    a = torch.randn(*lead, m, k, generator=gen)
    b = torch.randn(*lead, k, n, generator=gen)
    product = torch.bmm if lead else torch.mm

    def fn() -> torch.Tensor:
        return product(a, b)

    fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    number = max(1, int(seconds / repeats / once))
    return shape_flops(key) / min(time_samples(fn, repeats=repeats, number=number))


def gemm_rates(keys: list[str], seconds: float = 0.5) -> dict[str, float]:
    """:func:`gemm_rate` of each shape (and of :data:`REFERENCE_SHAPE`)."""
    keys = list(dict.fromkeys([REFERENCE_SHAPE, *keys]))
    return {key: gemm_rate(key, seconds=seconds) for key in keys}


def floor_seconds(flops: dict[str, int], rates: dict[str, float]) -> float:
    """Seconds the products in ``flops`` need at ``rates``: each shape at its own rate, a shape
    without a measured rate at the best measured one."""
    best = max(rates.values())
    return sum(value / rates.get(key, best) for key, value in flops.items())
