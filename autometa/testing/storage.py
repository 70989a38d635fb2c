"""Conformance suite for study storages, shipped for third-party backends.

Subclass :class:`StorageTestCase` in a pytest module and provide a ``storage`` fixture that
returns a fresh, empty storage (and, for backends that persist, a ``reopen`` fixture that
opens the same study again, e.g. from another connection)::

    class TestMine(StorageTestCase):
        @pytest.fixture
        def storage(self, tmp_path):
            return MyStorage(tmp_path / "study")

Every test checks one clause of the :class:`~autometa.experiment.storage.BaseStorage`
contract.
"""

from __future__ import annotations

import math
import os
import re
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
import torch

from autometa.errors import StorageError, StudyInUseError, StudyTakenOverError
from autometa.experiment.storage.base import (
    HEARTBEAT_SECONDS,
    STALE_AFTER_HEARTBEATS,
    BaseStorage,
    decode_training_state,
    encode_training_state,
    encode_weights,
)
from autometa.experiment.trial import FinalRun, StudyInfo, TrialRecord, TrialState, trial_seed

__all__ = ["StorageTestCase", "make_study", "make_trial"]


def make_study(space_hash: str = "0" * 64, seed: int = 7, **changes: Any) -> StudyInfo:
    """A small study record for storage tests."""
    fields: dict[str, Any] = dict(
        space_name="test",
        space_hash=space_hash,
        space_spec={"name": "test", "graph": {"kind": "chain"}},
        space_source="spaces/test.yaml",
        space_text="name: test\n",
        strategy="random",
        strategy_options={"population": 4},
        evaluator={"target": "x:Y", "config": {"meta_iterations": 3}},
        seed=seed,
        settings={"budget": {"trials": 5}},
        versions={"autometa": "0", "python": "3"},
    )
    fields.update(changes)
    return StudyInfo(**fields)


def make_trial(key: str = "k0", **changes: Any) -> TrialRecord:
    """A QUEUED trial record (number and seed are assigned by storage)."""
    graph = {"directed": True, "graph": {}, "nodes": [{"id": "input"}], "edges": []}
    fields: dict[str, Any] = dict(
        number=-1,
        state=TrialState.QUEUED,
        key=key,
        graph_json=graph,
        values={"layers": 2, "hp.fast_lr": 0.1},
        candidate_id=3,
    )
    fields.update(changes)
    return TrialRecord(**fields)


