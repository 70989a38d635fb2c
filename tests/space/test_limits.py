"""Hostile space files: every one gives a SpaceValidationError, quickly and in bounded memory."""

from __future__ import annotations

import contextlib
import json
import signal
import sys

import pytest

from autometa.errors import SpaceValidationError
from autometa.space import (
    MAX_ALIAS_NODES,
    MAX_FILE_BYTES,
    MAX_FLOW_DEPTH,
    MAX_INT_DIGITS,
    Integer,
    load_space,
)

CHAIN = (
    "name: x\ngraph:\n  kind: chain\n  layers: 1\n  layer:\n    width: 16\n    activation: tanh\n"
)


@contextlib.contextmanager
def _within(seconds: float):
    """Fail (instead of hanging CI) when the block runs far longer than it should."""

    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _message(source, **kwargs) -> str:
    with pytest.raises(SpaceValidationError) as info:
        load_space(source, **kwargs)
    return str(info.value)


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------- values


def test_unhashable_input_default_is_a_bad_default(tmp_path):
    path = _write(
        tmp_path,
        "explicit.yaml",
        "name: x\ngraph:\n  kind: explicit\n  nodes:\n    a:\n      op: linear\n      width: 4\n"
        "      inputs: {choose: [input], default: [{p: 1}]}\n",
    )
    assert _message(path) == (
        "explicit.yaml: 1 problem in the search space\n"
        "explicit.yaml:8:42: graph.nodes.a.inputs.default: expected one of the allowed input "
        "lists, got [{'p': 1}] (list) [bad_default]; hint: allowed: input"
    )


def test_json_integer_of_thousands_of_digits(tmp_path):
    digits = "9" * 5000
    spec = '{"name": "x", "graph": {"kind": "chain", "layers": 1,\n "layer": {"width": %s}}}'
    path = _write(tmp_path, "huge.json", spec % digits)
    assert _message(path) == (
        "huge.json: 1 problem in the search space\n"
        f"huge.json:2:21: graph.layer.width: expected an integer of at most {MAX_INT_DIGITS} "
        "digits, got an integer of 5000 digits [int_too_long]"
    )


@pytest.mark.parametrize("literal", ["9" * 5000, "-" + "1" * 101, "0x" + "f" * 200])
def test_yaml_integer_of_too_many_digits(tmp_path, literal):
    path = _write(tmp_path, "huge.yaml", CHAIN.replace("width: 16", f"width: {literal}"))
    count = len(literal.lstrip("+-").removeprefix("0x"))
    assert _message(path) == (
        "huge.yaml: 1 problem in the search space\n"
        f"huge.yaml:6:12: graph.layer.width: expected an integer of at most {MAX_INT_DIGITS} "
        f"digits, got an integer of {count} digits [int_too_long]"
    )


def test_dict_integer_beyond_the_conversion_limit():
    huge = 10**5000
    layer = {"width": 8, "activation": "tanh"}
    spec = {"name": "x", "graph": {"kind": "chain", "layers": huge, "layer": layer}}
    assert _message(spec) == (
        "<dict>: 1 problem in the search space\n"
        "<dict>: graph.layers: expected an integer from 1 to 64, {choice: [...]} of integers "
        "from 1 to 64 or {int: [lo, hi]}, got an integer of about 5001 digits (int) [bad_count]"
    )


def test_integer_of_the_largest_allowed_size_loads(tmp_path):
    bound = "9" * MAX_INT_DIGITS
    path = _write(tmp_path, "big.yaml", CHAIN + f"constraints:\n  max_params: {bound}\n")
    assert load_space(path).constraints == {"max_params": int(bound)}


# ----------------------------------------------------------------------------- sizes


