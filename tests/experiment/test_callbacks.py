"""Search callbacks: when they are called, a raising one is disabled, TensorBoard and MLflow."""

from __future__ import annotations

import json
import logging
import math

import pytest
from _scripted_evaluators import Scripted

from autometa.errors import ConfigurationError
from autometa.experiment import (
    Budget,
    Callback,
    MLflowCallback,
    SuccessiveHalving,
    TensorBoardCallback,
    TrialState,
    search,
    trial_seed,
)
from autometa.meta.synthetic import SyntheticObjective
from autometa.space import shipped_spaces

RETURNS = [-3.0, -2.0, -1.5]
CURVE = [-9.0, -6.0, -4.0, -3.5]


class CurveObjective(SyntheticObjective):
    """Synthetic scores plus the curves a MAML evaluation reports."""

    def __call__(self, graph, **kw):
        result = super().__call__(graph, **kw)
        result.metrics["returns_by_step"] = [*RETURNS, result.score]
        result.metrics["learning_curve"] = list(CURVE)
        return result


class Recorder(Callback):
    """Keeps what it is told."""

    def __init__(self):
        self.trials = []
        self.best = []
        self.results = []

    def on_trial_end(self, search, trial):
        self.trials.append((trial.number, trial.state))
        best = search.best()
        self.best.append(None if best is None else best.score)

    def on_search_end(self, result):
        self.results.append(result)


class Boom(Callback):
    """Raises on every call."""

    def __init__(self):
        self.calls = 0

    def on_trial_end(self, search, trial):
        self.calls += 1
        raise RuntimeError("logger down")

    def on_search_end(self, result):
        self.calls += 1
        raise RuntimeError("logger down")


def run(storage, callbacks, trials=4, evaluator=None):
    """The tiny space, inline, without the final stage."""
    return search(
        "tiny",
        evaluator=evaluator or SyntheticObjective(),
        budget=Budget(trials=trials),
        storage=storage,
        workers=0,
        progress=False,
        final=False,
        callbacks=callbacks,
    )


def test_each_finished_trial_once_and_the_end_once_resume_replays_nothing(tmp_path):
    fail = trial_seed(0, 1)
    first = Recorder()
    result = run(tmp_path / "s.db", [first], evaluator=Scripted({fail: "raise"}))
    assert [n for n, _ in first.trials] == [0, 1, 2, 3]
    assert dict(first.trials)[1] == TrialState.FAILED
    assert {state for n, state in first.trials if n != 1} == {TrialState.DONE}
    done = [t.score for t in sorted(result.trials, key=lambda t: t.number) if t.has_score]
    assert first.best[-1] == max(done)
    assert [r.stop_reason for r in first.results] == [result.stop_reason]
    again = Recorder()
    run(tmp_path / "s.db", [again], trials=6, evaluator=Scripted({fail: "raise"}))
    assert [n for n, _ in again.trials] == [4, 5]
    assert len(again.results) == 1 and len(again.results[0].trials) == 6


def test_pruned_trials_are_reported_once_each(tmp_path):
    recorder = Recorder()
    result = search(
        shipped_spaces()["dag_cell"],
        evaluator=SyntheticObjective(full_fidelity=90),
        budget=Budget(trials=9),
        storage=tmp_path / "s.db",
        workers=0,
        progress=False,
        final=False,
        fidelity=SuccessiveHalving(10, 90, eta=3),
        callbacks=[recorder],
    )
    assert result.counts["DONE"] == 1 and result.counts["PRUNED"] == 8
    assert sorted(n for n, _ in recorder.trials) == list(range(9))
    assert {n: s for n, s in recorder.trials} == {t.number: t.state for t in result.trials}


def test_a_raising_callback_is_logged_once_and_disabled(tmp_path, caplog):
    boom, recorder = Boom(), Recorder()
    with caplog.at_level(logging.WARNING, logger="autometa.experiment"):
        result = run(tmp_path / "s.db", [boom, recorder])
    assert len(result.trials) == 4
    assert boom.calls == 1
    assert [n for n, _ in recorder.trials] == [0, 1, 2, 3] and len(recorder.results) == 1
    warnings = [r for r in caplog.records if "callback" in r.getMessage()]
    assert [r.getMessage() for r in warnings] == [
        "callback Boom raised in on_trial_end; it is disabled for the rest of the search"
    ]
    assert warnings[0].levelno == logging.WARNING
    assert "RuntimeError: logger down" in caplog.text  # the traceback is logged with it


def test_callbacks_must_be_callback_instances(tmp_path):
    with pytest.raises(ConfigurationError) as info:
        run(tmp_path / "s.db", [print])
    assert str(info.value) == (
        "`callbacks` must be a list of autometa.experiment.Callback instances, "
        "got <built-in function print>"
    )
    assert not (tmp_path / "s.db").exists()


