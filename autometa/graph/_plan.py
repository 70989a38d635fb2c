"""A graph's plan and its size: the steps a policy runs, its parameters and its MACs.

Everything here is computed from the graph and each op's declared widths and costs, without
torch, so that reading and checking a space (``autometa validate``) never builds a module.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from autometa.graph._validate import INPUT, OUTPUT, ordered_inputs, resolve_widths, validate_graph
from autometa.ops import OPS

__all__ = ["PlanStep", "compile_plan", "count_macs", "count_params"]


@dataclass(frozen=True)
class PlanStep:
    """One node of the compiled plan: which earlier values to merge and what to apply.

    Attributes:
        node: the graph node name.
        inputs: indices into the list of values computed so far (0 is the observation).
        merge: ``"sum"`` or ``"concat"`` (a single input is passed through unmerged).
        pads: for ``sum``, how many zeros to append to each input to reach ``in_width``.
        in_width: width after merging.
        out_width: width of the op's output.
        residual: add the merged input (zero-padded or truncated to ``out_width``).
    """

    node: str
    inputs: tuple[int, ...]
    merge: str
    pads: tuple[int, ...]
    in_width: int
    out_width: int
    residual: bool


def compile_plan(graph: nx.DiGraph, obs_dim: int) -> tuple[list[PlanStep], int]:
    """Topologically sort the hidden nodes into steps; return them and the feature width.

    The last value of the plan (the ``output`` node's concat) feeds the policy head.
    """
    validate_graph(graph)
    widths = resolve_widths(graph, obs_dim)
    index = {INPUT: 0}
    steps: list[PlanStep] = []
    order = [n for n in nx.lexicographical_topological_sort(graph, key=str) if n != INPUT]
    for node in order:
        attrs = graph.nodes[node]
        preds = ordered_inputs(graph, node)
        merge = "concat" if node == OUTPUT else attrs.get("merge", "sum")
        in_width, out_width = widths[node]
        pads = tuple(in_width - widths[u][1] for u in preds) if merge == "sum" else ()
        steps.append(
            PlanStep(
                node=node,
                inputs=tuple(index[u] for u in preds),
                merge=merge,
                pads=pads,
                in_width=in_width,
                out_width=out_width,
                residual=bool(attrs.get("residual", False)) and node != OUTPUT,
            )
        )
        index[node] = len(steps)
    return steps, widths[OUTPUT][1]


def count_params(graph: nx.DiGraph, obs_dim: int, act_dim: int, discrete: bool = False) -> int:
    """Trainable scalars of the policy ``graph`` builds: its ops, the head and the log-std.

    Each op's count is its declared ``params`` (an op registered without one is built once
    to be counted); the head is a dense layer from the features to the actions, and a
    Gaussian policy (``discrete=False``) adds one log-std per action.
    """
    steps, feature_dim = compile_plan(graph, obs_dim)
    total = feature_dim * act_dim + act_dim + (0 if discrete else act_dim)
    for step in steps:
        if step.node != OUTPUT:
            spec = OPS.get(graph.nodes[step.node]["op"])
            total += spec.param_count(step.in_width, step.out_width)
    return int(total)


def plan_macs(ops: dict[str, str], steps: list[PlanStep], feature_dim: int, act_dim: int) -> int:
    """Multiply-accumulates of one forward of a compiled plan (``ops``: node -> op name)."""
    total = feature_dim * act_dim
    for step in steps:
        if step.node != OUTPUT:
            total += OPS.get(ops[step.node]).macs(step.in_width, step.out_width)
    return int(total)


def count_macs(graph: nx.DiGraph, obs_dim: int, act_dim: int, discrete: bool = False) -> int:
    """Multiply-accumulates per single-observation forward of the policy ``graph`` builds."""
    steps, feature_dim = compile_plan(graph, obs_dim)
    ops = {n: a["op"] for n, a in graph.nodes(data=True) if n not in (INPUT, OUTPUT)}
    return plan_macs(ops, steps, feature_dim, act_dim)
