"""Graph -> torch policy: compile a candidate graph into a ``GraphPolicy`` module.

The op registry lives one layer down in :mod:`autometa.ops`; its public names are re-exported
here because a user who adds an op usually builds a policy next.
"""

from autometa.ops import OPS, OpSpec, get_op, register_op
from autometa.policy._builder import (
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
