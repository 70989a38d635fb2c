"""``search(batch=N)``: candidates go to a worker N at a time and score as they do one by one.

The evaluator is the real MAML evaluator at a small size, with ``cg_damping=1.0`` so that the
batched kernels' rounding is not magnified by an ill-conditioned solve (see
``tests/meta/test_population.py``); then a batched search's trial scores equal the one-by-one
search's to float tolerance.
"""

from __future__ import annotations

import pytest

from autometa.errors import ConfigurationError
from autometa.experiment import Budget, Final, search
from autometa.meta import MAMLEvaluator
from autometa.space import SearchSpace, load_space

SPACE = {
    "name": "widths",
    "graph": {
        "kind": "chain",
        "layers": 1,
        "layer": {"width": {"choice": [8, 16]}, "activation": "tanh"},
    },
    "hyperparameters": {"fast_lr": {"float": [0.05, 0.5]}},
}
"""Two architectures and a step size per candidate: a batch mixes both kinds of member."""


def _evaluator() -> MAMLEvaluator:
    return MAMLEvaluator(
        "navigation2d",
        2,
        num_tasks=3,
        episodes_per_task=3,
        test_tasks=3,
        test_episodes=3,
        cg_damping=1.0,
        traced=False,
        family_options={"horizon": 15},
    )


def _space() -> SearchSpace:
    return load_space(SPACE)


def _scores(path, **options):
    result = search(
        _space(), "random", _evaluator(), Budget(trials=6), storage=str(path),
        seed=3, progress=False, final=Final(top=2, seeds=2, ablation=False), **options,
    )  # fmt: skip
    trials = sorted(result.storage.get_all_trials(), key=lambda t: t.number)
    finals = sorted(result.storage.get_final_runs(), key=lambda r: r.id)
    return trials, finals


@pytest.fixture(scope="module")
def one_by_one(tmp_path_factory):
    """The reference: the same search with ``batch=1`` (run once for both cases)."""
    return _scores(tmp_path_factory.mktemp("one") / "one.db", workers=0, seeds=2)


@pytest.mark.parametrize(
    "workers, batch", [(0, 8), (2, 3)], ids=["inline-batch-8", "processes-batch-3"]
)
def test_a_batched_search_scores_as_one_by_one(tmp_path, one_by_one, workers, batch):
    one, one_final = one_by_one
    many, many_final = _scores(tmp_path / "many.db", workers=workers, batch=batch, seeds=2)
    assert [t.key for t in many] == [t.key for t in one]
    assert all(t.state.name == "DONE" for t in many)
    for a, b in zip(many, one):
        assert a.score == pytest.approx(b.score, rel=1e-4, abs=1e-4)
        assert a.metrics["seed_scores"] == pytest.approx(b.metrics["seed_scores"], rel=1e-4)
    # candidates of one width batched across trials, not only their own seeds
    assert any(t.metrics.get("population", 0) > 2 for t in many)
    assert [(r.entry, r.seed) for r in many_final] == [(r.entry, r.seed) for r in one_final]
    assert [r.score for r in many_final] == pytest.approx([r.score for r in one_final], rel=1e-4)


def test_batch_must_be_a_positive_int(tmp_path):
    with pytest.raises(ConfigurationError, match=r"^`batch` must be an int >= 1, got 0$"):
        search(_space(), "random", _evaluator(), Budget(trials=1), batch=0, progress=False)
