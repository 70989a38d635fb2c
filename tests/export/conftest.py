"""Small real studies, made by ``autometa.experiment.search``, for the export and plot tests."""

from pathlib import Path

import pytest

from autometa.space import shipped_spaces

STUDY_TRIALS = 40


@pytest.fixture(scope="session")
def study(tmp_path_factory) -> Path:
    """40 random dag-cell candidates scored by the synthetic objective (some fail, no weights)."""
    from autometa.experiment import Budget, search
    from autometa.meta.synthetic import SyntheticObjective

    path = tmp_path_factory.mktemp("study") / "study.db"
    result = search(
        shipped_spaces()["dag_cell"],
        strategy="random",
        evaluator=SyntheticObjective(fail_fraction=0.15, noise=0.05),
        budget=Budget(trials=STUDY_TRIALS),
        storage=path,
        workers=0,
        progress=False,
    )
    assert result.counts["FAILED"] > 0
    result.storage.close()
    return path


@pytest.fixture(scope="session")
def maml_study(tmp_path_factory) -> Path:
    """3 tiny-space candidates meta-trained by a (very small) MAML evaluator on navigation2d."""
    from autometa.experiment import Budget, search
    from autometa.meta import MAMLEvaluator

    evaluator = MAMLEvaluator(
        "navigation2d",
        meta_iterations=1,
        num_tasks=2,
        episodes_per_task=2,
        test_tasks=2,
        test_episodes=2,
        report_steps=1,
        outer="adam",
    )
    path = tmp_path_factory.mktemp("maml") / "maml.db"
    result = search(
        shipped_spaces()["tiny"],
        strategy="random",
        evaluator=evaluator,
        budget=Budget(trials=3),
        storage=path,
        workers=0,
        progress=False,
    )
    assert result.counts["DONE"] == 3
    result.storage.close()
    return path
