"""The op registry: what a graph node's ``op`` name means, without importing torch.

Each op declares its output width, its parameter count and its MACs as functions of its
input and node widths, and names its torch module factory; the factory is imported only
when a policy is built (:meth:`OpSpec.build`). Reading, checking, sampling and counting a
space therefore need no torch. Users add ops from Python with :func:`register_op`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autometa.registry import Registry

__all__ = ["ACTIVATION_NAMES", "OPS", "OpSpec", "register_op", "get_op"]


def _dense_macs(i: int, o: int) -> int:
    return i * o


@dataclass(frozen=True)
class OpSpec:
    """How to build one op and what it costs.

    Attributes:
        name: the name a space file uses.
        make: ``make(in_features, width) -> nn.Module`` mapping ``(..., in)`` to ``(..., out)``,
            or a ``"package.module:attr"`` string naming it (imported by :meth:`build`).
        has_width: False for width-preserving ops (``identity``): their output width is
            their input width and a node of that op carries ``width=None``.
        macs: multiply-accumulates of one forward on one observation, from ``(in, out)``.
        description: one line for ``autometa validate`` and the docs.
        params: trainable scalars of the module, from ``(in, out)``; None when not declared
            (the count then builds the module).
    """

    name: str
    make: Callable[[int, int], Any] | str
    has_width: bool = True
    macs: Callable[[int, int], int] = _dense_macs
    description: str = ""
    params: Callable[[int, int], int] | None = None

    def out_width(self, in_features: int, width: int | None) -> int:
        """Output width of this op for a given input width and node width."""
        return int(width) if self.has_width else int(in_features)

    def build(self, in_features: int, width: int) -> Any:
        """The op's torch module for these widths (a named factory is imported now)."""
        make = self.make
        if isinstance(make, str):
            module_name, _, attr = make.partition(":")
            make = getattr(importlib.import_module(module_name), attr)
        return make(in_features, width)

    def param_count(self, in_features: int, width: int) -> int:
        """Trainable scalars of the op's module: declared, or counted on a built module."""
        if self.params is not None:
            return int(self.params(in_features, width))
        return sum(p.numel() for p in self.build(in_features, width).parameters())


OPS: Registry[OpSpec] = Registry("op")
"""Every node op by name (``linear_tanh``, ``identity``, ...); extend it with ``register_op``."""


def register_op(
    name: str,
    make: Callable[[int, int], Any] | str,
    *,
    has_width: bool = True,
    macs: Callable[[int, int], int] | None = None,
    params: Callable[[int, int], int] | None = None,
    description: str = "",
    overwrite: bool = False,
) -> OpSpec:
    """Register a new op under ``name`` so space files can use it.

    ``make(in_features, width)`` (or the ``"module:attr"`` it names) must return a module
    whose ``forward`` is functional (no in-place updates, no buffers changed), so that
    ``torch.func`` can batch it. ``params(in_features, width)``, when given, must equal the
    module's parameter count; it lets spaces be counted without building modules.
    """
    spec = OpSpec(
        name=name,
        make=make,
        has_width=has_width,
        macs=macs if macs is not None else _dense_macs,
        description=description,
        params=params,
    )
    OPS.register(name, spec, overwrite=overwrite)
    return spec


def get_op(name: str) -> OpSpec:
    """The :class:`OpSpec` registered as ``name`` (``UnknownNameError`` if none)."""
    return OPS.get(name)


ACTIVATION_NAMES = ("tanh", "relu", "elu", "silu", "sigmoid", "gelu", "softplus")
"""The nonlinearities of the ``linear_*`` ops (``autometa.ops._modules.ACTIVATIONS``)."""

_MODULES = "autometa.ops._modules"


def _dense(i: int, o: int) -> int:
    return i * o + o  # weight and bias


def _dense_norm(i: int, o: int) -> int:
    return i * o + o + 2 * o  # weight, bias, layer-norm scale and shift


register_op(
    "linear", f"{_MODULES}:linear", params=_dense, description="dense layer, no nonlinearity"
)
for _act in ACTIVATION_NAMES:
    register_op(
        f"linear_{_act}",
        f"{_MODULES}:linear_{_act}",
        params=_dense,
        description=f"dense layer followed by {_act}",
    )
for _act in ("tanh", "relu"):
    register_op(
        f"layernorm_{_act}",
        f"{_MODULES}:layernorm_{_act}",
        macs=lambda i, o: i * o + 2 * o,
        params=_dense_norm,
        description=f"dense layer, layer norm, then {_act}",
    )
register_op(
    "identity",
    f"{_MODULES}:identity",
    has_width=False,
    macs=lambda i, o: 0,
    params=lambda i, o: 0,
    description="passes its (merged) input through; output width = input width",
)
