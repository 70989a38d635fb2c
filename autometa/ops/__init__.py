"""The op registry: what a graph node's ``op`` name means as a torch module.

It sits below ``autometa.graph``, ``autometa.space`` and ``autometa.policy``, which all read
it (validation needs an op's name and whether it has a width; the builder needs its module).
"""

from autometa.ops._registry import OPS, OpSpec, get_op, register_op

__all__ = ["OPS", "OpSpec", "get_op", "register_op"]
