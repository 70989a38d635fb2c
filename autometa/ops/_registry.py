"""The op registry: what a graph node's ``op`` name means as a torch module.

Users add ops from Python with :func:`register_op`; a space file can then name them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from autometa.registry import Registry

__all__ = ["OPS", "OpSpec", "register_op", "get_op"]


@dataclass(frozen=True)
class OpSpec:
    """How to build one op and what it costs.

    Attributes:
        name: the name a space file uses.
        make: ``make(in_features, width) -> nn.Module`` mapping ``(..., in)`` to ``(..., out)``.
        has_width: False for width-preserving ops (``identity``): their output width is
            their input width and a node of that op carries ``width=None``.
        macs: multiply-accumulates of one forward on one observation, from ``(in, out)``.
        description: one line for ``autometa validate`` and the docs.
    """

    name: str
    make: Callable[[int, int], nn.Module]
    has_width: bool = True
    macs: Callable[[int, int], int] = lambda i, o: i * o
    description: str = ""

    def out_width(self, in_features: int, width: int | None) -> int:
        """Output width of this op for a given input width and node width."""
        return int(width) if self.has_width else int(in_features)


OPS: Registry[OpSpec] = Registry("op")
"""Every node op by name (``linear_tanh``, ``identity``, ...); extend it with ``register_op``."""


def register_op(
    name: str,
    make: Callable[[int, int], nn.Module],
    *,
    has_width: bool = True,
    macs: Callable[[int, int], int] | None = None,
    description: str = "",
    overwrite: bool = False,
) -> OpSpec:
    """Register a new op under ``name`` so space files can use it.

    ``make(in_features, width)`` must return a module whose ``forward`` is functional (no
    in-place updates, no buffers changed), so that ``torch.func`` can batch it.
    """
    spec = OpSpec(
        name=name,
        make=make,
        has_width=has_width,
        macs=macs if macs is not None else (lambda i, o: i * o),
        description=description,
    )
    OPS.register(name, spec, overwrite=overwrite)
    return spec


def get_op(name: str) -> OpSpec:
    """The :class:`OpSpec` registered as ``name`` (``UnknownNameError`` if none)."""
    return OPS.get(name)


class LinearAct(nn.Module):
    """``activation(x @ W.T + b)``: a dense layer fused with its nonlinearity."""

    def __init__(self, in_features: int, out_features: int, activation: str | None) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.activation = activation
        self._act = _ACTIVATIONS[activation] if activation else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x)
        return self._act(y) if self._act is not None else y

    def extra_repr(self) -> str:
        return f"activation={self.activation}"


class LayerNormAct(nn.Module):
    """Dense layer, layer normalisation, then a nonlinearity (stable for deeper cells)."""

    def __init__(self, in_features: int, out_features: int, activation: str) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.norm = nn.LayerNorm(out_features)
        self._act = _ACTIVATIONS[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._act(self.norm(self.linear(x)))


_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": F.relu,
    "elu": F.elu,
    "silu": F.silu,
    "sigmoid": torch.sigmoid,
    "gelu": F.gelu,
    "softplus": F.softplus,
}


def _linear_op(activation: str | None) -> Callable[[int, int], nn.Module]:
    return lambda i, o: LinearAct(i, o, activation)


register_op("linear", _linear_op(None), description="dense layer, no nonlinearity")
for _act in _ACTIVATIONS:
    register_op(f"linear_{_act}", _linear_op(_act), description=f"dense layer followed by {_act}")
for _act in ("tanh", "relu"):
    register_op(
        f"layernorm_{_act}",
        (lambda a: lambda i, o: LayerNormAct(i, o, a))(_act),
        macs=lambda i, o: i * o + 2 * o,
        description=f"dense layer, layer norm, then {_act}",
    )
register_op(
    "identity",
    lambda i, o: nn.Identity(),
    has_width=False,
    macs=lambda i, o: 0,
    description="passes its (merged) input through; output width = input width",
)
