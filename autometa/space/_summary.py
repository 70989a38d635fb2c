"""The text of ``SearchSpace.summary()`` and the count of distinct candidates."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from autometa.space.dims import Categorical, Dimension

if TYPE_CHECKING:
    from autometa.space.space import SearchSpace

__all__ = ["count_assignments", "summarise"]

_SHOWN = 6


def _group_count(dims: Sequence[Dimension], gates: dict[str, Any], referenced: set[str]) -> float:
    """Assignments of one group's dims, in one pass over them (no recursion per dim).

    Only the values of ``referenced`` dims (those a condition names) can change which later
    dims are active, so the count is kept per distinct assignment of those.
    """
    states: dict[tuple, float] = {(): 1}  # referenced (name, value) pairs -> assignments
    for dim in dims:
        after: dict[tuple, float] = {}
        for state, count in states.items():
            values = {**gates, **dict(state)}
            if not dim.active(values):
                branches = [(state, count)]
            elif dim.name in referenced:
                branches = [((*state, (dim.name, v)), count) for v in dim.values()]
            else:
                branches = [(state, count * dim.cardinality)]
            for key, number in branches:
                after[key] = after.get(key, 0) + number
        states = after
    return sum(states.values())


def count_assignments(dims: Sequence[Dimension]) -> float:
    """Number of distinct active-value assignments (``math.inf`` with a float range).

    Dimensions named ``prefix.x`` form groups (one node, or ``hp``) that depend on each other
    only through undotted dims (``nodes``, ``layers``), which are enumerated.
    """
    gates = [d for d in dims if "." not in d.name]
    groups: dict[str, list[Dimension]] = {}
    for dim in dims:
        if "." in dim.name:
            groups.setdefault(dim.name.split(".", 1)[0], []).append(dim)
    referenced = {c[0] for d in dims for c in (d.condition or ())}
    total: float = 0
    for combo in itertools.product(*(g.values() for g in gates)):
        values = {g.name: v for g, v in zip(gates, combo)}
        count: float = 1
        for group in groups.values():
            count *= _group_count(group, values, referenced)
        total += count
    return total


def _fmt_values(values: Sequence[Any]) -> str:
    shown = ", ".join(str(v) for v in values[:_SHOWN])
    more = f", ... ({len(values)} in all)" if len(values) > _SHOWN else ""
    return "{" + shown + more + "}"


def _domain(dim: Dimension) -> str:
    if isinstance(dim, Categorical):
        return "choice " + _fmt_values(dim.choices)
    return {"Integer": "int ", "Float": "float ", "Boolean": "bool "}[type(dim).__name__] + (
        dim.domain()
    )


def _condition(dim: Dimension) -> str:
    if dim.condition is None:
        return ""
    parts = [
        f"{n} in {_fmt_values(r)}" if op == "in" else f"{n} {op} {r}" for n, op, r in dim.condition
    ]
    return "if " + " and ".join(parts)


def _size(count: float) -> str:
    """``1234``, or ``about 1.41e+1505`` for a big count (an int of any size: no float)."""
    if count == math.inf:
        return "infinite"
    count = int(count)
    if count < 10**6:
        return f"{count}"
    if count < 10**300:
        return f"about {float(count):.2e}"
    exponent = int(math.log10(count))
    exponent += (10 ** (exponent + 1) <= count) - (10**exponent > count)  # log10 may round
    mantissa = round(count / 10**exponent, 2)
    if mantissa >= 10:
        mantissa, exponent = mantissa / 10, exponent + 1
    return f"about {mantissa:.2f}e+{exponent:02d}"


def _constraints(constraints: Mapping[str, int], io: Mapping[str, Any]) -> str:
    if not constraints:
        return "constraints: none"
    parts = [
        f"{k[4:]} {'<=' if k.startswith('max') else '>='} {v}" for k, v in constraints.items()
    ]
    actions = "discrete" if io["discrete"] else "continuous"
    return (
        f"constraints: {', '.join(parts)} (counted with the policy head for "
        f"obs_dim={io['obs_dim']}, act_dim={io['act_dim']}, {actions} actions)"
    )


def summarise(space: SearchSpace) -> str:
    """Describe ``space`` in a few lines: what it is, each dimension, its size, constraints."""
    dims = space.dimensions
    conditional = sum(d.condition is not None for d in dims)
    lines = [
        f"space {space.name!r}: {space.kind}, {len(dims)} dimensions ({conditional} conditional)"
    ]
    if space.description:
        lines.append(space.description.strip())
    if space.source:
        lines.append(f"source: {space.source}")
    lines.append("dimensions:")
    width = max((len(d.name) for d in dims), default=0)
    for dim in dims:
        line = f"  {dim.name:<{width}}  {_domain(dim)}"
        cond = _condition(dim)
        lines.append(f"{line}  {cond}" if cond else line)
    if not dims:
        lines.append("  (none: the space holds a single candidate)")
    fixed = {
        k: v for k, v in space.to_dict()["hyperparameters"].items() if not isinstance(v, dict)
    }
    if fixed:
        lines.append("fixed hyperparameters: " + ", ".join(f"{k}={v}" for k, v in fixed.items()))
    arch = count_assignments([d for d in dims if not d.name.startswith("hp.")])
    hyper = count_assignments([d for d in dims if d.name.startswith("hp.")])
    size = f"size: {_size(arch)} architectures"
    if hyper == math.inf:
        size += " x continuous hyperparameters"
    elif hyper > 1:
        size += f" x {_size(hyper)} hyperparameter settings"
    lines.append(size)
    lines.append(_constraints(space.constraints, space.io))
    return "\n".join(lines)
