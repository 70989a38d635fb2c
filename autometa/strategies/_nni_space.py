"""Translation between a :class:`SearchSpace` and NNI's search-space and parameter formats.

Nested form (TPE, Random, Evolution, Anneal, GridSearch): a dimension whose condition's last
clause names a finite dimension, and whose other clauses are all part of that dimension's
own condition, is nested under it: the parent becomes ``{"_type": "choice", "_value":
[{"_name": value, <children active for that value>}, ...]}``. In the shipped spaces this
puts each node's dimensions under the node-count choice (``nodes``/``layers``), widths
under the op choice where only some ops have a width, and ``merge`` under the ``inputs``
choice where only multi-input choices merge; so the tuner models a dimension only where it
matters. NNI's nested formats (``nni.common.hpo_utils``) only handle one level of nesting
(``ParameterSpec.is_activated_in`` looks up the grandparent's choice, which is missing when
the grandparent is not chosen), so a dimension whose parent is itself nested moves up to the
top-level ancestor's branch: ``n2.merge`` sits next to ``n2.inputs`` in the ``nodes >= 3``
branches, with a value that is ignored when ``n2.inputs`` has one input. Any dimension that
cannot be nested that way stays at the top level with a value
that is ignored when inactive ("flat with defaults").

Flat form (GP, which takes numbers only): every dimension at the top level, categorical
choices as their indices.

Types: ``Categorical``/``Boolean`` -> ``choice``; ``Integer`` -> ``randint`` (``[low,
high + 1)``), or ``qloguniform`` with ``q=1`` (rounded, clipped) when ``log``; ``Float`` ->
``uniform`` / ``loguniform``. In the flat numeric form (GP) a plain integer range is
``quniform`` with ``q=1``: GPTuner's ``randint`` sampling fails under numpy 2.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autometa.space import SearchSpace
from autometa.space.dims import Boolean, Categorical, Dimension, Float, Integer, condition_holds

__all__ = ["to_nni", "from_nni"]


def _leaf(dim: Dimension, numeric: bool) -> dict[str, Any]:
    if isinstance(dim, (Categorical, Boolean)):
        values = dim.values()
        return {"_type": "choice", "_value": list(range(len(values))) if numeric else values}
    if isinstance(dim, Integer):
        if dim.log:
            return {"_type": "qloguniform", "_value": [dim.low, dim.high, 1]}
        if numeric:  # GPTuner's randint sampling breaks under numpy 2; quniform is equivalent
            return {"_type": "quniform", "_value": [dim.low, dim.high, 1]}
        return {"_type": "randint", "_value": [dim.low, dim.high + 1]}
    if isinstance(dim, Float):
        return {"_type": "loguniform" if dim.log else "uniform", "_value": [dim.low, dim.high]}
    raise TypeError(f"NNI cannot express dimension {dim.name!r} of type {type(dim).__name__}")


def _parents(space: SearchSpace) -> dict[str, str | None]:
    """Each dimension's nesting parent (None: top level), one level deep at most."""
    by_name = {d.name: d for d in space.dimensions}
    out: dict[str, str | None] = {}
    for dim in space.dimensions:
        out[dim.name] = None
        if not dim.condition:
            continue
        parent = by_name.get(dim.condition[-1][0])
        if parent is None or parent.cardinality == float("inf"):
            continue
        if set(dim.condition[:-1]) <= set(parent.condition or ()):
            out[dim.name] = parent.name
    for name, parent in out.items():  # NNI's nested formats handle one level only
        while parent is not None and out[parent] is not None:
            parent = out[parent]
        out[name] = parent
    return out


def to_nni(space: SearchSpace, *, nested: bool, numeric: bool = False) -> dict[str, Any]:
    """The NNI search space of ``space`` (see the module docstring for the two forms)."""
    dims = [d for d in space.dimensions if d.cardinality > 1]
    parents = _parents(space) if nested else {d.name: None for d in dims}
    children: dict[str | None, list[Dimension]] = {}
    for dim in dims:
        children.setdefault(parents.get(dim.name), []).append(dim)

    def spec(dim: Dimension) -> dict[str, Any]:
        kids = children.get(dim.name)
        if not kids:
            return _leaf(dim, numeric)
        options = []
        for value in dim.values():
            option: dict[str, Any] = {"_name": value}
            for kid in kids:
                clauses = tuple(c for c in kid.condition or () if c[0] == dim.name)
                if condition_holds(clauses, {dim.name: value}):
                    option[kid.name] = spec(kid)
            options.append(option)
        return {"_type": "choice", "_value": options}

    return {dim.name: spec(dim) for dim in children.get(None, [])}


def from_nni(
    space: SearchSpace, params: Mapping[str, Any], *, numeric: bool = False
) -> dict[str, Any]:
    """Decision values from NNI parameters (nested or flat); missing dims get defaults."""
    flat: dict[str, Any] = {}

    def walk(items: Mapping[str, Any]) -> None:
        for key, value in items.items():
            if isinstance(value, Mapping) and "_name" in value:
                flat[key] = value["_name"]
                walk({k: v for k, v in value.items() if k != "_name"})
            else:
                flat[key] = value

    walk(params)
    values: dict[str, Any] = {}
    for dim in space.dimensions:
        raw = flat.get(dim.name, dim.default)
        raw = raw.item() if hasattr(raw, "item") else raw
        if isinstance(dim, (Categorical, Boolean)) and numeric and dim.name in flat:
            raw = dim.values()[int(round(raw))]
        elif isinstance(dim, Integer):
            raw = min(max(int(round(raw)), dim.low), dim.high)
        elif isinstance(dim, Float):
            raw = min(max(float(raw), dim.low), dim.high)
        values[dim.name] = raw
    return values
