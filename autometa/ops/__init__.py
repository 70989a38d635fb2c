"""The op registry: what a graph node's ``op`` name means, free of torch.

It sits below ``autometa.graph``, ``autometa.space`` and ``autometa.policy``, which all read
it (validation needs an op's name and whether it has a width, counting its declared parameter
count; the builder needs its module, built by :meth:`OpSpec.build`, which imports the op's
named factory: the built-in modules live in ``autometa.ops._modules``).
"""

from autometa.ops._registry import OPS, OpSpec, get_op, register_op

__all__ = ["OPS", "OpSpec", "get_op", "register_op"]
