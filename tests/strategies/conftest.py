from pathlib import Path

import pytest

from autometa.space import load_space

SPACES_DIR = Path(__file__).resolve().parents[2] / "search_spaces"
SPACE_NAMES = ["chain_mlp", "dag_cell", "explicit_two_tower", "tiny"]


@pytest.fixture(scope="session")
def spaces():
    """Every shipped space, loaded once."""
    return {name: load_space(SPACES_DIR / f"{name}.yaml") for name in SPACE_NAMES}


@pytest.fixture(scope="session")
def tiny(spaces):
    return spaces["tiny"]


@pytest.fixture(scope="session")
def chain(spaces):
    return spaces["chain_mlp"]


@pytest.fixture(scope="session")
def dag(spaces):
    return spaces["dag_cell"]
