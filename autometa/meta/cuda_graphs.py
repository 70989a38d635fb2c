"""CUDA-graph capture of the evaluator's fixed-shape computations (rollouts, the TRPO step).

On a GPU at the paper's sizes a rollout's time loop or a CG solve is thousands of small
kernels, and launching them costs more than running them (``docs/evaluator.md``). Each such
computation is captured once per shape signature and then replayed: inputs are copied into
the graph's static buffers, the graph is replayed, and the outputs are cloned out. A replay
runs the captured kernels in the captured order, so it gives what the eager code gives on the
same device.

Capture is used only on CUDA, and can be switched off with ``AUTOMETA_CUDA_GRAPHS=0``. A
captured function must take as arguments every tensor it reads that changes between calls
(anything else is baked into the graph). A function that cannot be captured (a host
synchronisation or a host-to-device copy inside it) is logged once and then run eagerly.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Callable, Hashable, Sequence

import torch

__all__ = ["CapturedFunction", "captured", "enabled", "graphs_of", "signature"]

log = logging.getLogger(__name__)

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_FAILED = object()


def enabled(device: torch.device) -> bool:
    """Whether loops on ``device`` are captured: CUDA, unless ``AUTOMETA_CUDA_GRAPHS=0``."""
    return device.type == "cuda" and os.environ.get("AUTOMETA_CUDA_GRAPHS", "1") != "0"


def signature(tensors: Sequence[torch.Tensor]) -> tuple:
    """Shapes, dtypes and devices of ``tensors``: what a captured graph is specialised to."""
    return tuple((tuple(t.shape), t.dtype, t.device) for t in tensors)


class CapturedFunction:
    """``fn(*inputs) -> list of tensors`` captured as one CUDA graph on example inputs.

    Args:
        fn: a function of tensors only, with no host synchronisation; its outputs must be
            tensors it creates (not its inputs).
        example: inputs of the shapes every later call will have.
        warmup: eager runs on a side stream before capture (library handles, workspaces).
    """

    def __init__(
        self,
        fn: Callable[..., Sequence[torch.Tensor]],
        example: Sequence[torch.Tensor],
        warmup: int = 2,
    ) -> None:
        self.inputs = [t.detach().clone() for t in example]
        side = torch.cuda.Stream(device=self.inputs[0].device)
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                fn(*self.inputs)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.outputs = list(fn(*self.inputs))

    def __call__(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Copy ``inputs`` in, replay, and return copies of the outputs."""
        for buffer, value in zip(self.inputs, inputs):
            buffer.copy_(value)
        self.graph.replay()
        return [out.clone() for out in self.outputs]


def captured(
    owner: object,
    key: Hashable,
    fn: Callable[..., Sequence[torch.Tensor]],
    inputs: Sequence[torch.Tensor],
) -> list[torch.Tensor] | None:
    """Run ``fn(*inputs)`` from a CUDA graph cached on ``owner`` under ``key``.

    The graph lives as long as ``owner`` (weakly referenced; the evaluator uses the policy
    module). Returns None when capture is off for the inputs' device or ``fn`` could not be
    captured; the caller then runs ``fn`` eagerly.
    """
    if not inputs or not enabled(inputs[0].device):
        return None
    per_owner = _CACHE.setdefault(owner, {})
    full_key = (key, signature(inputs))
    entry = per_owner.get(full_key)
    if entry is None:
        try:
            entry = CapturedFunction(fn, inputs)
        except Exception as exc:  # noqa: BLE001 - any capture failure means: run eagerly
            log.warning("CUDA-graph capture of %s failed, running it eagerly: %s", key, exc)
            torch.cuda.synchronize()
            entry = _FAILED
        per_owner[full_key] = entry
    if entry is _FAILED:
        return None
    return entry(inputs)


def graphs_of(owner: object) -> list[CapturedFunction]:
    """The graphs captured for ``owner`` so far (failed captures are not listed)."""
    return [e for e in _CACHE.get(owner, {}).values() if isinstance(e, CapturedFunction)]
