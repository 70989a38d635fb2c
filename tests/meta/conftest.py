"""Fixtures of the MAML evaluator tests."""

import pytest
from helpers import chain_graph


@pytest.fixture
def nav_graph():
    return chain_graph((16, 16), "linear_tanh")
