"""Malformed space files: each gives one SpaceValidationError naming file, line and key."""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
import pytest
import yaml

from autometa.errors import SpaceValidationError
from autometa.ops import OPS
from autometa.space import SpaceError, load_space, shipped_spaces

INVALID = Path(__file__).parent / "invalid"
OPS_LIST = ", ".join(OPS.names())
ACTIVATIONS = ", ".join(["none", *(n[7:] for n in OPS.names() if n.startswith("linear_"))])

# One entry per fixture: the lines after the header, in order.
EXPECTED = {
    "bad_constraints.yaml": [
        (
            "bad_constraints.yaml:7:3: constraints: expected min_macs <= max_macs, got "
            "{'min_macs': 1000, 'max_macs': 10} (mapping) [bad_range]"
        ),
        (
            "bad_constraints.yaml:7:15: constraints.max_params: expected a non-negative "
            "integer, got -5 (int) [bad_constraint]"
        ),
        (
            "bad_constraints.yaml:10:3: constraints.max_param: expected one of the keys "
            "max_params, min_params, max_macs, min_macs, got 'max_param' (str) [unknown_key];"
            " hint: did you mean 'max_params'?"
        ),
    ],
    "bad_default.yaml": [
        (
            "bad_default.yaml:4:34: graph.layers.default: expected a value of the dimension, "
            "got 4 (int) [bad_default]"
        ),
        (
            "bad_default.yaml:6:40: graph.layer.width.default: expected a value of the "
            "dimension, got 48 (int) [bad_default]"
        ),
    ],
    "bad_range.yaml": [
        (
            "bad_range.yaml:4:16: graph.nodes.int: expected [low, high] with low <= high, got"
            " [5, 2] (list) [bad_range]"
        ),
    ],
    "bad_syntax.json": [
        (
            "bad_syntax.json:1:44: expected valid JSON, got a syntax error: Expecting "
            "property name enclosed in double quotes [json_syntax]"
        ),
    ],
    "bad_value.json": [
        (
            "bad_value.json:3:62: graph.layer.width: expected a positive integer, {choice: "
            "[...]} of positive integers or {int: [lo, hi]}, got 0 (int) [bad_width]"
        ),
    ],
    "bad_width.yaml": [
        (
            "bad_width.yaml:7:12: graph.node.width: expected a positive integer, {choice: "
            "[...]} of positive integers or {int: [lo, hi]}, got 'big' (str) [bad_width]"
        ),
    ],
    "cycle.yaml": [
        (
            "cycle.yaml:8:15: graph.nodes.a.inputs: expected inputs that form no cycle, got a"
            " cycle a -> b -> c -> a [cycle]; hint: every node's possible inputs must come "
            "from earlier in the data flow"
        ),
    ],
    "duplicate_key.yaml": [
        (
            "duplicate_key.yaml:8:5: graph.layer.width: expected each key at most once, got "
            "'width' (str) [duplicate_key]; hint: a later value would silently win"
        ),
    ],
    "empty_choice.yaml": [
        (
            "empty_choice.yaml:7:21: graph.node.width.choice: expected a non-empty list of "
            "positive integers, got [] (list) [empty_choice]"
        ),
    ],
    "log_nonpositive.yaml": [
        (
            "log_nonpositive.yaml:7:20: hyperparameters.fast_lr.float: expected a range with "
            "low > 0 (log: true), got [0.0, 1.0] (list) [bad_log]"
        ),
    ],
    "min_gt_max.yaml": [
        (
            "min_gt_max.yaml:8:13: graph.node.inputs: expected min <= max, got {'min': 3, "
            "'max': 2} (mapping) [bad_range]"
        ),
    ],
    "missing_width.yaml": [
        (
            "missing_width.yaml:6:5: graph.node.width: expected a positive integer, {choice: "
            "[...]} of positive integers or {int: [lo, hi]} (op 'linear_relu' has a width), "
            "got nothing [missing_key]"
        ),
    ],
    "not_mapping.yaml": [
        (
            "not_mapping.yaml:1:1: expected a mapping with the keys name, description, graph,"
            " hyperparameters, constraints, io, baselines, got [{'name': 'a list'}, "
            "{'graph': 'is not a "
            "space'}] (list) [bad_type]"
        ),
    ],
    "reserved_name.yaml": [
        (
            "reserved_name.yaml:9:5: graph.nodes.output: expected a node name: letters, "
            "digits and _ (not input or output), got 'output' (str) [bad_name]"
        ),
    ],
    "too_many_subsets.yaml": [
        (
            "too_many_subsets.yaml:8:13: graph.node.inputs: expected at most 512 input "
            "subsets per node, got {'min': 1, 'max': 6} (mapping) [too_many_subsets]; hint: "
            "node n11 would have 2509 subsets; lower max or the node count"
        ),
    ],
    "unknown_activation.yaml": [
        (
            "unknown_activation.yaml:7:33: graph.layer.activation.choice[1]: expected an "
            "activation with a registered op linear_<activation> (or 'none'), got 'rleu' "
            "(str) [unknown_activation]; hint: did you mean 'relu'? valid: {activations}"
        ),
    ],
    "unknown_input.yaml": [
        (
            "unknown_input.yaml:12:32: graph.nodes.tower.inputs.choose[1]: expected the name "
            "of a node or 'input', got 'trunc' (str) [unknown_input]; hint: did you mean "
            "'trunk'?"
        ),
    ],
    "unknown_keys.yaml": [
        (
            "unknown_keys.yaml:8:5: graph.node.mrege: expected one of the keys op, width, "
            "inputs, merge, residual, got 'mrege' (str) [unknown_key]; hint: did you mean "
            "'merge'?"
        ),
        (
            "unknown_keys.yaml:9:1: hyperparams: expected one of the keys name, description, "
            "graph, hyperparameters, constraints, io, baselines, got 'hyperparams' (str) "
            "[unknown_key]; "
            "hint: did you mean 'hyperparameters'?"
        ),
    ],
    "unknown_kind.yaml": [
        (
            "unknown_kind.yaml:3:9: graph.kind: expected one of chain, dag, explicit, got "
            "'dga' (str) [unknown_kind]; hint: did you mean 'dag'?"
        ),
    ],
    "unknown_op.yaml": [
        (
            "unknown_op.yaml:6:32: graph.node.op.choice[1]: expected a registered op name, "
            "got 'linera' (str) [unknown_op]; hint: did you mean 'linear'? valid: {ops}"
        ),
    ],
    "width_for_identity.yaml": [
        (
            "width_for_identity.yaml:7:5: graph.node.width: expected no width (op 'identity' "
            "keeps the input width), got 32 (int) [width_not_allowed]; hint: remove the width"
            " key"
        ),
    ],
    "wrong_types.yaml": [
        (
            "wrong_types.yaml:1:7: name: expected a non-empty name: letters, digits, '.', '_'"
            " or '-', got '42 and more' (str) [bad_name]"
        ),
        (
            "wrong_types.yaml:2:14: description: expected a string, got ['not', 'a', "
            "'string'] (list) [bad_type]"
        ),
        (
            "wrong_types.yaml:5:17: graph.layers.int: expected [low, high], two integers, got"
            " [1, 2.5] (list) [bad_type]"
        ),
        (
            "wrong_types.yaml:7:12: graph.layer.width: expected a positive integer, {choice: "
            "[...]} of positive integers or {int: [lo, hi]}, got [32, 64] (list) [bad_type]; "
            "hint: write {choice: [...]} to choose among values"
        ),
        (
            "wrong_types.yaml:8:33: graph.layer.activation.choice[1]: expected an activation "
            "with a registered op linear_<activation> (or 'none'), got 3 (int) "
            "[unknown_activation]; hint: valid: {activations}"
        ),
        (
            "wrong_types.yaml:9:15: graph.layer.residual: expected true or false, {choice: "
            "[...]} of booleans or {bool: {}}, got 'maybe' (str) [bad_type]"
        ),
        "wrong_types.yaml:10:15: io.obs_dim: expected a positive integer, got 0 (int) [bad_type]",
    ],
    "yaml_syntax.yaml": [
        (
            "yaml_syntax.yaml:5:8: expected valid YAML, got a syntax error: expected ',' or "
            "']', but got ':' [yaml_syntax]"
        ),
    ],
}


