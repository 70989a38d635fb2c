"""Loading spaces from YAML, JSON and dicts; the normalised spec, hash and summary."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
import yaml

from autometa.errors import SpaceValidationError
from autometa.graph import graph_equal
from autometa.ops import OPS, register_op
from autometa.space import Float, SearchSpace, load_space, shipped_spaces

SHIPPED = sorted(shipped_spaces().values())

DOCUMENTED_EXAMPLE = """\
name: dag-cell
description: DAG policies of 2-5 hidden nodes; each node picks an op, a width and its inputs.
graph:
  kind: dag
  nodes: {int: [2, 5]}
  node:
    op: {choice: [linear, linear_tanh, linear_relu, linear_elu, linear_silu]}
    width: {choice: [32, 64, 128]}
    inputs: {min: 1, max: 2}
    merge: {choice: [sum, concat]}
hyperparameters:
  fast_lr: {float: [0.01, 1.0], log: true}
  inner_steps: {int: [1, 3]}
constraints:
  max_params: 200000
"""


def test_the_documented_dag_example_loads(tmp_path):
    path = tmp_path / "dag.yaml"
    path.write_text(DOCUMENTED_EXAMPLE)
    space = load_space(path)
    assert (space.name, space.kind, space.source) == ("dag-cell", "dag", str(path))
    assert space.constraints == {"max_params": 200000}
    assert space.io == {"obs_dim": 2, "act_dim": 2, "discrete": False}
    assert space == load_space(shipped_spaces()["dag_cell"])


def test_shipped_spaces_are_the_documented_set():
    names = {p.name: load_space(p) for p in SHIPPED}
    assert sorted(names) == [
        "chain_mlp.yaml", "dag_cell.yaml", "explicit_two_tower.yaml", "tiny.yaml",
    ]  # fmt: skip
    assert [names[n].kind for n in sorted(names)] == ["chain", "dag", "explicit", "chain"]
    docs = (Path(__file__).parents[2] / "docs" / "spaces.md").read_text()
    for name in names:
        assert f"### `{Path(name).stem}`" in docs


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_normalised_spec_round_trips(path, tmp_path):
    space = load_space(path)
    spec = space.to_dict()
    assert json.loads(json.dumps(spec)) == spec
    again = load_space(spec)
    assert again == space and again.content_hash == space.content_hash
    assert again.dimensions == space.dimensions
    as_json = tmp_path / "space.json"
    as_json.write_text(json.dumps(yaml.safe_load(path.read_text()), indent=2))
    assert load_space(as_json) == space
    assert graph_equal(load_space(as_json).sample(3), space.sample(3))


def test_content_hash_follows_the_spec():
    spec = yaml.safe_load((shipped_spaces()["tiny"]).read_text())
    first = load_space(spec).content_hash
    assert len(first) == 64 and load_space(spec).content_hash == first
    spec["graph"]["layer"]["width"] = {"choice": [16, 64]}
    assert load_space(spec).content_hash != first


def test_json_errors_have_lines_when_the_text_allows(tmp_path):
    path = tmp_path / "s.json"
    path.write_text('{"name": "j",\n "graph": {"kind": "chain", "layers": 2,\n "layer": 3}}')
    with pytest.raises(Exception) as info:
        load_space(path)
    assert str(info.value).splitlines()[1] == (
        "s.json:3:11: graph.layer: expected a mapping of width, activation, residual, got 3 "
        "(int) [bad_type]"
    )


def test_scientific_floats_and_anchors(tmp_path):
    path = tmp_path / "sci.yaml"
    path.write_text(
        "name: sci\n"
        "graph:\n  kind: dag\n  nodes: 2\n"
        "  node: {op: linear, width: &w {choice: [8, 16]}, inputs: {max: 2}}\n"
        "hyperparameters:\n  fast_lr: {float: [1e-3, 5E-1], log: true}\n  wd: *w\n"
    )
    space = load_space(path)
    dims = {d.name: d for d in space.dimensions}
    assert dims["hp.fast_lr"] == Float("hp.fast_lr", 0.001, 0.5, log=True)
    assert dims["hp.wd"].choices == (8, 16)


def test_ops_registered_from_python_can_be_named():
    register_op("space_test_sin", lambda i, o: _Sin(i, o), overwrite=True)
    try:
        op = {"choice": ["space_test_sin", "identity"]}
        node = {"op": op, "width": {"choice": [8, 16]}}
        space = load_space({"name": "sin", "graph": {"kind": "dag", "nodes": 2, "node": node}})
        width = {d.name: d for d in space.dimensions}["n0.width"]
        assert width.condition == (("n0.op", "in", ("space_test_sin",)),)
        values = {
            "n0.op": "identity",
            "n1.op": "space_test_sin",
            "n1.width": 16,
            "n1.inputs": "n0",
        }
        graph = space.decode(values)
        assert (graph.nodes["n0"]["width"], graph.nodes["n1"]["width"]) == (None, 16)
        assert space.encode(graph) == values
    finally:
        OPS.unregister("space_test_sin")


class _Sin(torch.nn.Module):
    def __init__(self, i: int, o: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(i, o)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.linear(x))


def test_spaces_pickle_for_worker_processes():
    space = load_space(shipped_spaces()["explicit_two_tower"])
    clone = pickle.loads(pickle.dumps(space))
    assert isinstance(clone, SearchSpace) and clone == space
    assert graph_equal(clone.sample(5), space.sample(5))


def test_summary_of_the_tiny_space():
    space = load_space(shipped_spaces()["tiny"])
    assert space.summary() == "\n".join(
        [
            "space 'tiny': chain, 5 dimensions (2 conditional)",
            "MLP policies of 1-2 layers of 16 or 32 units with tanh or relu.",
            f"source: {shipped_spaces()['tiny']}",
            "dimensions:",
            "  layers         int [1, 2]",
            "  l0.activation  choice {tanh, relu}",
            "  l0.width       choice {16, 32}",
            "  l1.activation  choice {tanh, relu}  if layers >= 2",
            "  l1.width       choice {16, 32}  if layers >= 2",
            "fixed hyperparameters: fast_lr=0.1, inner_steps=1",
            "size: 20 architectures",
            "constraints: none",
        ]
    )


def test_summary_counts_conditional_sizes():
    text = load_space(shipped_spaces()["dag_cell"]).summary()
    # per node: 5 ops x 3 widths x (single inputs + 2 merges x pairs); nodes n0..n{K-1}
    per = [15 * (1 + 2 * 0), 15 * (2 + 2 * 1), 15 * (3 + 2 * 3), 15 * (4 + 2 * 6),
           15 * (5 + 2 * 10)]  # fmt: skip
    total = sum(_prod(per[:k]) for k in range(2, 6))
    assert f"size: about {total:.2e} architectures x continuous hyperparameters" in text
    assert "  n4.op           choice {linear, linear_tanh, linear_relu, linear_elu, " in text
    assert text.endswith(
        "constraints: params <= 200000 (counted with the policy head for obs_dim=2, "
        "act_dim=2, continuous actions)"
    )


def _prod(values):
    out = 1
    for v in values:
        out *= v
    return out


def test_the_documented_error_example_is_what_users_see(tmp_path, monkeypatch):
    docs = (Path(__file__).parents[2] / "docs" / "spaces.md").read_text()
    block = docs.split("## Errors", 1)[1].split("```text\n", 1)[1].split("\n```", 1)[0]
    (tmp_path / "dag.yaml").write_text(
        "name: dag\ngraph:\n  kind: dag\n  nodes: 3\n  node:\n    op: linear_tanh\n"
        "    width: big\n    inputs: {max: 2}\n    mrege: sum\n"
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpaceValidationError) as info:
        load_space("dag.yaml")
    assert str(info.value) == block
