"""Every shipped space: seeded samples validate, build, run, and survive every round trip."""

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import autometa.space
from autometa.errors import SpaceValidationError
from autometa.graph import from_graphml, from_json, graph_equal, to_graphml, to_json
from autometa.policy import build_policy
from autometa.space import load_space, shipped_spaces

SPACES = sorted(shipped_spaces().values())
SAMPLES = 200


def test_the_shipped_spaces_are_there():
    names = {p.stem for p in SPACES}
    assert {"chain_mlp", "dag_cell", "explicit_two_tower", "tiny"} <= names
    checkout = Path(autometa.__file__).parents[1] / "search_spaces"
    assert all(p.parent == checkout for p in SPACES)


@pytest.mark.parametrize("name", ["tiny", "dag_cell"])
def test_a_bare_name_loads_the_shipped_space_from_any_folder(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    space = load_space(name)
    assert space == load_space(shipped_spaces()[name])
    assert space.source == str(shipped_spaces()[name])


def test_an_existing_file_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("tiny").write_text((shipped_spaces()["chain_mlp"]).read_text())
    assert load_space("tiny").name == "chain-mlp"
    assert load_space("./tiny").name == "chain-mlp"


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("dag_cel", " Did you mean 'dag_cell'?"),
        ("dag-cell", " Did you mean 'dag_cell'?"),
        ("zz", ""),
    ],
)
def test_an_unknown_name_lists_the_shipped_spaces(name, hint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpaceValidationError) as info:
        load_space(name)
    assert str(info.value) == (
        f"{name}: not a file and not a shipped search space.{hint} "
        "Shipped spaces: chain_mlp, dag_cell, explicit_two_tower, tiny"
    )


def test_a_missing_path_is_still_a_read_error(tmp_path):
    with pytest.raises(SpaceValidationError) as info:
        load_space(tmp_path / "tiny")
    assert str(info.value) == (
        "tiny: 1 problem in the search space\n"
        "tiny: expected a readable UTF-8 text file, got No such file or directory [read_error]"
    )
    with pytest.raises(SpaceValidationError, match=r"^tiny.yaml: 1 problem"):
        load_space("tiny.yaml")


@pytest.mark.parametrize("path", SPACES, ids=[p.stem for p in SPACES])
def test_samples_validate_build_run_and_round_trip(path):
    space = load_space(path)
    obs_dim, act_dim = space.io["obs_dim"], space.io["act_dim"]
    obs_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
    act_space = gym.spaces.Box(-1.0, 1.0, (act_dim,), np.float32)
    batch = torch.randn(3, 5, obs_dim)
    for seed in range(SAMPLES):
        graph = space.sample(seed)
        space.validate(graph)
        assert graph_equal(space.decode(space.encode(graph)), graph), seed
        assert graph_equal(from_json(to_json(graph)), graph), seed
        assert graph_equal(from_graphml(to_graphml(graph)), graph), seed
        policy = build_policy(graph, obs_space, act_space, seed=seed)
        mean, log_std = policy(batch)
        assert mean.shape == (3, 5, act_dim) and log_std.shape == (3, 5, act_dim)
        assert torch.isfinite(mean).all()
        limit = space.constraints.get("max_params")
        if limit is not None:
            assert policy.num_params <= limit


@pytest.mark.parametrize("path", SPACES, ids=[p.stem for p in SPACES])
def test_sampling_is_seeded(path):
    space = load_space(path)
    assert graph_equal(space.sample(7), space.sample(7))
    keys = {tuple(sorted(space.encode(space.sample(s)).items())) for s in range(20)}
    assert len(keys) > 1
