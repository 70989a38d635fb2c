"""The base class contract: registry errors, record and pending handling, tell checks, state."""

import json
import math
import re
import subprocess
import sys

import pytest

from autometa.errors import UnknownNameError
from autometa.strategies import STRATEGIES, BaseStrategy, make_strategy


class Scripted(BaseStrategy):
    """Proposes a fixed list of value dicts and records what the backend is told."""

    name = "scripted"
    defaults = {"script": []}

    def _setup(self):
        self.queue = list(self.options["script"])
        self.observed = []

    def _propose(self, n):
        out, self.queue = self.queue[:n], self.queue[n:]
        return [(values, i) for i, values in enumerate(out)]

    def _observe(self, token, values, value):
        self.observed.append((values.get("l0.width"), value))


def one_layer(width, activation="tanh"):
    return {"layers": 1, "l0.width": width, "l0.activation": activation}


def test_unknown_name_lists_the_valid_ones(tiny):
    names = ", ".join(STRATEGIES.names())
    message = f"unknown strategy 'randm'. Did you mean 'random'? Valid names: {names}"
    with pytest.raises(UnknownNameError, match=f"^{re.escape(message)}$"):
        make_strategy("randm", tiny)


def test_unknown_option_suggests_the_closest(tiny):
    message = (
        "strategy 'grid' got an unknown option 'points_per_dimension'. Did you mean "
        "'points_per_dim'? Valid options: max_size, points_per_dim, shuffle"
    )
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        make_strategy("grid", tiny, points_per_dimension=3)


def test_bad_option_value_names_the_option(tiny):
    message = "strategy 'grid': option points_per_dim must be a positive int, got 0"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        make_strategy("grid", tiny, points_per_dim=0)


def test_recorded_keys_are_answered_from_the_record(tiny):
    strategy = Scripted(tiny, script=[one_layer(16), one_layer(16), one_layer(32)])
    [first] = strategy.ask(1)
    strategy.tell(first, 1.0)
    [second] = strategy.ask(1)  # the repeat of 16 is answered, 32 is handed out
    assert second.values == one_layer(32)
    assert strategy.observed == [(16, 1.0), (16, 1.0)]


def test_pending_keys_are_held_back_and_told_later(tiny):
    strategy = Scripted(tiny, script=[one_layer(16), one_layer(16), one_layer(32)])
    candidates = strategy.ask(3)
    assert [c.values["l0.width"] for c in candidates] == [16, 32]
    strategy.tell(candidates[0], 2.0)
    assert strategy.observed == [(16, 2.0), (16, 2.0)]


def test_invalid_proposals_are_told_as_failures(tiny):
    strategy = Scripted(tiny, script=[one_layer(17), {"layers": 1}, one_layer(32)])
    [candidate] = strategy.ask(1)
    assert candidate.values == one_layer(32)
    assert strategy.observed == [(17, None), (None, None)]


def test_exhausted_space_returns_fewer_candidates(tiny):
    strategy = make_strategy("grid", tiny, seed=0)
    assert len(strategy.ask(25)) == 20
    assert strategy.ask(1) == []


def test_tell_checks(tiny):
    strategy = make_strategy("random", tiny, seed=0)
    a, b = strategy.ask(2)
    with pytest.raises(
        TypeError,
        match=r"^strategy 'random' is single-objective: tell a float "
        r"or None, got \(1\.0, 2\.0\)$",
    ):
        strategy.tell(a, (1.0, 2.0))
    strategy.tell(a, math.nan)  # a non-finite score is a failure
    with pytest.raises(
        ValueError,
        match=r"^strategy 'random': candidate 0 is not pending \(it "
        r"was never asked, or it was already told\)$",
    ):
        strategy.tell(a, 1.0)
    strategy.tell(b.id, 3)
    assert strategy.n_told == 2
    assert strategy.state_dict()["log"][1:] == [["tell", 0, None], ["tell", 1, 3.0]]


def test_state_restores_pending_candidates(tiny):
    strategy = make_strategy("random", tiny, seed=3)
    candidates = strategy.ask(3)
    strategy.tell(candidates[1], 0.5)
    state = json.loads(json.dumps(strategy.state_dict()))
    restored = make_strategy("random", tiny, seed=99)
    restored.load_state_dict(state)
    assert restored.seed == 3
    assert [c.id for c in restored.pending()] == [0, 2]
    assert [c.key for c in restored.pending()] == [candidates[0].key, candidates[2].key]
    assert [c.key for c in restored.ask(2)] == [c.key for c in strategy.ask(2)]


def test_state_of_other_options_is_refused(chain):
    state = make_strategy("grid", chain, seed=0, points_per_dim=3).state_dict()
    other = make_strategy("grid", chain, seed=0)
    message = (
        "strategy 'grid': cannot load a state whose options is {'points_per_dim': 3, "
        "'max_size': 2000000, 'shuffle': True}; this strategy has options "
        "{'points_per_dim': 4, 'max_size': 2000000, 'shuffle': True}"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        other.load_state_dict(state)


def test_diverging_replay_is_detected(tiny):
    strategy = make_strategy("random", tiny, seed=0)
    strategy.ask(1)
    state = strategy.state_dict()
    state["log"][0][2] = ["0000000000000000"]
    with pytest.raises(
        ValueError,
        match=r"^strategy 'random': replaying the state diverged at "
        r"log entry 0: ask\(1\) gave keys \['[0-9a-f]{16}'\], the state recorded "
        r"\['0000000000000000'\]$",
    ):
        make_strategy("random", tiny, seed=0).load_state_dict(state)


def test_str_is_the_class_name(tiny):
    assert str(make_strategy("random", tiny)) == "RandomStrategy"


def test_import_does_not_load_backends():
    code = (
        "import sys, autometa.strategies; "
        "print(sorted(m for m in ('deap', 'skopt', 'nni') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
