"""SearchSpace: sampling, encode/decode, completion, validation and constraints."""

from __future__ import annotations

import re

import networkx as nx
import numpy as np
import pytest

from autometa.errors import GraphValidationError, SpaceValidationError
from autometa.graph import graph_equal, validate_graph
from autometa.space import Boolean, Categorical, Integer, load_space, shipped_spaces

SHIPPED = sorted(shipped_spaces().values())


@pytest.fixture(scope="module")
def dag():
    return load_space(shipped_spaces()["dag_cell"])


@pytest.fixture(scope="module")
def towers():
    return load_space(shipped_spaces()["explicit_two_tower"])


def _chain(**layer):
    layer = {"width": {"choice": [8, 16]}, "activation": {"choice": ["tanh", "none"]}, **layer}
    return load_space(
        {"name": "c", "graph": {"kind": "chain", "layers": {"int": [1, 3]}, "layer": layer}}
    )


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_space_samples_validate_and_round_trip(path):
    space = load_space(path)
    hp_names = set(space.to_dict()["hyperparameters"])
    for seed in range(200):
        graph = space.sample(seed)
        space.validate(graph)
        values = space.encode(graph)
        assert graph_equal(space.decode(values), graph), (seed, values)
        assert graph.graph["space"] == space.name
        hyper = graph.graph["hyperparameters"]
        assert set(hyper) == hp_names
        assert all(type(v) in (int, float, bool, str) for v in hyper.values())
        for _, attrs in graph.nodes(data=True):
            assert all(type(v) in (int, bool, str, type(None)) for v in attrs.values())


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_domain_value_decodes_to_a_valid_graph(path):
    """Strategies mutate dimensions independently: no combination may break a graph."""
    space = load_space(path)
    rng = np.random.default_rng(0)
    for _ in range(200):
        values = {dim.name: dim.sample(rng) for dim in space.dimensions}
        graph = space.decode(values)
        validate_graph(graph)
        assert graph_equal(space.decode(space.encode(graph)), graph)


def test_sampling_is_seeded(dag):
    assert graph_equal(dag.sample(7), dag.sample(7))
    assert graph_equal(dag.sample(np.random.default_rng(7)), dag.sample(7))
    assert dag.sample_values(3) == dag.sample_values(np.random.default_rng(3))
    hashes = {tuple(sorted(dag.sample_values(s).items())) for s in range(20)}
    assert len(hashes) == 20


def test_dag_dimensions_and_conditions(dag):
    dims = {d.name: d for d in dag.dimensions}
    assert list(dims)[:3] == ["nodes", "n0.op", "n0.width"]
    assert "n0.inputs" not in dims and "n0.merge" not in dims  # n0 can only read the input
    assert dims["nodes"] == Integer("nodes", 2, 5)
    assert dims["n1.op"].condition is None  # every candidate has at least 2 nodes
    assert dims["n4.op"].condition == (("nodes", ">=", 5),)
    assert dims["n2.inputs"] == Categorical(
        "n2.inputs",
        ["input", "n0", "n1", "input+n0", "input+n1", "n0+n1"],
        condition=(("nodes", ">=", 3),),
    )
    assert dims["n1.merge"].condition == (("n1.inputs", "in", ("input+n0",)),)
    assert dims["hp.fast_lr"].log and list(dims)[-2:] == ["hp.fast_lr", "hp.inner_steps"]
    positions = {name: i for i, name in enumerate(dims)}
    for dim in dag.dimensions:  # conditions only look back
        for name, _, _ in dim.condition or ():
            assert positions[name] < positions[dim.name]


def test_dag_graph_shape(dag):
    for seed in range(50):
        graph = dag.sample(seed)
        hidden = [n for n in graph if n not in ("input", "output")]
        assert hidden == [f"n{i}" for i in range(len(hidden))] and 2 <= len(hidden) <= 5
        for i, node in enumerate(hidden):
            preds = list(graph.predecessors(node))
            assert 1 <= len(preds) <= 2
            assert all(p == "input" or int(p[1:]) < i for p in preds)
            if len(preds) == 1:
                assert graph.nodes[node]["merge"] == "sum"
        sinks = {
            n for n in hidden if graph.out_degree(n) == 0 or graph.succ[n].keys() == {"output"}
        }
        assert set(graph.predecessors("output")) == sinks
        orders = sorted(graph.edges[u, "output"]["order"] for u in graph.predecessors("output"))
        assert orders == list(range(len(sinks)))


