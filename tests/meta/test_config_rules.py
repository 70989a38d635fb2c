"""Each hyperparameter value is checked against its field's rule alone, as a whole
configuration would check it, so a space of many choices is checked without building a
configuration per value."""

from __future__ import annotations

import math
import re

import pytest

from autometa._maml_config import field_problem, settable_fields
from autometa.errors import ConfigurationError
from autometa.meta import MAMLConfig, MAMLEvaluator
from autometa.space import load_space

PROBES = [-1, 0, 1, 2, 0.5, 1.5, -0.5, math.inf, math.nan, True, False, "", "x", "maml",
          "promp", "trpo", None, [1]]  # fmt: skip


@pytest.mark.parametrize("name", settable_fields())
def test_a_fields_rule_gives_what_a_whole_configuration_reports(name):
    for value in PROBES:
        try:
            MAMLConfig().replace(**{name: value})
            expected = None
        except ConfigurationError as exc:
            expected = str(exc).removeprefix("invalid MAMLConfig: ")
        assert field_problem(name, value) == expected, (name, value)


def test_the_rule_of_an_unchecked_name_is_none():
    assert field_problem("episodes_per_iteration", -5) is None  # derived, never set


def test_a_space_of_many_choices_reports_each_bad_value_in_order():
    choices = [*range(100_000), -1, 2.5, True]
    space = load_space({
        "name": "wide",
        "graph": {"kind": "chain", "layers": 1, "layer": {"width": 8, "activation": "tanh"}},
        "hyperparameters": {"test_seed": {"choice": choices},
                            "meta_learner": {"choice": ["maml", "promp", "reptil"]},
                            "gamma": {"float": [0.5, 1.5]}},
    })  # fmt: skip
    message = (
        "space 'wide': hyperparameter values MAMLEvaluator cannot use: test_seed: expected an "
        "int >= 0, got -1; test_seed: expected an int >= 0, got 2.5; test_seed: expected an "
        "int >= 0, got True; meta_learner: unknown meta-learner 'reptil'. Valid names: maml, "
        "promp; gamma: expected a number in (0, 1], got 1.5"
    )
    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        MAMLEvaluator().check_space(space)
