"""Every strategy ends a search cleanly on a space it exhausts: one point, or two.

A real search (inline, a scripted evaluator) runs with each registered strategy on a space
written here; it evaluates each distinct architecture once and stops with one note, no
traceback, well before its trial budget.
"""

from __future__ import annotations

import logging

import pytest

from autometa.cli import main
from autometa.experiment import Budget, search
from autometa.meta import EvalResult
from autometa.space import load_space
from autometa.strategies import STRATEGIES, make_strategy

ONE_POINT = """\
name: one-point
description: a single architecture, one tanh layer of 16 units
graph:
  kind: chain
  layers: {int: [1, 1]}
  layer:
    width: {choice: [16]}
    activation: {choice: [tanh]}
hyperparameters:
  fast_lr: 0.1
"""
TWO_POINTS = ONE_POINT.replace("name: one-point", "name: two-points").replace(
    "{choice: [16]}", "{choice: [16, 32]}"
)


class Widths:
    """A scripted evaluator: the score is the summed width of the layers (instant)."""

    def __call__(self, graph, *, seed, device=None):
        widths = [data.get("width") or 0 for _, data in graph.nodes(data=True)]
        return EvalResult(status="ok", score=float(sum(widths)), metrics={"seed": seed})


NAMES = [name for name in STRATEGIES.names() if name != "nni-policy-rl"]  # never available


def _space(tmp_path, text):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


def _available(name, space):
    try:
        make_strategy(name, load_space(space))
    except ImportError as exc:
        pytest.skip(f"{name} needs a package that is missing: {exc}")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("text", "points"), [(ONE_POINT, 1), (TWO_POINTS, 2)], ids=["one", "two"])
def test_a_search_ends_when_the_space_is_exhausted(name, text, points, tmp_path, caplog):
    space = _space(tmp_path, text)
    _available(name, space)
    with caplog.at_level(logging.INFO):
        result = search(space, strategy=name, evaluator=Widths(), budget=Budget(trials=6),
                        storage=tmp_path / "s.db", workers=0, final=False,
                        progress=False)  # fmt: skip
    assert result.counts["DONE"] == points and len(result.trials) == points
    assert len({t.key for t in result.trials}) == points
    assert result.stop_reason == "the strategy has no new candidates"
    notes = [r.getMessage() for r in caplog.records if r.name == "autometa.strategies.base"]
    count = "1 architecture" if points == 1 else "2 architectures"
    assert notes == [
        f"strategy {name!r}: all {count} of space {load_space(space).name!r} are recorded or "
        "pending; the space is exhausted"
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


def test_an_exhausted_study_resumes_to_the_same_end(tmp_path):
    space = _space(tmp_path, ONE_POINT)
    _available("bo-gp", space)
    options = dict(strategy="bo-gp", evaluator=Widths(), storage=tmp_path / "s.db",
                   workers=0, final=False, progress=False)  # fmt: skip
    first = search(space, budget=Budget(trials=2), **options)
    again = search(space, budget=Budget(trials=5), **options)
    assert [t.key for t in again.trials] == [t.key for t in first.trials]
    assert again.stop_reason == "the strategy has no new candidates"


def test_a_one_point_strategy_asks_the_point_once_and_restores():
    space = load_space(ONE_POINT_DICT)
    strategy = make_strategy("random", space, seed=3)
    (only,) = strategy.ask(4)
    assert strategy.ask(1) == [] and strategy.exhausted
    strategy.tell(only, 1.5)
    assert strategy.ask(2) == [] and strategy.n_told == 1
    restored = make_strategy("random", space, seed=3)
    restored.load_state_dict(strategy.state_dict())
    assert restored.exhausted and restored.n_told == 1 and restored.ask(1) == []


ONE_POINT_DICT = {
    "name": "one-point",
    "graph": {
        "kind": "chain",
        "layers": {"int": [1, 1]},
        "layer": {"width": {"choice": [16]}, "activation": {"choice": ["tanh"]}},
    },
}


def test_the_command_line_ends_a_one_point_search_without_a_traceback(tmp_path, capsys):
    space = _space(tmp_path, ONE_POINT)
    _available("bo-gp", space)
    argv = ["search", str(space), "--strategy", "bo-gp", "--objective", "synthetic",
            "--workers", "0", "--no-progress", "--trials", "5", "--final-top", "0",
            "--storage", str(tmp_path / "s.db")]  # fmt: skip
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert out.startswith(
        f"study file: {tmp_path / 's.db'}\nstopped: the strategy has no new candidates\n"
    )
    assert err == ""
