"""``kind: chain`` spaces: a stack of 1..N dense layers, each with its own choices.

Layer ``i`` is node ``l{i}``; its op is ``linear`` for the activation ``none`` and
``linear_<activation>`` otherwise (that op must be registered).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autometa.ops import OPS
from autometa.space._body import Body, NodeTemplate
from autometa.space._common import RESIDUAL, WIDTH, parse_count
from autometa.space._errors import NOTHING, Problems
from autometa.space._fields import Element, Field, check_keys, expect_mapping, parse_field

__all__ = ["parse_chain", "activation_op"]

_GRAPH_KEYS = ("kind", "layers", "layer")
_LAYER_KEYS = ("width", "activation", "residual")
_LINEAR = ("none", "identity", "linear")


def activation_op(activation: str) -> str:
    """The op name of a chain layer with ``activation`` (``none`` -> ``linear``)."""
    return "linear" if activation in _LINEAR else f"linear_{activation}"


def _activations() -> list[str]:
    return ["none", *(n[len("linear_") :] for n in OPS.names() if n.startswith("linear_"))]


def _is_activation(value: Any) -> bool:
    return isinstance(value, str) and (value in _LINEAR or activation_op(value) in OPS)


ACTIVATION = Element(
    "an activation with a registered op linear_<activation> (or 'none')",
    "activations",
    _is_activation,
    "unknown_activation",
    names=_activations,
)


def parse_chain(problems: Problems, graph: Mapping[str, Any]) -> Body | None:
    """Parse the ``graph`` section of a chain space (problems are recorded, not raised)."""
    check_keys(problems, graph, ("graph",), _GRAPH_KEYS)
    count = parse_count(problems, graph, "layers")
    layer = graph.get("layer")
    if layer is None:
        problems.add(
            ("graph", "layer"), "a mapping of width, activation, residual", NOTHING, "missing_key"
        )
        return None
    if not expect_mapping(
        problems, layer, ("graph", "layer"), "a mapping of width, activation, residual"
    ):
        return None
    path = ("graph", "layer")
    check_keys(
        problems,
        layer,
        path,
        _LAYER_KEYS,
        ("width", "activation"),
        required_what={"width": WIDTH.expected(), "activation": ACTIVATION.expected()},
    )
    width = activation = None
    if "width" in layer:
        width = parse_field(problems, layer["width"], (*path, "width"), WIDTH)
    if "activation" in layer:
        activation = parse_field(problems, layer["activation"], (*path, "activation"), ACTIVATION)
    residual = parse_field(problems, layer.get("residual", False), (*path, "residual"), RESIDUAL)
    if count is None or width is None or activation is None or residual is None:
        return None
    op_map = tuple((a, activation_op(a)) for a in activation.options())
    always = min(count.options())  # nodes below this index exist in every candidate
    templates = []
    for i in range(max(count.options())):
        templates.append(
            NodeTemplate(
                name=f"l{i}",
                op=activation,
                width=width,
                inputs=Field("const", value="input" if i == 0 else f"l{i - 1}"),
                merge=Field("const", value="sum"),
                residual=residual,
                gate=(("layers", ">=", i + 1),) if i >= always else None,
                op_key="activation",
                op_map=op_map,
                width_ops=tuple(activation.options()),
            )
        )
    spec = {
        "kind": "chain",
        "layers": count.to_spec(),
        "layer": {
            "width": width.to_spec(),
            "activation": activation.to_spec(),
            "residual": residual.to_spec(),
        },
    }
    return Body("chain", templates, "layers", count, (), spec)