def test_tensorboard_event_files_hold_scores_curves_graph_and_hparams(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log_dir = tmp_path / "tb"
    result = run(tmp_path / "s.db", [TensorBoardCallback(log_dir)], evaluator=CurveObjective())
    trials = sorted(result.trials, key=lambda t: t.number)
    events = EventAccumulator(str(log_dir))
    events.Reload()
    scores = events.Scalars("trial/score")
    assert [e.step for e in scores] == [t.number for t in trials]
    assert [e.value for e in scores] == pytest.approx([t.score for t in trials], rel=1e-6)
    best = [e.value for e in events.Scalars("trial/best_search_score")]
    running = [max(t.score for t in trials[: i + 1]) for i in range(len(trials))]
    assert best == pytest.approx(running, rel=1e-6)
    params = [e.value for e in events.Scalars("trial/params")]
    assert params == [t.objectives["params"] for t in trials]
    for trial in trials:
        returns = events.Scalars(f"returns/trial_{trial.number}")
        assert [e.step for e in returns] == [0, 1, 2, 3]
        assert [e.value for e in returns] == pytest.approx([*RETURNS, trial.score], rel=1e-6)
        curve = events.Scalars(f"curves/trial_{trial.number}")
        assert [(e.step, e.value) for e in curve] == list(enumerate(CURVE))
    text = events.Tensors("trials/trial_0/text_summary")[0].tensor_proto.string_val[0].decode()
    assert text.startswith(f"**DONE**, score {trials[0].score}")
    assert '    digraph "trial_0" {' in text
    for key, value in trials[0].values.items():
        assert f"- `{key}`: `{value}`" in text
    summary = events.Tensors("search/summary/text_summary")[0].tensor_proto.string_val[0]
    info = result.best_info
    assert summary.decode().startswith(
        f"**trial {info.number}: best so far (search score) {info.search_score:.4g}**\n\n"
        f"- stopped: {result.stop_reason}\n"
    )
    assert [e.value for e in events.Scalars("best/value")] == pytest.approx([info.value])
    assert [e.value for e in events.Scalars("best/trial")] == [info.number]
    hparams = EventAccumulator(str(log_dir / "trial_0"))
    hparams.Reload()
    assert [e.value for e in hparams.Scalars("hparam/score")] == pytest.approx([trials[0].score])


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory):
    """One MLflow database for the module (creating its tables takes seconds)."""
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"
    MlflowClient(tracking_uri=uri).search_experiments()
    return uri


def test_mlflow_runs_hold_params_metrics_and_the_graph(tmp_path, mlflow_uri):
    from mlflow.tracking import MlflowClient

    uri = mlflow_uri
    logger = MLflowCallback(uri, "tiny-search", artifact_location=str(tmp_path / "artifacts"))
    result = run(tmp_path / "s.db", [logger], evaluator=CurveObjective())
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("tiny-search")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {r.info.run_name: r for r in runs if r not in parents}
    assert len(parents) == 1 and len(children) == 4
    parent = parents[0]
    assert parent.info.run_name == "tiny-random-seed0"
    assert parent.info.status == "FINISHED"
    params = parent.data.params
    assert {k: params[k] for k in ("space", "strategy", "seed")} == {
        "space": "tiny", "strategy": "random", "seed": "0"}  # fmt: skip
    assert params["evaluator.target"] == result.study.evaluator["target"]
    assert parent.data.metrics["best_value"] == pytest.approx(result.best.score)
    assert parent.data.tags["autometa.best_trial"] == str(result.best.number)
    assert parent.data.tags["autometa.best"] == "best so far (search score)"
    assert parent.data.tags["autometa.stop_reason"] == result.stop_reason
    best_history = client.get_metric_history(parent.info.run_id, "best_search_score")
    assert sorted(m.step for m in best_history) == [0, 1, 2, 3]
    for trial in result.trials:
        run_ = children[f"trial {trial.number}"]
        assert run_.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run_.data.tags["autometa.state"] == "DONE"
        assert run_.data.tags["autometa.key"] == trial.key
        assert run_.info.status == "FINISHED"
        hyper = {f"hp.{k}": v for k, v in trial.graph.graph["hyperparameters"].items()}
        values = {**hyper, **trial.values}  # fixed hyperparameters too, not only searched ones
        expected = {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
        assert run_.data.params == expected and "hp.inner_steps" in expected
        assert run_.data.metrics["score"] == pytest.approx(trial.score)
        assert run_.data.metrics["params"] == trial.objectives["params"]
        history = client.get_metric_history(run_.info.run_id, "returns_by_step")
        history = sorted(history, key=lambda m: m.step)
        assert [m.step for m in history] == [0, 1, 2, 3]
        assert [m.value for m in history] == pytest.approx([*RETURNS, trial.score])
        curve = client.get_metric_history(run_.info.run_id, "learning_curve")
        assert sorted((m.step, m.value) for m in curve) == list(enumerate(CURVE))
        folder = tmp_path / f"dl{trial.number}"
        folder.mkdir()
        client.download_artifacts(run_.info.run_id, "", str(folder))
        dot = (folder / "graph.dot").read_text()
        assert dot.startswith(f'digraph "trial_{trial.number}" {{')
        assert json.loads((folder / "graph.json").read_text()) == trial.graph_json


def test_mlflow_failed_trials_end_as_failed_runs_with_the_error(tmp_path, mlflow_uri):
    from mlflow.tracking import MlflowClient

    uri = mlflow_uri
    logger = MLflowCallback(uri, artifact_location=str(tmp_path / "artifacts"))
    result = run(
        tmp_path / "s.db", [logger], trials=2, evaluator=Scripted({trial_seed(0, 1): "raise"})
    )
    failed = next(t for t in result.trials if t.state == TrialState.FAILED)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("autometa")
    (run_,) = client.search_runs(
        [experiment.experiment_id], filter_string=f"attributes.run_name = 'trial {failed.number}'"
    )
    assert run_.info.status == "FAILED"
    assert run_.data.tags["autometa.error"] == failed.error
    assert "score" not in run_.data.metrics
    assert not math.isnan(run_.data.metrics["wall_time"])


def test_mlflow_refuses_a_folder_before_the_search_starts(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    folder = str(tmp_path / "mlruns")
    try:
        MlflowClient(tracking_uri=folder)
    except Exception as exc:  # noqa: BLE001 - MLflow's own wording, to compare with
        first = str(exc).strip().splitlines()[0]
    else:
        pytest.skip("this MLflow still accepts a folder as tracking store")
    with pytest.raises(ConfigurationError) as info:
        MLflowCallback(folder)
    assert str(info.value) == f"MLflowCallback: tracking URI {folder!r} refused: {first}"
