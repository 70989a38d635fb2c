"""Graph -> torch policy: the op registry and the policy builder."""

from autometa.build.ops import OPS, OpSpec, get_op, register_op
from autometa.build.policy import (
    GraphPolicy,
    PlanStep,
    build_policy,
    compile_plan,
    count_macs,
    count_params,
    space_dims,
)

__all__ = [
    "OPS",
    "GraphPolicy",
    "OpSpec",
    "PlanStep",
    "build_policy",
    "compile_plan",
    "count_macs",
    "count_params",
    "get_op",
    "register_op",
    "space_dims",
]
