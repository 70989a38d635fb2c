"""The Ray executor against a local Ray instance."""

from __future__ import annotations

import pytest

from autometa.experiment import Budget, InMemoryStorage, search, trial_seed
from autometa.meta.synthetic import SyntheticObjective
from autometa.space import shipped_spaces

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray

DAG = shipped_spaces()["dag_cell"]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_executor_runs_the_search(local_ray):
    from autometa.experiment import RayExecutor

    executor = RayExecutor(num_cpus_per_trial=1)
    result = search(
        DAG,
        evaluator=SyntheticObjective(delay=0.1, fail_fraction=0.2),
        budget=Budget(trials=8),
        storage=InMemoryStorage(),
        executor=executor,
        progress=False,
    )
    assert executor.capacity == 2  # two CPUs, one per trial
    assert len(result.trials) == 8 and result.counts["DONE"] + result.counts["FAILED"] == 8
    assert all(t.device.startswith("ray:") and t.device.endswith("/cpu") for t in result.trials)
    failed = [t for t in result.trials if t.error]
    assert all(t.error == "synthetic failure (fail_fraction=0.2)" for t in failed)
    straight = search(DAG, evaluator=SyntheticObjective(fail_fraction=0.2),
                      budget=Budget(trials=8), storage=InMemoryStorage(), workers=0,
                      progress=False)  # fmt: skip
    assert sorted(t.key for t in result.trials) == sorted(t.key for t in straight.trials)
    assert ray.is_initialized()  # a Ray instance the executor did not start is left running


def test_ray_timeout_cancels_the_task(local_ray):
    from autometa.experiment import RayExecutor

    class Sleepy(SyntheticObjective):
        def __call__(self, graph, *, seed, **kw):
            if seed == trial_seed(0, 0):
                import time

                time.sleep(60)
            return super().__call__(graph, seed=seed, **kw)

    result = search(
        DAG, evaluator=Sleepy(), budget=Budget(trials=3), storage=InMemoryStorage(),
        executor=RayExecutor(workers=2, timeout=2.0), progress=False,
    )  # fmt: skip
    trials = {t.number: t for t in result.trials}
    assert trials[0].error == "timed out after 2 s (Ray task cancelled)"
    assert result.counts["DONE"] == 2
