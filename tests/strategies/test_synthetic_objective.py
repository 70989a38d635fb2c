"""The synthetic objective: deterministic, learnable structure, failures and fidelity."""

import re

import pytest
from helpers import chain_graph

from autometa.meta import SyntheticObjective


def test_deterministic_and_seed_free():
    objective = SyntheticObjective()
    graph = chain_graph(widths=(64, 64), hyper={"fast_lr": 0.1, "inner_steps": 2})
    first = objective(graph, seed=0)
    assert first.status == "ok"
    assert objective(graph, seed=5).score == first.score
    assert SyntheticObjective()(graph).score == first.score
    assert first.objectives == {"params": float(first.metrics["params"])}
    assert first.fidelity == 100


def test_known_optimum_region_scores_higher():
    objective = SyntheticObjective(noise=0.0)
    good = chain_graph(widths=(64, 64, 32), hyper={"fast_lr": 0.1, "inner_steps": 2})
    bad_lr = chain_graph(widths=(64, 64, 32), hyper={"fast_lr": 0.01, "inner_steps": 2})
    tiny = chain_graph(widths=(4,), op="linear", hyper={"fast_lr": 0.1, "inner_steps": 2})
    scores = [objective.score(g) for g in (good, bad_lr, tiny)]
    assert scores[0] > 0.8
    assert scores[0] > scores[1] + 0.5
    assert scores[0] > scores[2] + 0.5


def test_fail_fraction_and_fidelity():
    graph = chain_graph(widths=(32,))
    failed = SyntheticObjective(fail_fraction=1.0)(graph)
    assert failed.status == "failed"
    assert failed.error == "synthetic failure (fail_fraction=1.0)"
    objective = SyntheticObjective()
    full = objective(graph).score
    assert objective(graph, meta_iterations=50).score == pytest.approx(full - 0.25)


def test_bad_graph_is_a_failed_result():
    graph = chain_graph(widths=(8,))
    graph.add_edge("l0", "input", order=0)
    result = SyntheticObjective()(graph)
    assert result.status == "failed"
    assert result.error == (
        "NetworkXUnfeasible: Graph contains a cycle or graph changed during iteration"
    )


def test_options_are_checked():
    with pytest.raises(
        ValueError, match=re.escape("`0 <= fail_fraction <= 1` must hold, got fail_fraction=2.0")
    ):
        SyntheticObjective(fail_fraction=2.0)
