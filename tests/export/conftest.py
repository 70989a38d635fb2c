"""A small real SQLite study for the export and plot tests."""

from pathlib import Path

import gymnasium as gym
import pytest

STUDY_TRIALS = 40
NAV = gym.spaces.Box(-1.0, 1.0, (2,))


def make_study(path: Path, trials: int = STUDY_TRIALS, fail_fraction: float = 0.15) -> Path:
    """Sample the tiny dag space, score with the synthetic objective, store like a search.

    DONE trials keep weights of a policy for navigation2d's spaces, as the search stores
    the evaluator's meta-learned state_dict.
    """
    from autometa.build import build_policy
    from autometa.experiment.storage import SQLiteStorage, encode_weights
    from autometa.experiment.trial import StudyInfo, TrialRecord, TrialState
    from autometa.graph import canonical_hash, to_json
    from autometa.meta import runtime_versions
    from autometa.meta.synthetic import SyntheticObjective
    from autometa.space import load_space

    root = Path(__file__).resolve().parents[2]
    space = load_space(root / "search_spaces" / "dag_cell.yaml")
    objective = SyntheticObjective(fail_fraction=fail_fraction, noise=0.05)
    storage = SQLiteStorage(path)
    storage.create_study(
        StudyInfo(
            space_name=space.name,
            space_hash=space.content_hash,
            space_spec=space.to_dict(),
            strategy="random",
            seed=0,
            evaluator={
                "target": "autometa.meta.synthetic:SyntheticObjective",
                "config": {"fail_fraction": fail_fraction, "noise": 0.05},
            },
            versions=runtime_versions(),
        )
    )
    graphs = [space.sample(seed) for seed in range(trials)]
    records = storage.create_trials(
        [
            TrialRecord(
                number=0,
                state=TrialState.QUEUED,
                key=canonical_hash(g),
                graph_json=to_json(g),
                values=space.encode(g),
            )
            for g in graphs
        ]
    )
    for record, graph in zip(records, graphs):
        result = objective(graph, seed=record.seed)
        if result.ok:
            policy = build_policy(graph, NAV, NAV, seed=record.number)
            storage.finish_trial(
                record.number,
                TrialState.DONE,
                score=result.score,
                objectives=result.objectives,
                metrics=result.metrics,
                weights=encode_weights(policy.state_dict()),
            )
        else:
            storage.finish_trial(
                record.number, TrialState.FAILED, error=result.error, metrics=result.metrics
            )
    storage.close()
    return path


@pytest.fixture(scope="session")
def study(tmp_path_factory) -> Path:
    return make_study(tmp_path_factory.mktemp("study") / "study.db")