def test_decode_fills_a_graph_from_values(dag):
    values = {"nodes": 3, "n0.op": "linear", "n0.width": 32, "n1.op": "linear_tanh",
              "n1.width": 64, "n1.inputs": "n0", "n2.op": "linear_relu", "n2.width": 128,
              "n2.inputs": "input+n1", "n2.merge": "concat", "hp.fast_lr": 0.1,
              "hp.inner_steps": 2, "n4.op": "ignored: inactive"}  # fmt: skip
    graph = dag.decode(values)
    assert list(graph.nodes) == ["input", "n0", "n1", "n2", "output"]
    assert graph.nodes["n2"] == {"op": "linear_relu", "width": 128, "merge": "concat",
                                 "residual": False}  # fmt: skip
    assert [(u, v, d["order"]) for u, v, d in graph.edges(data=True)] == [
        ("input", "n0", 0), ("input", "n2", 0), ("n0", "n1", 0), ("n1", "n2", 1),
        ("n2", "output", 0),
    ]  # fmt: skip
    assert graph.graph == {"hyperparameters": {"fast_lr": 0.1, "inner_steps": 2},
                           "space": "dag-cell"}  # fmt: skip
    assert dag.encode(graph) == {k: v for k, v in values.items() if k != "n4.op"}


def test_decode_names_a_missing_or_bad_value(dag):
    values = dag.sample_values(0)
    del values["n1.op"]
    with pytest.raises(ValueError, match=re.escape(
        "space 'dag-cell': no value for the active dimension 'n1.op' (domain {linear, "
        "linear_tanh, linear_relu, linear_elu, linear_silu})"
    ) + "$"):  # fmt: skip
        dag.decode(values)
    values = {**dag.sample_values(0), "n0.width": 48}
    with pytest.raises(ValueError, match=re.escape(
        "space 'dag-cell': 48 is not in the domain of 'n0.width': {32, 64, 128}") + "$"
    ):  # fmt: skip
        dag.decode(values)


def test_complete_fills_inactive_dimensions(dag):
    values = {**dag.sample_values(1), "nodes": 2}
    values.pop("n4.op", None)
    full = dag.complete({**values, "n3.width": 64, "n2.width": 999})
    assert list(full) == [d.name for d in dag.dimensions]
    assert full["n4.op"] == "linear" and full["n3.width"] == 64 and full["n2.width"] == 32
    assert graph_equal(dag.decode(full), dag.decode(values))


def test_encode_rejects_graphs_outside_the_space(dag):
    graph = dag.decode({**dag.sample_values(0), "nodes": 2})
    other = graph.copy()
    other.nodes["n1"]["op"] = "identity"
    with pytest.raises(GraphValidationError, match=re.escape(
        "graph is not in space 'dag-cell': n1.op = 'identity' is outside {linear, "
        "linear_tanh, linear_relu, linear_elu, linear_silu}") + "$"):  # fmt: skip
        dag.encode(other)
    other = graph.copy()
    other.add_node("extra", op="linear", width=8, merge="sum", residual=False)
    with pytest.raises(GraphValidationError, match=r"unknown hidden nodes \['extra'\]"):
        dag.encode(other)
    other = graph.copy()
    other.add_edge("n0", "output", order=9)
    if graph.has_edge("n0", "output"):
        other.remove_edge("n0", "output")
    with pytest.raises(GraphValidationError, match=r"^graph is not in space 'dag-cell': its "):
        dag.encode(other)
    other = graph.copy()
    other.graph = {"hyperparameters": {"fast_lr": 0.1}}
    with pytest.raises(GraphValidationError, match=re.escape(
        "graph is not in space 'dag-cell': it has no value for 'hp.inner_steps'") + "$"
    ):  # fmt: skip
        dag.encode(other)
    with pytest.raises(GraphValidationError, match=r"^expected a networkx.DiGraph, got dict$"):
        dag.encode({})


def test_chain_layers_map_activations_to_ops():
    space = _chain(residual={"bool": {}})
    dims = {d.name: d for d in space.dimensions}
    assert dims["l0.residual"] == Boolean("l0.residual")
    assert dims["l2.residual"] == Boolean("l2.residual", condition=(("layers", ">=", 3),))
    graph = space.decode({"layers": 2, "l0.width": 8, "l0.activation": "none",
                          "l0.residual": True, "l1.width": 16, "l1.activation": "tanh",
                          "l1.residual": False})  # fmt: skip
    assert list(nx.topological_sort(graph)) == ["input", "l0", "l1", "output"]
    assert graph.nodes["l0"] == {"op": "linear", "width": 8, "merge": "sum", "residual": True}
    assert graph.nodes["l1"]["op"] == "linear_tanh"
    assert space.encode(graph)["l0.activation"] == "none"


