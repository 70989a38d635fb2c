"""Built-in logger callbacks: TensorBoard event files and MLflow runs, one entry per trial."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from autometa.errors import ConfigurationError
from autometa.experiment._callbacks import Callback
from autometa.experiment._logged import evaluator_settings, final_table, hyperparameters, summary
from autometa.experiment.trial import TrialRecord, TrialState
from autometa.graph import to_dot

__all__ = ["MLflowCallback", "TensorBoardCallback"]


def _series(trial: TrialRecord, key: str) -> list[float]:
    """``trial.metrics[key]`` as a list of finite floats (empty when absent or not a list)."""
    values = trial.metrics.get(key)
    if not isinstance(values, (list, tuple)):
        return []
    out = []
    for value in values:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isfinite(value):
                out.append(float(value))
    return out


def _param_count(trial: TrialRecord) -> float | None:
    """The candidate's parameter count, from its objectives or its metrics."""
    value = trial.objectives.get("params", trial.metrics.get("params"))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _dot(trial: TrialRecord) -> str:

    return to_dot(trial.graph, name=f"trial_{trial.number}")


def _best_score(search: Any) -> float | None:
    """The best search score so far (during the search the final stage has not run, so the
    best by the one rule is the best search score)."""
    best = search.best()
    return None if best is None else float(best.score)


class TensorBoardCallback(Callback):
    """Write each finished trial to TensorBoard event files under ``log_dir``.

    Per trial, at step = trial number: ``trial/score`` (DONE trials' search score),
    ``trial/best_search_score`` (the best search score so far), ``trial/params``
    (parameter count) and ``trial/wall_time``;
    one series per trial for the returns by adaptation step (``returns/trial_<n>``, step =
    adaptation step) and the meta-training curve (``curves/trial_<n>``, step =
    meta-iteration); a text entry ``trials/trial_<n>`` with the state, the decision values,
    the error of a failed trial and the graph in DOT; and, for DONE trials, an HParams entry
    (sub-folder ``trial_<n>``) so TensorBoard's HParams tab compares the decision values
    (and every hyperparameter, fixed ones included) against the score. At the end of the
    search: ``best/value``, ``best/search_score``, ``best/final_mean`` and ``best/trial``
    for the best by the one rule of ``docs/scoring.md`` (the final stage's winner once it is
    complete), and the text entries ``search/summary`` (the best with its label, the stop
    reason, the evaluator's settings, the best's hyperparameters, the final table and
    verdict) and ``final/verdict``. Events are flushed after every trial, so a killed search
    loses none. Needs the ``tensorboard`` extra (``pip install 'autometa-nas[tensorboard]'``).

    Args:
        log_dir: the folder of the event files (created if missing); point TensorBoard at
            it with ``tensorboard --logdir DIR``.

    Raises:
        ImportError: tensorboard is not installed.
    """

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise ImportError(
                "TensorBoardCallback needs tensorboard: pip install 'autometa-nas[tensorboard]'"
            ) from exc
        self.log_dir = Path(log_dir)
        self._writer_class = SummaryWriter
        self._writer: Any = None

    def __repr__(self) -> str:
        return f"TensorBoardCallback({str(self.log_dir)!r})"

    def _open(self) -> Any:
        if self._writer is None:
            self._writer = self._writer_class(log_dir=str(self.log_dir))
        return self._writer

    def on_trial_end(self, search: Any, trial: TrialRecord) -> None:
        """Log the trial's scalars, curves, description and hyperparameters."""
        writer, n = self._open(), trial.number
        if trial.state == TrialState.DONE and trial.score is not None:
            writer.add_scalar("trial/score", trial.score, n)
        best = _best_score(search)
        if best is not None:
            writer.add_scalar("trial/best_search_score", best, n)
        params = _param_count(trial)
        if params is not None:
            writer.add_scalar("trial/params", params, n)
        if trial.wall_time is not None:
            writer.add_scalar("trial/wall_time", trial.wall_time, n)
        for step, value in enumerate(_series(trial, "returns_by_step")):
            writer.add_scalar(f"returns/trial_{n}", value, step)
        for step, value in enumerate(_series(trial, "learning_curve")):
            writer.add_scalar(f"curves/trial_{n}", value, step)
        writer.add_text(f"trials/trial_{n}", self._describe(trial), n)
        if trial.state == TrialState.DONE and trial.score is not None:
            values = {**hyperparameters(trial), **trial.values}
            hparams = {k: _hparam(v) for k, v in values.items()}
            writer.add_hparams(hparams, {"hparam/score": trial.score}, run_name=f"trial_{n}")
        writer.flush()

    def on_search_end(self, result: Any) -> None:
        """Log the stop reason and the best trial, and close the event file."""
        writer, step = self._open(), len(result.trials)
        info = result.best_info
        if info is not None:
            writer.add_scalar("best/value", info.value, step)
            writer.add_scalar("best/search_score", info.search_score, step)
            if info.final_mean is not None:
                writer.add_scalar("best/final_mean", info.final_mean, step)
            writer.add_scalar("best/trial", info.number, step)
        writer.add_text("search/summary", summary(result), step)
        table = final_table(result)
        if table:
            writer.add_text("final/verdict", table, step)
        writer.close()
        self._writer = None

    @staticmethod
    def _describe(trial: TrialRecord) -> str:
        """Markdown: state, score, values, error and the graph as an indented DOT block."""
        lines = [f"**{trial.state.name}**, score {trial.score}", ""]
        lines += [f"- `{key}`: `{value}`" for key, value in trial.values.items()]
        if trial.error:
            lines += ["", f"error: `{trial.error}`"]
        lines += ["", *("    " + line for line in _dot(trial).splitlines())]
        return "\n".join(lines)


