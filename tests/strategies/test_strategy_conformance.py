"""Every registered strategy against every shipped space, through the shipped conformance suite."""

import re

import pytest

from autometa.errors import ConfigurationError
from autometa.space import shipped_spaces
from autometa.strategies import STRATEGIES, make_strategy
from autometa.testing import check_strategy, check_unknown_option

SPACE_NAMES = sorted(shipped_spaces())

TINY_DISTINCT = 20  # 4 one-layer + 16 two-layer chains

GRID_TOO_BIG = (
    "strategy 'grid': the grid over space 'dag-cell' has about 10^11 points with "
    "points_per_dim=4, above max_size=2000000; use a smaller space or points_per_dim, "
    "raise max_size, or use 'random'"
)

# Cheaper surrogate settings keep the suite fast; the protocol under test is the same.
_CHEAP_ACQ = {"acq_optimizer": "sampling", "acq_optimizer_kwargs": {"n_points": 300}}
TEST_OPTIONS = {
    "bo-gp": {**_CHEAP_ACQ, "n_initial_points": 20},
    "bo-rf": {**_CHEAP_ACQ, "n_estimators": 20},
    "bo-et": {**_CHEAP_ACQ, "n_estimators": 20},
    "bo-gbrt": {**_CHEAP_ACQ, "n_estimators": 10},
    "nni-gp": {
        "n_restarts_optimizer": 1,
        "selection_num_warm_up": 300,
        "selection_num_starting_points": 1,
    },
}

POLICY_RL = (
    "strategy 'nni-policy-rl' is unavailable: NNI 3.0's PolicyBasedRL lives in nni.nas, which "
    "needs pytorch_lightning and NNI's model-space and execution engine; it cannot be driven "
    "as an ask/tell tuner over an autometa space. Use 'nni-tpe', 'nni-evolution' or "
    "'nni-regularized-evolution'"
)

EXPECTED_ERRORS = {
    ("grid", "dag_cell"): (ValueError, GRID_TOO_BIG),
    **{("nni-policy-rl", space): (ConfigurationError, POLICY_RL) for space in SPACE_NAMES},
}


@pytest.mark.parametrize("space_name", SPACE_NAMES)
@pytest.mark.parametrize("name", STRATEGIES.names())
def test_conformance(name, space_name, spaces):
    space = spaces[space_name]
    if (name, space_name) in EXPECTED_ERRORS:
        error, message = EXPECTED_ERRORS[name, space_name]
        with pytest.raises(error, match=f"^{re.escape(message)}$"):
            make_strategy(name, space, seed=0)
        return
    expected = TINY_DISTINCT if space_name == "tiny" else None
    check_strategy(name, space, n_trials=30, expected=expected, **TEST_OPTIONS.get(name, {}))


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_unknown_option_lists_valid_ones(name, spaces):
    check_unknown_option(name, spaces["tiny"])
