"""Graph -> torch policy: the op registry and the policy builder."""

from autometa.build.ops import OPS, OpSpec, get_op, register_op

__all__ = ["OPS", "OpSpec", "get_op", "register_op"]
