"""Dimension classes: validation, sampling, membership, conditions and JSON round trips."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from autometa.space import (
    Boolean,
    Categorical,
    Dimension,
    Float,
    Integer,
    condition_holds,
    dimension_from_dict,
)


def test_categorical_defaults_to_first_choice_and_keeps_types_apart():
    dim = Categorical("n0.width", [32, 64, 128])
    assert dim.default == 32 and dim.choices == (32, 64, 128)
    assert dim.contains(64) and dim.contains(np.int64(64)) and dim.contains(64.0)
    assert not dim.contains(True) and not dim.contains("64") and not dim.contains(48)
    flags = Categorical("x", [False, True])
    assert flags.contains(True) and not flags.contains(1)
    assert dim.normalise(np.int64(128)) == 128 and type(dim.normalise(np.int64(128))) is int


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"choices": []}, "`choices` must not be empty, got choices=[]"),
        ({"choices": [1, 1.0]}, "`choices` must be distinct, got 1.0 twice"),
        ({"choices": [[1]]}, "`choices` must be str, int, float or bool scalars, got [1]"),
        (
            {"choices": ["a", "b"], "default": "c"},
            "the default must lie in the domain, got default='c' for x in {a, b}",
        ),
    ],
)
def test_categorical_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        Categorical("x", **kwargs)


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (Integer, {"low": 3, "high": 1}, "`low <= high` must hold, got low=3, high=1"),
        (Integer, {"low": 0, "high": 4, "log": True}, "`low >= 1` must hold when log=True, "
         "got low=0"),
        (Integer, {"low": 1.5, "high": 4}, "`low` must be an int, got low=1.5"),
        (Float, {"low": 0.0, "high": 1.0, "log": True}, "`low > 0` must hold when log=True, "
         "got low=0.0"),
        (Float, {"low": 0.0, "high": math.nan}, "`high` must be a finite number, got high=nan"),
        (Float, {"low": 2.0, "high": 1.0}, "`low <= high` must hold, got low=2.0, high=1.0"),
    ],
)  # fmt: skip
def test_ranges_reject_bad_arguments(cls, kwargs, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        cls("x", **kwargs)


def test_integer_is_inclusive_and_log_sampling_stays_in_range():
    dim = Integer("layers", 1, 4)
    rng = np.random.default_rng(0)
    draws = {dim.sample(rng) for _ in range(200)}
    assert draws == {1, 2, 3, 4}
    assert dim.values() == [1, 2, 3, 4] and dim.cardinality == 4 and dim.default == 1
    assert dim.contains(4) and not dim.contains(5) and not dim.contains(2.0)
    assert not dim.contains(True)
    log = Integer("w", 8, 512, log=True)
    draws = [log.sample(rng) for _ in range(2000)]
    assert min(draws) >= 8 and max(draws) <= 512
    assert np.median(draws) < 100  # log-uniform: the median sits near sqrt(8 * 512) = 64


def test_float_log_sampling_is_log_uniform():
    dim = Float("hp.fast_lr", 0.01, 1.0, log=True)
    rng = np.random.default_rng(0)
    draws = np.array([dim.sample(rng) for _ in range(4000)])
    assert draws.min() >= 0.01 and draws.max() <= 1.0
    assert abs(np.mean(draws < 0.1) - 0.5) < 0.05
    assert all(type(v) is float for v in draws[:5].tolist())
    assert dim.contains(1) and not dim.contains(1.5) and not dim.contains(math.inf)
    assert dim.cardinality == math.inf and dim.default == 0.01
    with pytest.raises(ValueError, match="^hp.fast_lr is a float range; it has no finite list"):
        dim.values()


def test_boolean():
    dim = Boolean("l0.residual")
    assert dim.default is False and dim.values() == [False, True]
    assert dim.contains(np.bool_(True)) and not dim.contains(1)
    assert {dim.sample(np.random.default_rng(s)) for s in range(20)} == {False, True}


@pytest.mark.parametrize(
    "dim",
    [
        Categorical("n2.inputs", ["input", "n0", "input+n0"], "n0", (("nodes", ">=", 3),)),
        Integer("nodes", 2, 5, default=3),
        Float("hp.fast_lr", 0.01, 1.0, log=True, default=0.1),
        Boolean("l1.residual", True, (("layers", ">=", 2),)),
        Categorical("n1.width", [32, 64], condition=(("n1.op", "in", ["linear", "linear_tanh"]),)),
    ],
    ids=lambda d: d.name,
)
def test_to_dict_round_trips_through_json(dim):
    data = json.loads(json.dumps(dim.to_dict()))
    assert data["type"] == type(dim).__name__
    assert dimension_from_dict(data) == dim
    assert Dimension.from_dict(data) == dim


def test_from_dict_names_an_unknown_type():
    with pytest.raises(ValueError, match=r"^unknown dimension type 'Ordinal'; expected one of"):
        dimension_from_dict({"type": "Ordinal", "name": "x"})


def test_conditions():
    cond = (("nodes", ">=", 5), ("n4.op", "in", ("linear", "linear_tanh")))
    dim = Categorical("n4.width", [32, 64], condition=cond)
    assert dim.active({"nodes": 5, "n4.op": "linear"})
    assert not dim.active({"nodes": 4, "n4.op": "linear"})
    assert not dim.active({"nodes": 5, "n4.op": "identity"})
    assert not dim.active({"nodes": 5})  # a clause on a missing dimension is false
    assert condition_holds(None, {})
    assert not condition_holds((("flag", "==", 1),), {"flag": True})  # True is not 1
    assert condition_holds((("x", "!=", "a"),), {"x": "b"})
    with pytest.raises(ValueError, match=r"^each condition clause must be \(name, op, value\)"):
        Boolean("x", condition=(("nodes", "~", 1),))


def test_categorical_finds_a_choice_among_many_as_same_value_would():
    choices = [*range(100_000), True, "1", 1.5]
    dim = Categorical("hp.test_seed", choices)
    assert dim.index(99_999) == 99_999 and dim.index(np.int64(7)) == 7 and dim.index(7.0) == 7
    assert dim.index(True) == 100_000 and dim.index(np.bool_(True)) == 100_000
    assert dim.index("1") == 100_001 and dim.index(np.float32(1.5)) == 100_002
    assert dim.normalise(np.int64(3)) == 3 and type(dim.normalise(np.int64(3))) is int
    assert dim.contains(5) and not dim.contains(False) and not dim.contains([1])
    assert not dim.contains(math.nan) and not dim.contains(None)
    short = Categorical("l0.width", [16, 32])
    with pytest.raises(ValueError, match=r"^True is not in the domain of l0.width: \{16, 32\}$"):
        short.index(True)
    assert "_positions" not in short.to_dict() and Dimension.from_dict(short.to_dict()) == short