@pytest.mark.parametrize("where", ["width", "hyperparameter"])
def test_huge_int_range_stays_lazy(tmp_path, where):
    if where == "width":
        text = CHAIN.replace("width: 16", "width: {int: [1, 1000000000], default: 999999999}")
        name = "l0.width"
    else:
        text = CHAIN + "hyperparameters:\n  steps: {int: [1, 1000000000], default: 999999999}\n"
        name = "hp.steps"
    space = load_space(_write(tmp_path, "wide.yaml", text))
    dim = {d.name: d for d in space.dimensions}[name]
    assert dim == Integer(name, 1, 10**9, default=999999999)
    assert dim.cardinality == 10**9
    assert "1000000000" in space.summary()
    values = space.sample_values(0)
    assert 1 <= values[name] <= 10**9


def test_summary_of_5000_hyperparameters():
    hps = {f"h{i}": {"choice": [1, 2]} for i in range(5000)}
    spec = {
        "name": "many",
        "graph": {"kind": "chain", "layers": 1, "layer": {"width": 8, "activation": "tanh"}},
        "hyperparameters": hps,
    }
    lines = load_space(spec).summary().splitlines()
    assert lines[0] == "space 'many': chain, 5000 dimensions (0 conditional)"
    assert lines[-2] == "size: 1 architectures x about 1.41e+1505 hyperparameter settings"


def test_100000_value_choice_loads_in_linear_time():
    values = list(range(100_000))
    spec = {
        "name": "wide",
        "graph": {"kind": "chain", "layers": 1, "layer": {"width": 8, "activation": "tanh"}},
        "hyperparameters": {"h": {"choice": values, "default": 99_999}},
    }
    with _within(20):
        space = load_space(spec)
        assert space.dimensions[-1].default == 99_999
        spec["hyperparameters"]["h"]["choice"] = [*values, True, 1.0]
        assert _message(spec) == (
            "<dict>: 1 problem in the search space\n"
            "<dict>: hyperparameters.h.choice[100001]: expected distinct scalars, got 1.0 "
            "(float) [duplicate_choice]; hint: 1.0 is listed twice"
        )


def test_100000_repeated_input_names_are_reported_in_linear_time():
    nodes = {"a": {"op": "linear", "width": 4, "inputs": ["input"] * 100_000}}
    spec = {"name": "x", "graph": {"kind": "explicit", "nodes": nodes}}
    with _within(20):
        message = _message(spec)
    assert message.startswith("<dict>: 99999 problems in the search space\n")
    assert (
        "<dict>: graph.nodes.a.inputs[99999]: expected distinct names, got 'input' (str) "
        "[duplicate_choice]; hint: 'input' is listed twice"
    ) in message.splitlines()


# ----------------------------------------------------------------------------- aliases


