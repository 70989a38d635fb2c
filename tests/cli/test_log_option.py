"""``autometa search --log``: logging to TensorBoard and MLflow, kept by ``autometa resume``."""

from __future__ import annotations

import pytest

from autometa.cli import main
from autometa.experiment import SQLiteStorage, load_result

QUICK = ["tiny", "--objective", "synthetic", "--workers", "0", "--no-progress", "--final-top", "0"]


def _usage_error(argv, capsys):
    """Run the CLI; it must exit 2 and print exactly one line on stderr, which is returned."""
    try:
        code = main(argv)
    except SystemExit as exit_info:
        code = exit_info.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1, err
    return err.rstrip("\n")


@pytest.mark.parametrize("value", ["wandb:x", "tensorboard:", "mlflow", ":runs"])
def test_bad_log_values_stop_with_one_line(value, tmp_path, capsys):
    argv = ["search", *QUICK, "--storage", str(tmp_path / "s.db"), "--log", value]
    assert _usage_error(argv, capsys) == (
        f"autometa search: error: argument --log: expected tensorboard:DIR or mlflow:URI, "
        f"got {value!r}"
    )
    assert not (tmp_path / "s.db").exists()


def test_search_and_resume_log_to_tensorboard_and_mlflow(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.chdir(tmp_path)  # MLflow keeps artifacts under ./mlruns by default
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    storage = tmp_path / "s.db"
    logs = ["--log", f"tensorboard:{tmp_path / 'tb'}", "--log", f"mlflow:{uri}"]
    assert main(["search", *QUICK, "--trials", "3", "--storage", str(storage), *logs]) == 0
    store = SQLiteStorage(storage)
    try:
        recipe = store.get_study().settings["cli"]
    finally:
        store.close()
    assert recipe["log"] == [f"tensorboard:{tmp_path / 'tb'}", f"mlflow:{uri}"]
    assert main(["resume", str(storage), "--trials", "5", "--no-progress"]) == 0

    trials = sorted(load_result(storage).trials, key=lambda t: t.number)
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    scores = events.Scalars("trial/score")
    assert [e.step for e in scores] == [0, 1, 2, 3, 4]
    assert [e.value for e in scores] == pytest.approx([t.score for t in trials], rel=1e-6)

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("autometa")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [r.info.status for r in parents] == ["FINISHED", "FINISHED"]  # one per session
    children = {r.info.run_name: r for r in runs if r not in parents}
    assert sorted(children) == [f"trial {n}" for n in range(5)]
    for trial in trials:
        run = children[f"trial {trial.number}"]
        assert run.data.metrics["score"] == pytest.approx(trial.score)
        assert run.data.params["layers"] == str(trial.values["layers"])
