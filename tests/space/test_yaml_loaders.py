"""libyaml reads space files when PyYAML has it; the pure loader gives the same results.

A valid file is read by libyaml alone; a file libyaml refuses is read again by the pure
loader, so every message (its words, line and column) is the one the pure loader gives.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import autometa.space.load as load
from autometa.errors import SpaceValidationError
from autometa.space import MAX_FLOW_DEPTH, load_space, shipped_spaces
from autometa.space._yaml import FastLoader, PureLoader, SpaceLoader

INVALID = Path(__file__).parent / "invalid"
CHAIN = "name: x\ngraph:\n  kind: chain\n  layers: 1\n  layer: {width: 16, activation: tanh}\n"
LAUGHS = "".join(
    f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}" if i else "x"] * 10) + "]\n" for i in range(9)
)
TEXTS = {
    "aliases.yaml": CHAIN + "hyperparameters:\n  fast_lr: {choice: &c [0.1, 0.2]}\n"
    "  adam_lr: {choice: *c}\n",
    "floats.yaml": CHAIN + "hyperparameters:\n  fast_lr: {float: [1e-3, 1.0E-1], log: true}\n",
    "merge.yaml": CHAIN.replace(
        "  layer: {", "  base: &b {activation: tanh}\n  layer: {<<: *b, "
    ).replace(", activation: tanh}", "}"),
    "laughs.yaml": CHAIN + "hyperparameters:\n" + LAUGHS + "  h: {choice: [*a8, 1]}\n",
    "loop.yaml": CHAIN + "description: &d [*d]\n",
    "deep.yaml": '{"name": "x", "graph": ' + "[" * 500 + "]" * 500 + "}",
    "at_the_limit.yaml": '{"name": "x", "graph": '
    + "[" * (MAX_FLOW_DEPTH - 1)
    + "]" * (MAX_FLOW_DEPTH - 1)
    + "}",
    "deep_block.yaml": "".join(f"{' ' * i}a:\n" for i in range(400)) + " " * 400 + "b: 1\n",
    "control.yaml": CHAIN + "description: 'a\x07b'\n",
    "two.yaml": "name: a\n---\nname: b\n",
    "tab.yaml": "name: x\ngraph:\n\tkind: chain\n",
    "unclosed.yaml": CHAIN + "hyperparameters: {fast_lr: [0.1, 0.2}\n",
    "colon.yaml": "name: x: y\n",
    "duplicate.yaml": CHAIN + "name: y\n",
    "long_int.yaml": CHAIN + "hyperparameters:\n  inner_steps: " + "9" * 200 + "\n",
    "tag.yaml": "name: !!python/object/apply:os.system ['true']\n",
    "unhashable.yaml": CHAIN + "hyperparameters: {[a]: 1}\n",
    "empty.yaml": "",
    "json_like.json": '{"name": "x", "graph": {"kind": "chain", "layers": 1, "name": 2}',
}


def _outcome(path: Path) -> str:
    try:
        space = load_space(path)
    except SpaceValidationError as exc:
        return f"error: {exc}"
    return f"space: {space.to_dict()!r}"


def _files(tmp_path: Path) -> list[Path]:
    for name, text in TEXTS.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    written = [tmp_path / name for name in TEXTS]
    return [*written, *sorted(INVALID.iterdir()), *shipped_spaces().values()]


def test_libyaml_reads_space_files_when_pyyaml_has_it():
    assert (FastLoader is not None) == yaml.__with_libyaml__
    assert SpaceLoader is (FastLoader if FastLoader is not None else PureLoader)


@pytest.mark.skipif(FastLoader is None, reason="PyYAML without libyaml")
def test_both_loaders_give_the_same_spaces_and_the_same_messages(tmp_path, monkeypatch):
    files = _files(tmp_path)
    fast = [_outcome(p) for p in files]
    monkeypatch.setattr(load, "SpaceLoader", PureLoader)
    pure = [_outcome(p) for p in files]
    for path, a, b in zip(files, fast, pure):
        assert a == b, path.name
    outcomes = dict(zip((p.name for p in files), fast))
    assert outcomes["laughs.yaml"].endswith("got more than 10000 [too_many_aliases]")
    assert "loop.yaml:6:18: expected aliases" in outcomes["loop.yaml"]
    assert "deep.yaml:1:87: expected [ ] and { } nested at most 64 deep" in outcomes["deep.yaml"]
    assert outcomes["colon.yaml"] == (
        "error: colon.yaml: 1 problem in the search space\ncolon.yaml:1:8: expected valid "
        "YAML, got a syntax error: mapping values are not allowed here [yaml_syntax]"
    )
    assert outcomes["floats.yaml"].startswith("space: ")


class _CountingPure(PureLoader):
    """The pure loader, counting how often it is made."""

    made = 0

    def __init__(self, stream: str) -> None:
        type(self).made += 1
        super().__init__(stream)


@pytest.mark.skipif(FastLoader is None, reason="PyYAML without libyaml")
def test_a_valid_file_is_read_by_libyaml_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(load, "PureLoader", _CountingPure)
    for name in ("aliases.yaml", "floats.yaml", "laughs.yaml", "deep.yaml", "long_int.yaml"):
        path = tmp_path / name
        path.write_text(TEXTS[name], encoding="utf-8")
        _outcome(path)  # valid, or refused by a limit the fast loader checks itself
    for path in shipped_spaces().values():
        load_space(path)
    assert _CountingPure.made == 0
    path = tmp_path / "colon.yaml"
    path.write_text(TEXTS["colon.yaml"], encoding="utf-8")
    assert "mapping values are not allowed here" in _outcome(path)
    assert _CountingPure.made == 1