def _laughs(levels: int) -> str:
    lines = ["  a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_are_refused(tmp_path):
    text = CHAIN + f"hyperparameters:\n{_laughs(9)}  h: {{choice: [*a8, 1]}}\n"
    path = _write(tmp_path, "laughs.yaml", text)
    with _within(20):
        message = _message(path)
    assert message == (
        "laughs.yaml: 1 problem in the search space\n"
        f"laughs.yaml:12:47: expected aliases that expand to at most "
        f"{MAX_ALIAS_NODES} nodes in all, got more than {MAX_ALIAS_NODES} [too_many_aliases]"
    )


def test_recursive_alias_is_refused(tmp_path):
    path = _write(tmp_path, "loop.yaml", CHAIN + "description: &d [*d]\n")
    assert _message(path) == (
        "loop.yaml: 1 problem in the search space\n"
        f"loop.yaml:8:18: expected aliases that expand to at most {MAX_ALIAS_NODES} nodes in "
        "all, got an alias inside its own anchor &d [too_many_aliases]"
    )


def test_small_aliases_still_load(tmp_path):
    text = CHAIN + "hyperparameters:\n  h: {choice: &c [1, 2]}\n  g: {choice: *c}\n"
    space = load_space(_write(tmp_path, "alias.yaml", text))
    assert [d.name for d in space.dimensions] == ["hp.h", "hp.g"]


def test_shared_structures_in_a_dict_give_short_messages():
    laugh: list = ["x"] * 10
    for _ in range(9):
        laugh = [laugh] * 10  # a billion leaves, shared: the Python form of billion laughs
    spec = {
        "name": "x",
        "graph": {"kind": "chain", "layers": 1, "layer": {"width": 8, "activation": "tanh"}},
        "hyperparameters": {"h": {"choice": [laugh, 1]}},
    }
    with _within(20):
        message = _message(spec)
    assert message == (
        "<dict>: 1 problem in the search space\n"
        "<dict>: hyperparameters.h.choice[0]: expected a number, a string or a boolean, got "
        "[[[[[[[[[['x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x..."
        " (list) [bad_value]"
    )


def test_long_keys_and_values_are_truncated_in_messages():
    key = "k" * 10_000
    spec = {"name": "x", "graph": {"kind": "chain", key: 1}}
    lines = _message(spec).splitlines()
    assert max(map(len, lines)) < 400
    assert lines[-1].startswith("<dict>: graph['kkkkkkkkk")


@pytest.mark.parametrize("name", ["deep.yaml", "deep.json"])
def test_deep_flow_nesting_is_refused_before_the_scanner_slows_down(tmp_path, name):
    text = '{"name": "x", "graph": ' + "[" * 5000 + "]" * 5000 + "}"
    with _within(20):
        message = _message(_write(tmp_path, name, text))
    column = len('{"name": "x", "graph": ') + MAX_FLOW_DEPTH
    assert message == (
        f"{name}: 1 problem in the search space\n"
        f"{name}:1:{column}: expected [ ] and {{ }} nested at most {MAX_FLOW_DEPTH} deep, got "
        f"a deeper one [too_deep]"
    )


def test_flow_nesting_at_the_limit_is_read(tmp_path):
    depth = MAX_FLOW_DEPTH - 1  # the document's own { } is one level
    text = '{"name": "x", "graph": ' + "[" * depth + "]" * depth + "}"
    message = _message(_write(tmp_path, "ok.yaml", text))
    assert "[too_deep]" not in message and "[bad_type]" in message


# ----------------------------------------------------------------------------- files


def test_file_over_the_size_limit(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(CHAIN + "description: '" + "x" * MAX_FILE_BYTES + "'\n")
    size = path.stat().st_size
    assert _message(path) == (
        "big.yaml: 1 problem in the search space\n"
        f"big.yaml: expected a file of at most {MAX_FILE_BYTES} bytes, got {size} bytes "
        "[file_too_large]; hint: pass max_bytes= to load_space to allow a larger file"
    )


def test_size_limit_is_a_parameter(tmp_path):
    path = _write(tmp_path, "tiny.yaml", CHAIN)
    assert load_space(path, max_bytes=len(CHAIN)).name == "x"
    assert _message(path, max_bytes=len(CHAIN) - 1) == (
        "tiny.yaml: 1 problem in the search space\n"
        f"tiny.yaml: expected a file of at most {len(CHAIN) - 1} bytes, got {len(CHAIN)} bytes "
        "[file_too_large]; hint: pass max_bytes= to load_space to allow a larger file"
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /dev/zero")
def test_endless_stream_is_cut_at_the_limit():
    assert _message("/dev/zero", max_bytes=4096) == (
        "zero: 1 problem in the search space\n"
        "zero: expected a file of at most 4096 bytes, got more than 4096 bytes "
        "[file_too_large]; hint: pass max_bytes= to load_space to allow a larger file"
    )


def test_json_file_limits_match_yaml(tmp_path):
    path = _write(tmp_path, "s.json", json.dumps({"name": "x"}))
    assert _message(path, max_bytes=4) == (
        "s.json: 1 problem in the search space\n"
        "s.json: expected a file of at most 4 bytes, got 13 bytes [file_too_large]; "
        "hint: pass max_bytes= to load_space to allow a larger file"
    )
