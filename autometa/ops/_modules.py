"""The torch modules of the built-in ops, imported only when a policy is built.

The registry (:mod:`autometa.ops._registry`) names each factory below as a ``"module:attr"``
string, so reading, checking and counting a space never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ACTIVATIONS", "LayerNormAct", "LinearAct"]

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": F.relu,
    "elu": F.elu,
    "silu": F.silu,
    "sigmoid": torch.sigmoid,
    "gelu": F.gelu,
    "softplus": F.softplus,
}
"""The nonlinearities of the ``linear_*`` ops; the registry lists the same names."""


class LinearAct(nn.Module):
    """``activation(x @ W.T + b)``: a dense layer fused with its nonlinearity."""

    def __init__(self, in_features: int, out_features: int, activation: str | None) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.activation = activation
        self._act = ACTIVATIONS[activation] if activation else None

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
        self._act = ACTIVATIONS[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._act(self.norm(self.linear(x)))


def _linear(activation: str | None) -> Callable[[int, int], nn.Module]:
    return lambda i, o: LinearAct(i, o, activation)


def _layernorm(activation: str) -> Callable[[int, int], nn.Module]:
    return lambda i, o: LayerNormAct(i, o, activation)


# One factory ``make(in_features, width)`` per built-in op, named as the op is.
linear = _linear(None)
linear_tanh = _linear("tanh")
linear_relu = _linear("relu")
linear_elu = _linear("elu")
linear_silu = _linear("silu")
linear_sigmoid = _linear("sigmoid")
linear_gelu = _linear("gelu")
linear_softplus = _linear("softplus")
layernorm_tanh = _layernorm("tanh")
layernorm_relu = _layernorm("relu")


def identity(in_features: int, width: int) -> nn.Module:
    """The ``identity`` op: passes its (merged) input through."""
    return nn.Identity()
