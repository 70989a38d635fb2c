import pytest

from autometa.space import load_space

SPACE_NAMES = ["chain_mlp", "dag_cell", "explicit_two_tower", "tiny"]


@pytest.fixture(scope="session")
def spaces():
    """Every shipped space, loaded once."""
    return {name: load_space(name) for name in SPACE_NAMES}


@pytest.fixture(scope="session")
def tiny(spaces):
    return spaces["tiny"]


@pytest.fixture(scope="session")
def chain(spaces):
    return spaces["chain_mlp"]


@pytest.fixture(scope="session")
def dag(spaces):
    return spaces["dag_cell"]