def _lines(name: str) -> list[str]:
    return [
        line.replace("{ops}", OPS_LIST).replace("{activations}", ACTIVATIONS)
        for line in EXPECTED[name]
    ]


def test_every_fixture_has_an_expected_message():
    assert sorted(p.name for p in INVALID.iterdir()) == sorted(EXPECTED)
    assert len(EXPECTED) >= 10


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_invalid_file_gives_one_clear_error(name):
    lines = _lines(name)
    count = f"{len(lines)} problem" + ("s" if len(lines) > 1 else "")
    with pytest.raises(SpaceValidationError) as info:
        load_space(INVALID / name)
    assert str(info.value) == "\n".join([f"{name}: {count} in the search space", *lines])
    records = info.value.errors
    assert [str(r) for r in records] == lines
    assert all(isinstance(r, SpaceError) and r.file == name for r in records)


def test_error_records_carry_every_field():
    with pytest.raises(SpaceValidationError) as info:
        load_space(INVALID / "unknown_input.yaml")
    (record,) = info.value.errors
    assert (record.file, record.line, record.col) == ("unknown_input.yaml", 12, 32)
    assert record.path == ("graph", "nodes", "tower", "inputs", "choose", 1)
    assert (record.expected, record.got, record.code) == (
        "the name of a node or 'input'",
        "trunc",
        "unknown_input",
    )
    assert record.hint == "did you mean 'trunk'?"
    assert record.to_dict() == {
        "file": "unknown_input.yaml",
        "line": 12,
        "col": 32,
        "path": "graph.nodes.tower.inputs.choose[1]",
        "expected": "the name of a node or 'input'",
        "got": "'trunc'",
        "code": "unknown_input",
        "hint": "did you mean 'trunk'?",
    }