def test_fixed_fields_are_constants_not_dimensions():
    node = {"op": "linear_tanh", "width": {"choice": [64]}, "inputs": {"max": 1}}
    space = load_space({"name": "fixed", "graph": {"kind": "dag", "nodes": 2, "node": node}})
    assert [d.name for d in space.dimensions] == ["n1.inputs"]
    assert space.decode({"n1.inputs": "n0"}).nodes["n1"]["width"] == 64


def test_explicit_template(towers):
    dims = {d.name: d for d in towers.dimensions}
    assert dims["tower_a.width"].condition == (
        ("tower_a.op", "in", ("linear_tanh", "linear_relu")),
    )
    assert dims["tower_a.inputs"].default == "trunk"
    base = towers.complete(towers.sample_values(0))
    graph = towers.decode({**base, "tower_a.op": "identity", "tower_a.inputs": "input",
                           "tower_b.inputs": "tower_a"})  # fmt: skip
    assert graph.nodes["tower_a"]["width"] is None
    # trunk is read by no tower, so it feeds the head; tower_a is listed in graph.output.
    assert list(graph.predecessors("output")) == ["trunk", "tower_a", "tower_b"]
    assert [graph.edges[u, "output"]["order"] for u in ("trunk", "tower_a", "tower_b")] == [
        0, 1, 2,
    ]  # fmt: skip
    validate_graph(graph)


def test_explicit_fixed_inputs_keep_their_order():
    space = load_space({"name": "order", "graph": {"kind": "explicit", "nodes": {
        "a": {"op": "linear", "width": 4, "inputs": ["input"]},
        "b": {"op": "linear", "width": 4, "inputs": ["input"]},
        "c": {"op": {"choice": ["linear", "identity"]}, "width": 4, "inputs": ["b", "a"],
              "merge": "concat"}}}})  # fmt: skip
    graph = space.sample(0)
    assert [graph.edges[u, "c"]["order"] for u in ("b", "a")] == [0, 1]
    assert graph_equal(space.decode(space.encode(graph)), graph)


def test_constraints_are_met_by_samples_and_checked_by_validate():
    spec = {"name": "bounded", "graph": {"kind": "chain", "layers": {"int": [1, 3]},
            "layer": {"width": {"choice": [16, 256]}, "activation": "tanh"}},
            "constraints": {"max_params": 5000, "min_macs": 100}}  # fmt: skip
    space = load_space(spec)
    for seed in range(30):
        graph = space.sample(seed)
        assert space.violations(graph) == []
        space.validate(graph)
    big = space.decode({"layers": 2, "l0.width": 256, "l1.width": 256})
    assert space.violations(big) == ["67076 params is above max_params=5000"]
    with pytest.raises(GraphValidationError, match=re.escape(
        "candidate breaks the constraints of space 'bounded' (counted for obs_dim=2, act_dim=2, "
        "continuous actions): 67076 params is above max_params=5000") + "$"):  # fmt: skip
        space.validate(big)


def test_unsatisfiable_constraints_give_a_clear_error(tmp_path):
    path = tmp_path / "tight.yaml"
    path.write_text(
        "name: tight\ngraph:\n  kind: chain\n  layers: 1\n"
        "  layer: {width: {choice: [64, 128]}, activation: relu}\n"
        "constraints:\n  max_params: 10\n"
    )
    space = load_space(path)
    with pytest.raises(SpaceValidationError) as info:
        space.sample(0)
    assert str(info.value) == (
        "tight.yaml: 1 problem in the search space\n"
        "tight.yaml:6:1: constraints: expected constraints that some candidate meets, got "
        "{'max_params': 10} (mapping) [unsatisfiable]; hint: none of 1000 samples met them "
        "(seen: params 324 to 644); the constraints look unsatisfiable"
    )


def test_structure_errors_come_from_the_graph_package(dag):
    graph = dag.sample(0)
    graph.add_edge("output", "n0", order=1)
    with pytest.raises(GraphValidationError, match=r"^invalid candidate graph"):
        dag.validate(graph)


def test_encode_checks_fixed_hyperparameters():
    space = load_space(shipped_spaces()["tiny"])
    graph = space.sample(0)
    graph.graph["hyperparameters"]["inner_steps"] = 2
    with pytest.raises(GraphValidationError, match=re.escape(
        "graph is not in space 'tiny': hyperparameter 'inner_steps' is 2, the space fixes 1"
    ) + "$"):  # fmt: skip
        space.encode(graph)
