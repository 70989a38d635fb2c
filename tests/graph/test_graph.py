import networkx as nx
import pytest
from helpers import chain_graph, diamond_graph

from autometa.errors import GraphValidationError
from autometa.graph import (
    canonical_hash,
    draw,
    from_graphml,
    from_json,
    graph_equal,
    resolve_widths,
    to_dot,
    to_graphml,
    to_json,
    validate_graph,
)


def test_valid_graphs_pass():
    validate_graph(chain_graph())
    validate_graph(diamond_graph())


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda g: g.add_edge("l1", "l0", order=1), "the graph has a cycle through"),
        (lambda g: g.add_node("dead", op="linear", width=3), "node 'dead' is not reachable"),
        (
            lambda g: g.nodes["l0"].update(op="linaer"),
            "unknown op 'linaer'. Did you mean 'linear'?",
        ),
        (lambda g: g.nodes["l0"].update(width=0), "needs a positive int width, got 0"),
        (
            lambda g: (
                g.nodes["l0"].update(width=None, op="identity")
                or g.nodes["l1"].update(width=3, op="identity")
            ),
            "op 'identity' keeps its input width",
        ),
        (lambda g: g.nodes["l0"].update(merge="max"), "merge must be one of ['sum', 'concat']"),
        (lambda g: g.remove_node("input"), "missing the 'input' node"),
        (lambda g: g.remove_edge("l1", "output"), "node 'output' has no inputs"),
    ],
)
def test_invalid_graphs_name_the_problem(mutate, message):
    graph = chain_graph()
    mutate(graph)
    with pytest.raises(GraphValidationError) as info:
        validate_graph(graph)
    assert message in str(info.value)


def test_widths_resolve_sum_pads_concat_adds():
    widths = resolve_widths(diamond_graph("concat"), input_width=3)
    assert widths["c"] == (13, 6) and widths["output"] == (11, 11)
    widths = resolve_widths(diamond_graph("sum"), input_width=3)
    assert widths["c"] == (8, 6)


def test_isomorphic_relabelings_share_a_hash():
    graph = diamond_graph()
    for mapping in ({"a": "x", "b": "y", "c": "z"}, {"a": "b", "b": "a"}):
        relabeled = nx.relabel_nodes(graph, mapping)
        assert canonical_hash(relabeled) == canonical_hash(graph)
    swapped = diamond_graph()
    swapped.edges["a", "c"]["order"], swapped.edges["b", "c"]["order"] = 1, 0
    assert canonical_hash(swapped) == canonical_hash(graph)


@pytest.mark.parametrize(
    "node, key, value",
    [
        ("a", "op", "linear_relu"),
        ("a", "width", 9),
        ("c", "merge", "sum"),
        ("c", "residual", True),
    ],
)
def test_any_op_or_width_change_changes_the_hash(node, key, value):
    graph, other = diamond_graph(), diamond_graph()
    other.nodes[node][key] = value
    assert canonical_hash(other) != canonical_hash(graph)


def test_hash_sees_hyperparameters_and_sharing():
    assert canonical_hash(chain_graph(hyper={"fast_lr": 0.1})) != canonical_hash(
        chain_graph(hyper={"fast_lr": 0.2})
    )
    shared = chain_graph(widths=(4,))
    shared.add_node("u", op="linear", width=2)
    shared.add_node("v", op="linear", width=2)
    shared.add_edge("l0", "u", order=0)
    shared.add_edge("l0", "v", order=0)
    shared.add_edge("u", "output", order=1)
    shared.add_edge("v", "output", order=2)
    copied = shared.copy()
    copied.add_node("l0b", **shared.nodes["l0"])
    copied.add_edge("input", "l0b", order=0)
    copied.remove_edge("l0", "v")
    copied.add_edge("l0b", "v", order=0)
    validate_graph(copied)
    assert canonical_hash(shared) != canonical_hash(copied)


def test_json_and_graphml_round_trips():
    graph = diamond_graph(residual=True)
    graph.add_node("i", op="identity", width=None, merge="sum", residual=False)
    graph.add_edge("a", "i", order=0)
    graph.add_edge("i", "output", order=2)
    assert graph_equal(from_json(to_json(graph)), graph)
    import json

    assert graph_equal(from_json(json.dumps(to_json(graph))), graph)
    assert graph_equal(from_graphml(to_graphml(graph)), graph)
    assert canonical_hash(from_graphml(to_graphml(graph))) == canonical_hash(graph)


def test_graph_equal_notices_differences():
    other = diamond_graph()
    other.nodes["a"]["width"] = 7
    assert not graph_equal(other, diamond_graph())


def test_dot_and_png(tmp_path):
    dot = to_dot(diamond_graph())
    assert dot.startswith('digraph "policy"') and "linear_elu (6)" in dot and "merge=concat" in dot
    assert dot.count("->") == 6
    png = draw(diamond_graph(), tmp_path / "g.png", title="diamond")
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert draw(diamond_graph(), tmp_path / "g.dot").read_text() == dot
