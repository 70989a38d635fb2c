"""Every job says what it evaluates: trials and final-stage runs share one loop and executor."""

from __future__ import annotations

from autometa.experiment import Budget, Final, InMemoryStorage, search
from autometa.experiment._worker import FINAL, TRIAL, Job, JobKey
from autometa.experiment.executors import InlineExecutor
from autometa.meta import SyntheticObjective
from autometa.space import shipped_spaces

TINY = str(shipped_spaces()["tiny"])


class RecordingExecutor(InlineExecutor):
    """The inline executor, noting the keys of the jobs it is sent and of what it returns."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[JobKey, ...]] = []
        self.answered: list[JobKey] = []

    def submit(self, job: Job) -> None:
        self.sent.append(job.keys)
        super().submit(job)

    def wait(self, timeout=None):
        outcomes = super().wait(timeout)
        self.answered += [o.key for o in outcomes]
        return outcomes


def test_trials_and_final_runs_come_back_under_their_own_keys():
    executor = RecordingExecutor()
    store = InMemoryStorage()
    search(
        TINY, "random", SyntheticObjective(), Budget(trials=4), storage=store,
        executor=executor, batch=2, final=Final(top=2, seeds=3), progress=False,
    )  # fmt: skip
    trials = sorted(t.number for t in store.get_all_trials())
    runs = sorted(r.id for r in store.get_final_runs())
    assert len(runs) == 6  # 2 finalists on 3 fresh seeds
    assert sorted(executor.answered) == sorted(
        [JobKey(TRIAL, n) for n in trials] + [JobKey(FINAL, i) for i in runs]
    )
    assert all(k.id >= 0 for k in executor.answered)
    finals = [keys for keys in executor.sent if keys[0].kind == FINAL]
    assert all(len(keys) == 2 and {k.kind for k in keys} == {FINAL} for keys in finals)
    assert executor.sent.index(finals[0]) > max(  # the final stage runs after the search
        i for i, keys in enumerate(executor.sent) if keys[0].kind == TRIAL
    )


def test_a_bare_trial_number_is_a_trial_key():
    job = Job(3, {"nodes": [], "links": []}, seed=1)
    assert job.key == JobKey(TRIAL, 3) and job.keys == (JobKey(TRIAL, 3),)
    assert str(job.key) == "trial 3" and str(JobKey(FINAL, 0)) == "final run 0"
