"""What the logger callbacks record beyond one trial's scores: the settings every trial
shared (the evaluator's, the hyperparameters a trial was evaluated with, fixed ones
included), the final stage's table and verdict, and the best by the one rule of
:mod:`autometa.experiment._best`."""

from __future__ import annotations

import json
import math
from typing import Any

from autometa.experiment.trial import TrialRecord

__all__ = ["evaluator_settings", "final_table", "hyperparameters", "summary"]


def _flatten(data: dict[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in sorted(data.items()):
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def evaluator_settings(study: Any) -> dict[str, Any]:
    """``evaluator.<dotted key>`` -> value: the evaluator the study last ran with and its
    settings (MAML's meta-batch size, iterations, test tasks, ...)."""
    if study is None:
        return {}
    described = dict(study.settings.get("evaluator") or study.evaluator or {})
    out = {"evaluator.target": described.get("target", "?")}
    config = described.get("config") or {}
    if isinstance(config.get("config"), dict):  # MAMLEvaluator: {"config": MAMLConfig}
        config = {**config, **config["config"]}
        config.pop("config")
    out.update(_flatten(config, "evaluator."))
    return out


def hyperparameters(trial: TrialRecord) -> dict[str, Any]:
    """``hp.<name>`` -> value: every hyperparameter the trial was evaluated with, the fixed
    ones of the space included (``trial.values`` holds only the searched ones)."""
    graph = trial.graph_json.get("graph") or {}
    hyper = graph.get("hyperparameters") or {}
    return {f"hp.{k}": v for k, v in sorted(hyper.items())}


def _num(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4f}"


def final_table(result: Any) -> str:
    """The final stage as Markdown: rank, entry, per-seed scores, mean and 95% interval,
    then the verdict sentence; empty without a final stage."""
    final = result.verdict
    if final is None:
        return ""
    ranks = final.ranks()
    lines = ["| rank | entry | per-seed scores | mean | 95% CI |", "|" + " --- |" * 5]
    for e in final.entries:
        seeds = ", ".join(_num(s) for s in e.scores)
        ci = f"[{_num(e.low)}, {_num(e.high)}]" if math.isfinite(e.low) else "-"
        mark = " (winner)" if final.winner is not None and e.label == final.winner.label else ""
        rank = ranks.get(e.label, "-")
        lines.append(f"| {rank} | {e.label}{mark} | {seeds} | {_num(e.mean)} | {ci} |")
    return "\n".join([*lines, "", final.sentence()])


def summary(result: Any) -> str:
    """Markdown for the end of a search: the best (with which score made it best), the stop
    reason, counts, the evaluator's settings, the final table and its verdict."""
    info = result.best_info
    lines = [
        f"**{info.describe()}**" if info is not None else "**best: none (no DONE trial)**",
        "",
        f"- stopped: {result.stop_reason}",
        f"- trials: {json.dumps(result.counts)}",
        "",
        "evaluator settings:",
        "",
        *[f"- {k}: {v}" for k, v in evaluator_settings(result.study).items()],
    ]
    if info is not None:
        hyper = hyperparameters(info.trial)
        if hyper:
            lines += ["", "the best trial's hyperparameters (fixed ones included):", ""]
            lines += [f"- {k}: {v}" for k, v in hyper.items()]
    table = final_table(result)
    if table:
        lines += ["", "final stage:", "", table]
    return "\n".join(lines)