class StorageTestCase:
    """The storage contract as pytest tests; subclasses provide a ``storage`` fixture."""

    @pytest.fixture
    def storage(self) -> BaseStorage:  # pragma: no cover - replaced by subclasses
        raise NotImplementedError("provide a `storage` fixture returning an empty storage")

    @pytest.fixture
    def reopen(self, storage: BaseStorage) -> Callable[[], BaseStorage]:
        """Opens the same study again; the default hands back the same object."""
        return lambda: storage

    @pytest.fixture
    def study(self, storage: BaseStorage) -> BaseStorage:
        storage.create_study(make_study())
        return storage

    # -- study ---------------------------------------------------------------------------

    def test_empty_storage_has_no_study(self, storage: BaseStorage) -> None:
        assert storage.get_study() is None
        assert storage.get_all_trials() == []
        assert storage.get_strategy_state() is None

    def test_study_round_trip(self, study: BaseStorage, reopen: Callable[[], BaseStorage]) -> None:
        stored = reopen().get_study()
        expected = make_study()
        assert stored is not None and stored.created is not None
        assert stored.to_dict() == {**expected.to_dict(), "created": stored.created}

    def test_second_study_refused(self, study: BaseStorage) -> None:
        with pytest.raises(StorageError, match="already holds a study"):
            study.create_study(make_study())

    def test_open_study_checks_space_hash(self, study: BaseStorage) -> None:
        assert study.open_study(make_study()).space_hash == "0" * 64
        other = make_study(space_hash="1" * 64, space_source="spaces/other.yaml")
        message = (
            f"{study}: the study was created for space 'test' (hash {'0' * 64}, from "
            f"spaces/test.yaml), not space 'test' (hash {'1' * 64}, from spaces/other.yaml); "
            "use another storage for another space"
        )
        with pytest.raises(StorageError, match=f"^{re.escape(message)}$"):
            study.open_study(other)

    def test_update_settings(self, study: BaseStorage, reopen: Callable[[], BaseStorage]) -> None:
        study.update_study_settings({"budget": {"trials": 9}, "workers": 2})
        assert reopen().get_study().settings == {"budget": {"trials": 9}, "workers": 2}

    def test_trials_need_a_study(self, storage: BaseStorage) -> None:
        with pytest.raises(StorageError, match="holds no study yet"):
            storage.create_trials([make_trial()])

    # -- trials --------------------------------------------------------------------------

    def test_numbers_and_seeds_assigned(self, study: BaseStorage) -> None:
        first = study.create_trials([make_trial("a"), make_trial("b", number=99, seed=5)])
        second = study.create_trials([make_trial("c")])
        assert [t.number for t in first + second] == [0, 1, 2]
        assert [t.seed for t in first + second] == [trial_seed(7, n) for n in range(3)]
        assert [t.key for t in study.get_all_trials()] == ["a", "b", "c"]
        assert all(t.created is not None for t in first + second)

    def test_trial_round_trip(self, study: BaseStorage, reopen: Callable[[], BaseStorage]) -> None:
        (created,) = study.create_trials([make_trial(rung=0, bracket=2)])
        stored = reopen().get_trial(created.number)
        assert stored == created
        assert stored.state is TrialState.QUEUED
        assert stored.values == {"layers": 2, "hp.fast_lr": 0.1}
        assert (stored.candidate_id, stored.rung, stored.bracket) == (3, 0, 2)

    def test_records_are_copies(self, study: BaseStorage) -> None:
        (trial,) = study.create_trials([make_trial()])
        trial.values["layers"] = 99
        trial.metrics["x"] = 1
        later = study.update_trial(0, state=TrialState.RUNNING)
        assert study.get_trial(0).values == {"layers": 2, "hp.fast_lr": 0.1}
        assert trial.state is TrialState.QUEUED and later.state is TrialState.RUNNING
        with pytest.raises(AttributeError):
            later.state = TrialState.DONE  # type: ignore[misc]

    def test_update_and_finish(
        self, study: BaseStorage, reopen: Callable[[], BaseStorage]
    ) -> None:
        study.create_trials([make_trial()])
        study.update_trial(0, state=TrialState.RUNNING, started=1.0, device="cpu")
        done = study.finish_trial(
            0, TrialState.DONE, score=1.5, objectives={"params": 10.0},
            metrics={"curve": [1.0, 2.0]}, fidelity=5, wall_time=0.5,
        )  # fmt: skip
        again = reopen().get_trial(0)
        assert again == done
        assert (again.state, again.score, again.fidelity, again.device) == (
            TrialState.DONE, 1.5, 5, "cpu",
        )  # fmt: skip
        assert again.metrics == {"curve": [1.0, 2.0]} and again.finished is not None

    def test_nan_score_stored_as_none(self, study: BaseStorage) -> None:
        study.create_trials([make_trial(), make_trial("b")])
        failed = study.finish_trial(0, TrialState.FAILED, score=math.nan, error="nan in loss")
        assert failed.score is None and failed.error == "nan in loss"
        assert study.update_trial(1, score=math.inf).score is None

    def test_finished_trials_are_immutable(self, study: BaseStorage) -> None:
        study.create_trials([make_trial()])
        study.finish_trial(0, TrialState.FAILED, error="boom")
        message = "trial 0 is finished (FAILED); it cannot be changed"
        with pytest.raises(StorageError, match=f"^{re.escape(message)}$"):
            study.update_trial(0, state=TrialState.QUEUED)
        assert study.get_trial(0).state is TrialState.FAILED

    def test_unknown_trial_raises_key_error(self, study: BaseStorage) -> None:
        with pytest.raises(KeyError):
            study.get_trial(0)
        with pytest.raises(KeyError):
            study.update_trial(3, state=TrialState.RUNNING)
        with pytest.raises(KeyError):
            study.get_weights_bytes(0)

    def test_identity_fields_not_updatable(self, study: BaseStorage) -> None:
        study.create_trials([make_trial()])
        with pytest.raises(TypeError, match="cannot change \\['key'\\]"):
            study.update_trial(0, key="other")

    def test_finish_needs_finished_state(self, study: BaseStorage) -> None:
        study.create_trials([make_trial()])
        with pytest.raises(ValueError, match="`state` must be a finished state, got RUNNING"):
            study.finish_trial(0, TrialState.RUNNING)

    def test_filter_by_state_and_counts(self, study: BaseStorage) -> None:
        study.create_trials([make_trial(str(i)) for i in range(4)])
        study.update_trial(1, state=TrialState.RUNNING)
        study.finish_trial(2, TrialState.DONE, score=0.3)
        study.finish_trial(3, TrialState.PRUNED, score=0.1)
        running = study.get_all_trials([TrialState.RUNNING])
        assert [t.number for t in running] == [1]
        assert [t.number for t in study.get_all_trials([TrialState.DONE, TrialState.PRUNED])] == [
            2, 3,
        ]  # fmt: skip
        counts = study.count_states()
        assert counts == {TrialState.QUEUED: 1, TrialState.RUNNING: 1, TrialState.DONE: 1,
                          TrialState.FAILED: 0, TrialState.PRUNED: 1}  # fmt: skip

    def test_requeue_unfinished(self, study: BaseStorage) -> None:
        study.create_trials([make_trial("a"), make_trial("b")])
        study.update_trial(0, state=TrialState.RUNNING, started=2.0)
        requeued = study.requeue_unfinished()
        assert [t.number for t in requeued] == [0]
        assert study.get_trial(0).state is TrialState.QUEUED and study.get_trial(0).started is None

    def test_leaderboard_and_best(self, study: BaseStorage) -> None:
        study.create_trials([make_trial(str(i)) for i in range(4)])
        study.finish_trial(0, TrialState.DONE, score=0.5)
        study.finish_trial(1, TrialState.FAILED, error="x")
        study.finish_trial(2, TrialState.DONE, score=0.9)
        assert [t.number for t in study.leaderboard()] == [2, 0, 1, 3]
        assert study.get_best_trial().number == 2

    def test_no_best_without_done(self, study: BaseStorage) -> None:
        study.create_trials([make_trial()])
        assert study.get_best_trial() is None

    # -- strategy state, weights, sessions -----------------------------------------------

    def test_strategy_state_with_writes(
        self, study: BaseStorage, reopen: Callable[[], BaseStorage]
    ) -> None:
        study.create_trials([make_trial()], strategy_state={"log": [["ask", 1]]})
        assert reopen().get_strategy_state() == {"log": [["ask", 1]]}
        study.finish_trial(0, TrialState.DONE, score=1.0, strategy_state={"log": [["tell", 0]]})
        assert reopen().get_strategy_state() == {"log": [["tell", 0]]}

    def test_failed_write_changes_nothing(self, study: BaseStorage) -> None:
        study.create_trials([make_trial()], strategy_state={"v": 1})
        with pytest.raises(TypeError):
            study.update_trial(0, strategy_state={"v": 2}, bogus=1)
        assert study.get_strategy_state() == {"v": 1}

    def test_weights_round_trip(
        self, study: BaseStorage, reopen: Callable[[], BaseStorage]
    ) -> None:
        study.create_trials([make_trial(), make_trial("b")])
        weights = {"layer.weight": torch.arange(6.0).reshape(2, 3), "log_std": torch.zeros(2)}
        study.finish_trial(0, TrialState.DONE, score=1.0, weights=encode_weights(weights))
        loaded = reopen().load_weights(0)
        assert set(loaded) == set(weights)
        assert all(torch.equal(loaded[k], weights[k]) for k in weights)
        assert study.load_weights(1) is None
        assert reopen().load_step_sizes(0) is None

    def test_step_sizes_travel_with_the_weights(
        self, study: BaseStorage, reopen: Callable[[], BaseStorage]
    ) -> None:
        study.create_trials([make_trial()])
        weights = {"layer.weight": torch.arange(6.0).reshape(2, 3), "log_std": torch.zeros(2)}
        steps = {"layer.weight": torch.full((2, 3), 0.1), "log_std": torch.tensor([0.2, 0.3])}
        study.finish_trial(0, TrialState.DONE, score=1.0, weights=encode_weights(weights, steps))
        loaded, loaded_steps = reopen().load_weights(0), reopen().load_step_sizes(0)
        assert set(loaded) == set(weights) and set(loaded_steps) == set(steps)
        assert all(torch.equal(loaded[k], weights[k]) for k in weights)
        assert all(torch.equal(loaded_steps[k], steps[k]) for k in steps)

    def test_training_state_lives_until_the_trial_finishes(
        self, study: BaseStorage, reopen: Callable[[], BaseStorage]
    ) -> None:
        study.create_trials([make_trial()])
        state = {"meta.w": torch.arange(4.0), "counters": torch.tensor([1, 2, 3])}
        study.update_trial(0, fidelity=1, training_state=encode_training_state(state))
        data = reopen().get_training_state_bytes(0)
        assert data is not None
        loaded = decode_training_state(data)
        assert set(loaded) == set(state)
        assert all(torch.equal(loaded[k], state[k]) for k in state)
        study.finish_trial(0, TrialState.PRUNED, score=1.0)
        assert reopen().get_training_state_bytes(0) is None

    def test_sessions_add_up(self, storage: BaseStorage) -> None:
        first = storage.start_session()
        assert storage.touch_session(first, ended=True) is True
        second = storage.start_session()
        assert second != first
        assert storage.touch_session(second) is True
        assert storage.elapsed_seconds() >= 0.0
        with pytest.raises(KeyError):
            storage.touch_session(second + 100)
        session = storage.get_sessions()[-1]
        assert (session.id, session.host, session.pid) == (
            second,
            socket.gethostname(),
            os.getpid(),
        )
        assert session.heartbeat == HEARTBEAT_SECONDS and session.ended is None

    def test_a_live_session_refuses_another(
        self, study: BaseStorage, reopen: Callable[[], BaseStorage]
    ) -> None:
        holder = study.start_session(heartbeat=60.0)
        other = reopen()
        with pytest.raises(StudyInUseError) as info:
            other.start_session()
        started = study.get_sessions()[-1].started
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))
        where = str(getattr(other, "path", other))
        assert re.fullmatch(
            f"{re.escape(where)} is in use by pid {os.getpid()} on "
            f"{re.escape(socket.gethostname())} since {since} "
            r"\(last heartbeat \d+\.\d s ago\); wait for it to end, or if that process is gone, "
            r"run again in 1\d\d s or with --take-over \(take_over=True in Python\)",
            str(info.value),
        )
        assert [s.id for s in study.get_sessions()] == [holder]  # the refusal wrote nothing
        assert study.live_session().id == holder  # type: ignore[union-attr]

    def test_a_stale_session_is_ended_and_its_trials_requeued(
        self, study: BaseStorage, reopen: Callable[[], BaseStorage]
    ) -> None:
        study.create_trials([make_trial("a"), make_trial("b")])
        old = study.start_session(heartbeat=0.01)
        study.update_trial(1, state=TrialState.RUNNING, started=2.0)
        time.sleep(STALE_AFTER_HEARTBEATS * 0.01 + 0.02)
        assert study.live_session() is None
        new = reopen().start_session()
        assert study.get_trial(1).state is TrialState.QUEUED and study.get_trial(1).started is None
        assert study.touch_session(old) is False  # it was ended by the claim: nothing written
        assert [s.ended is None for s in study.get_sessions()] == [False, True]
        assert study.live_session().id == new  # type: ignore[union-attr]

    def test_take_over_ends_a_live_session(
        self, study: BaseStorage, reopen: Callable[[], BaseStorage]
    ) -> None:
        holder = study.start_session(heartbeat=60.0)
        taker = reopen().start_session(take_over=True)
        assert study.touch_session(holder) is False
        assert study.touch_session(holder, ended=True) is False
        assert study.touch_session(taker) is True

    def test_writes_of_a_taken_over_session_are_refused(
        self, study: BaseStorage, reopen: Callable[[], BaseStorage]
    ) -> None:
        study.create_trials([make_trial()])
        study.start_session(heartbeat=60.0)
        other = reopen()
        if other is study:
            pytest.skip("one object per study: there is no second holder to fence")
        taker = other.start_session(take_over=True)
        with pytest.raises(StudyTakenOverError) as info:
            study.update_trial(0, state=TrialState.RUNNING)
        assert info.value.session == taker and f"taken over by session {taker} " in str(info.value)
        with pytest.raises(StudyTakenOverError):
            study.create_trials([make_trial("k1")])
        assert [t.state for t in other.get_all_trials()] == [TrialState.QUEUED]
        assert other.update_trial(0, state=TrialState.RUNNING).state == TrialState.RUNNING

    # -- final stage ---------------------------------------------------------------------

    def test_a_final_run_lost_with_its_worker_may_be_retried(self, study: BaseStorage) -> None:
        graph = make_trial().graph_json
        runs = [FinalRun(-1, "trial 0", "finalist", 0, "k0", graph, i, 10 + i) for i in range(3)]
        assert [r.id for r in study.create_final_runs(runs)] == [0, 1, 2]
        study.update_final_run(0, state=TrialState.FAILED, error="worker died (signal 9)",
                               finished=1.0)  # fmt: skip
        again = study.update_final_run(0, state=TrialState.QUEUED, attempts=1)
        assert (again.state, again.error, again.finished, again.attempts) == (
            TrialState.QUEUED, None, None, 1,
        )  # fmt: skip
        study.update_final_run(1, state=TrialState.FAILED, error="out of memory: worker "
                               "killed by the OS (signal 9) at ~3.0 GiB resident")  # fmt: skip
        study.update_final_run(2, state=TrialState.DONE, score=1.0)
        for run_id, state in ((1, "FAILED"), (2, "DONE")):
            with pytest.raises(StorageError) as info:
                study.update_final_run(run_id, state=TrialState.QUEUED)
            message = f"final run {run_id} is finished ({state}); it cannot be changed"
            assert str(info.value) == message
        assert [r.state for r in study.get_final_runs()] == [
            TrialState.QUEUED, TrialState.FAILED, TrialState.DONE,
        ]  # fmt: skip