def test_the_file_is_shown_as_typed(tmp_path, monkeypatch):
    monkeypatch.chdir(INVALID)
    with pytest.raises(SpaceValidationError, match=r"^bad_range\.yaml: 1 problem"):
        load_space("bad_range.yaml")


def test_dict_errors_have_no_line():
    spec = {"name": "d", "graph": {"kind": "chain", "layers": 0, "layer": {"width": 8}}}
    with pytest.raises(SpaceValidationError) as info:
        load_space(spec)
    assert str(info.value) == "\n".join(
        [
            "<dict>: 2 problems in the search space",
            "<dict>: graph.layer.activation: expected an activation with a registered op "
            "linear_<activation> (or 'none') or {choice: [...]} of activations, got nothing "
            "[missing_key]",
            "<dict>: graph.layers: expected an integer from 1 to 64, {choice: [...]} of "
            "integers from 1 to 64 or {int: [lo, hi]}, got 0 (int) [bad_count]",
        ]
    )


def test_missing_file_is_a_space_error(tmp_path):
    with pytest.raises(SpaceValidationError) as info:
        load_space(tmp_path / "nope.yaml")
    assert str(info.value) == (
        "nope.yaml: 1 problem in the search space\n"
        "nope.yaml: expected a readable UTF-8 text file, got No such file or directory "
        "[read_error]"
    )


def test_binary_file_is_a_space_error(tmp_path):
    path = tmp_path / "blob.yaml"
    path.write_bytes(bytes([0xFF, 0xFE, 0x00, 0x81]))
    with pytest.raises(SpaceValidationError, match=r"^blob\.yaml: 1 problem in the search "):
        load_space(path)


def test_yaml_tags_are_never_executed(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['echo hacked']\ngraph: {}\n")
    with pytest.raises(SpaceValidationError) as info:
        load_space(path)
    assert [e.code for e in info.value.errors] == ["yaml_syntax"]
    assert "could not determine a constructor" in str(info.value)


def test_multiple_documents_are_refused(tmp_path):
    path = tmp_path / "two.yaml"
    path.write_text("name: a\n---\nname: b\n")
    with pytest.raises(SpaceValidationError) as info:
        load_space(path)
    assert str(info.value) == (
        "two.yaml: 1 problem in the search space\n"
        "two.yaml:2:1: expected valid YAML, got a syntax error: but found another document "
        "[yaml_syntax]"
    )


# ----------------------------------------------------------------------------- fuzzing

SHIPPED = sorted(shipped_spaces().values())
GARBAGE = [
    None,
    -1,
    0,
    2.5,
    "x",
    "",
    [],
    {},
    [1, "a"],
    {"choice": []},
    {"int": [3, 1]},
    {"float": "a"},
    True,
    {"choose": ["zz"]},
    "input",
    {"bool": 1},
    float("nan"),
    ["input", "input"],
    {"min": 2, "max": 9},
    10**9,
]


def _mutate(node, rng):
    """Replace, drop or add one entry somewhere in a nested spec."""
    if isinstance(node, dict) and node and rng.random() < 0.7:
        key = list(node)[rng.integers(len(node))]
        roll = rng.random()
        if roll < 0.15:
            del node[key]
        elif roll < 0.25:
            node[key + "x"] = node[key]
        elif roll < 0.6 or not isinstance(node[key], (dict, list)):
            node[key] = GARBAGE[rng.integers(len(GARBAGE))]
        else:
            _mutate(node[key], rng)
    elif isinstance(node, list) and node and rng.random() < 0.7:
        i = int(rng.integers(len(node)))
        if isinstance(node[i], (dict, list)) and rng.random() < 0.5:
            _mutate(node[i], rng)
        else:
            node[i] = GARBAGE[rng.integers(len(GARBAGE))]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_fuzzed_specs_raise_only_space_errors(path):
    rng = np.random.default_rng(0)
    base = yaml.safe_load(path.read_text())
    loaded = 0
    for _ in range(150):
        spec = yaml.safe_load(path.read_text())
        for _ in range(int(rng.integers(1, 4))):
            _mutate(spec, rng)
        try:
            space = load_space(spec)
        except SpaceValidationError as exc:
            assert str(exc).startswith("<dict>: ") and exc.errors
            continue
        loaded += 1
        graph = space.sample(int(rng.integers(100)))  # a space that loads must also work
        assert space.decode(space.encode(graph)).edges == graph.edges
    assert base and 0 < loaded < 150


def test_random_text_raises_only_space_errors(tmp_path):
    rng = np.random.default_rng(1)
    alphabet = list(string.printable) + list(":-[]{}&*!|>'\"%@`#,?")
    path = tmp_path / "noise.yaml"
    for _ in range(300):
        size = int(rng.integers(0, 80))
        path.write_text("".join(rng.choice(alphabet, size)))
        with pytest.raises(SpaceValidationError):
            load_space(path)