def _hparam(value: Any) -> bool | int | float | str:
    """A decision value as TensorBoard's HParams accepts it (lists and None as text)."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value)


class MLflowCallback(Callback):
    """Log each finished trial as an MLflow run, nested under one parent run per session.

    Each trial run holds the decision values as params, the metrics ``score``, ``params``
    (parameter count) and ``wall_time``, the series ``returns_by_step`` (step = adaptation
    step) and ``learning_curve`` (step = meta-iteration), tags ``autometa.state`` and
    ``autometa.key``, and the graph as the artifacts ``graph.dot`` and ``graph.json``. Its
    status is FINISHED for a DONE trial, FAILED for a failed one and KILLED for a pruned one.
    Each trial run's params also hold every hyperparameter it was evaluated with (``hp.*``,
    fixed ones included). The parent run (named after the study) holds the evaluator's
    settings as params (``evaluator.*``), logs ``best_search_score`` at step = trial number
    and, at the end, the best by the one rule of ``docs/scoring.md`` (the final stage's
    winner once it is complete): metrics ``best_value`` (the number that made it best),
    ``best_trial_search_score``, ``best_final_mean``, tags ``autometa.best_trial``,
    ``autometa.best`` (the label saying which score made it best) and ``autometa.verdict``,
    and the artifact ``summary.md`` (settings, final table, verdict); it ends FINISHED with
    the search. Needs the ``mlflow`` extra
    (``pip install 'autometa-nas[mlflow]'``, which installs ``mlflow-skinny`` with SQLite
    support).

    Args:
        tracking_uri: where runs go: ``sqlite:///runs/mlflow.db``, an MLflow server
            ``http://host:5000``, ...; None uses MLflow's default (``MLFLOW_TRACKING_URI``).
        experiment_name: the MLflow experiment (created if missing).
        artifact_location: where a newly created experiment stores artifacts; None uses
            the tracking server's default.

    Raises:
        ImportError: mlflow is not installed.
        ConfigurationError: MLflow refuses the tracking URI (e.g. a folder: MLflow 3 needs
            a database or a server).
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        experiment_name: str = "autometa",
        artifact_location: str | None = None,
    ) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as exc:
            raise ImportError(
                "MLflowCallback needs mlflow: pip install 'autometa-nas[mlflow]'"
            ) from exc
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.artifact_location = artifact_location
        try:  # opens the tracking store: a URI MLflow refuses stops the search before it starts
            self._client = MlflowClient(tracking_uri=tracking_uri)
        except Exception as exc:  # noqa: BLE001 - MLflow raises several kinds
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigurationError(
                f"MLflowCallback: tracking URI {tracking_uri!r} refused: {first}"
            ) from exc
        self._experiment: str | None = None
        self._parent: str | None = None

    def __repr__(self) -> str:
        return f"MLflowCallback({self.tracking_uri!r}, {self.experiment_name!r})"

    def _start(self, storage: Any) -> tuple[Any, str, str]:
        """The client, the experiment id and the parent run id (created on first use)."""
        client = self._client
        if self._experiment is None:
            found = client.get_experiment_by_name(self.experiment_name)
            if found is None:
                self._experiment = client.create_experiment(
                    self.experiment_name, artifact_location=self.artifact_location
                )
            else:
                self._experiment = found.experiment_id
        experiment = self._experiment
        if self._parent is None:
            study = storage.get_study()
            name = f"{study.space_name}-{study.strategy}-seed{study.seed}" if study else "search"
            tags = {"autometa.storage": str(storage)}
            run = client.create_run(experiment, run_name=name, tags=tags)
            self._parent = run.info.run_id
            if study is not None:
                params = _params({
                    "space": study.space_name, "strategy": study.strategy, "seed": study.seed,
                    **{f"strategy.{k}": v for k, v in study.strategy_options.items()},
                    **evaluator_settings(study),
                })  # fmt: skip
                for start in range(0, len(params), 100):  # MLflow's batch limit
                    client.log_batch(self._parent, params=params[start : start + 100])
        return client, experiment, self._parent

    def on_trial_end(self, search: Any, trial: TrialRecord) -> None:
        """Log the trial as a child run of this session's parent run."""
        from mlflow.entities import Metric

        client, experiment, parent = self._start(search.storage)
        stamp = int(time.time() * 1000)
        tags = {
            "mlflow.parentRunId": parent,
            "autometa.state": trial.state.name,
            "autometa.key": trial.key,
        }
        if trial.error:
            tags["autometa.error"] = trial.error[:5000]
        run = client.create_run(experiment, run_name=f"trial {trial.number}", tags=tags)
        run_id = run.info.run_id
        metrics = []
        scalars = {"score": trial.score, "params": _param_count(trial)}
        for key, value in {**scalars, "wall_time": trial.wall_time}.items():
            if value is not None and math.isfinite(value):
                metrics.append(Metric(key, float(value), stamp, 0))
        for key in ("returns_by_step", "learning_curve"):
            metrics += [Metric(key, v, stamp, i) for i, v in enumerate(_series(trial, key))]
        for start in range(0, len(metrics), 1000):  # MLflow's batch limit
            client.log_batch(run_id, metrics=metrics[start : start + 1000])
        params = _params({**hyperparameters(trial), **trial.values})
        for start in range(0, len(params), 100):
            client.log_batch(run_id, params=params[start : start + 100])
        client.log_text(run_id, _dot(trial), "graph.dot")
        client.log_dict(run_id, trial.graph_json, "graph.json")
        status = {TrialState.DONE: "FINISHED", TrialState.FAILED: "FAILED"}
        client.set_terminated(run_id, status.get(trial.state, "KILLED"))
        best = _best_score(search)
        if best is not None:
            client.log_metric(parent, "best_search_score", best, stamp, trial.number)

    def on_search_end(self, result: Any) -> None:
        """Log the best trial and the stop reason on the parent run and end it."""
        client, _, parent = self._start(result.storage)
        info = result.best_info
        if info is not None:
            client.log_metric(parent, "best_value", float(info.value))
            client.log_metric(parent, "best_trial_search_score", float(info.search_score))
            if info.final_mean is not None:
                client.log_metric(parent, "best_final_mean", float(info.final_mean))
            client.set_tag(parent, "autometa.best_trial", str(info.number))
            client.set_tag(parent, "autometa.best", info.label)
        if result.verdict is not None:
            client.set_tag(parent, "autometa.verdict", result.verdict.sentence()[:5000])
        client.log_text(parent, summary(result), "summary.md")
        client.set_tag(parent, "autometa.stop_reason", str(result.stop_reason))
        client.set_terminated(parent, "FINISHED")
        self._parent = None


def _params(values: dict[str, Any]) -> list[Any]:
    """Decision values as MLflow params (text, at most MLflow's 6000 characters)."""
    from mlflow.entities import Param

    out = []
    for key, value in values.items():
        text = value if isinstance(value, str) else json.dumps(value)
        out.append(Param(str(key), text[:6000]))
    return out
