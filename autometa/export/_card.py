"""``card.md``: a human-readable summary of an exported architecture."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["render_card"]


def _num(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def _space(data: dict[str, Any]) -> str:
    if data["type"] == "Discrete":
        return f"Discrete({data['n']})"
    lows, highs = set(map(_num, data["low"])), set(map(_num, data["high"]))
    bounds = (
        f"[{lows.pop()}, {highs.pop()}]"
        if len(lows) == len(highs) == 1
        else "per-dimension bounds in model.json"
    )
    return f"Box(shape={tuple(data['shape'])}, {bounds})"


def _returns(metrics: dict[str, Any], seed: Any = None) -> list[str]:
    """Returns before and after each adaptation step (or just pre/post when that is all), of
    the seed whose weights are exported when ``seed`` is known."""
    rows = []
    steps = metrics.get("returns_by_step")
    if isinstance(steps, list | tuple) and steps:
        for i, value in enumerate(steps):
            label = "before adaptation" if i == 0 else f"after {i} step{'s' * (i > 1)}"
            rows.append(f"| {label} | {_num(value)} |")
    else:
        for key, label in (("pre_return", "before adaptation"), ("post_return", "after")):
            if isinstance(metrics.get(key), int | float):
                rows.append(f"| {label} | {_num(metrics[key])} |")
    if not rows:
        return []
    what = "mean return on the held-out test tasks"
    if seed is not None:
        what += f", search seed {seed}"
    return [f"| {what} | |", "| --- | --- |", *rows]


def _flatten(config: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted key, value)`` pairs of a nested settings dict, sorted by key."""
    out: list[tuple[str, Any]] = []
    for key, value in sorted(config.items()):
        if isinstance(value, dict) and value:
            out += _flatten(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def _search(model: dict[str, Any]) -> list[str]:
    source = model.get("source") or {}
    study = source.get("study") or {}
    trial = source.get("trial") or {}
    lines = []
    if not study and not trial:
        lines.append(
            f"Exported from a {source.get('kind', 'state_dict')}, not from a stored search."
        )
    if study:
        evaluator = study.get("evaluator") or {}
        space = study.get("space_name")
        if study.get("space_source"):
            space = f"{space} (`{study['space_source']}`)"
        lines += [
            f"- space: {space}, content hash `{study.get('space_hash')}`",
            f"- strategy: {study.get('strategy')} {study.get('strategy_options') or ''}".rstrip(),
            f"- evaluator: `{evaluator.get('target', evaluator.get('name', '?'))}`",
            f"- search seed: {study.get('seed')}",
        ]
        settings = _flatten(evaluator.get("config") or {})
        if settings:
            lines.append("- evaluator settings:")
            lines += [f"  - {k}: {_num(v)}" for k, v in settings]
        versions = study.get("versions") or {}
        if versions:
            lines.append(
                "- versions at search: " + ", ".join(f"{k} {v}" for k, v in versions.items())
            )
    if trial:
        parts = [f"{k}={trial[k]}" for k in ("number", "seed", "key", "fidelity") if k in trial]
        lines.append("- trial: " + ", ".join(parts))
    return lines


def _score_definition(model: dict[str, Any]) -> list[str]:
    """What the score is, in the evaluator's own settings."""
    study = (model.get("source") or {}).get("study") or {}
    config = ((study.get("evaluator") or {}).get("config") or {}).get("config") or {}
    steps = config.get("test_steps", 1)
    tasks, episodes = config.get("test_tasks", "the"), config.get("test_episodes", "several")
    return [
        f"The score is the mean episode return on {tasks} fixed held-out test tasks "
        f"({episodes} episodes each) after {steps} policy-gradient adaptation "
        f"step{'s' * (steps != 1)} from the meta-learned initial weights: the quantity MAML "
        "maximises (Finn et al. 2017). Higher is better; returns are the task family's own "
        "(2D navigation: minus the distance to the goal, summed over the episode).",
    ]


def _final(model: dict[str, Any]) -> list[str]:
    """The final stage's verdict: the sentence and each entry's mean and interval."""
    final = ((model.get("source") or {}).get("study") or {}).get("final")
    if not final:
        return []
    lines = ["## Final stage", "", final["sentence"], ""]
    lines += ["| entry | mean | 95% CI | per-seed scores |", "| --- | --- | --- | --- |"]
    for e in final["entries"]:
        scores = ", ".join("-" if s is None else f"{s:.3f}" for s in e["scores"])
        ci = "-" if e["low"] is None else f"[{e['low']:.3f}, {e['high']:.3f}]"
        mean = "-" if e["mean"] is None else f"{e['mean']:.3f}"
        lines.append(f"| {e['label']} | {mean} | {ci} | {scores} |")
    return [*lines, ""]


def _checks(checks: dict[str, Any]) -> list[str]:
    lines = ["| file | status |", "| --- | --- |"]
    for label, record in checks.items():
        if "skipped" in record:
            why = str(record["skipped"]).replace("|", "\\|")
            lines.append(f"| {label} | not written: {why} |")
        elif record.get("max_abs_error") is None:
            lines.append(f"| `{record['file']}` | written; {record.get('note', 'not compared')} |")
        else:
            how = record.get("runtime") or "torch.jit.load"
            extra = (
                f", {record['exporter']} exporter, opset {record['opset']}"
                if "opset" in record
                else ""
            )
            lines.append(
                f"| `{record['file']}` | matches the policy: max abs error "
                f"{record['max_abs_error']:.2g} <= {record['tolerance']:g} "
                f"(batches {record['batches']}, run with {how}{extra}) |"
            )
    return lines


def _ci(low: Any, high: Any) -> str:
    return f"95% CI {_num(low)} to {_num(high)}" if low is not None else "no interval"


def _headline(model: dict[str, Any]) -> list[str]:
    """The scores: the final mean with its interval for a finalist of a finished final stage
    (the number that decides the best), the search score, and where the study's best is."""
    source = model.get("source") or {}
    trial, study = source.get("trial") or {}, source.get("study") or {}
    number = trial.get("number")
    score = model.get("score")
    if not trial:  # an EvalResult or state_dict: one score, no search behind it
        return [f"- score: **{_num(score) if score is not None else 'unknown'}**"]
    seeds = trial.get("search_seeds") or []
    over = f"mean over {len(seeds)} search seed{'s' * (len(seeds) != 1)}" if seeds else "mean"
    search = f"search score: {_num(score)} ({over})" if score is not None else ""
    final = study.get("final") or {}
    entry = next(
        (e for e in final.get("entries") or [] if e.get("trial") == number
         and e.get("kind") == "finalist" and e.get("mean") is not None),
        None,
    )  # fmt: skip
    lines = []
    if entry is not None and final.get("complete"):
        n = sum(x is not None for x in entry["scores"])
        rank = f"; rank {entry['rank']} of the finalists" if entry.get("rank") else ""
        lines.append(
            f"- final mean: **{_num(entry['mean'])}** ({_ci(entry['low'], entry['high'])}, "
            f"over {n} fresh seeds of the final stage{rank})"
        )
        lines.append(f"- {search}" if search else "- search score: unknown")
    elif search:
        lines.append(f"- {search.replace(': ', ': **', 1).replace(' (', '** (', 1)}")
    else:
        lines.append("- score: **unknown**")
    best = study.get("best")
    if best and number is not None:
        if best["trial"] == number:
            lines.append(f"- the study's {best['label']}")
        else:
            lines.append(f"- not the study's best: trial {best['trial']} is its {best['label']}")
    if "weights_seed" in trial:
        lines.append(
            f"- exported weights: meta-learned with search seed {trial['weights_seed']} (the "
            f"first of its search seeds {seeds}); the returns below are that seed's"
        )
    return lines


def render_card(model: dict[str, Any]) -> str:
    """The Markdown card of an export, from the (unsealed) ``model.json`` content."""
    graph = model["graph"]
    hidden = [n for n in graph["nodes"] if n.get("op") not in ("input", "output")]
    ops = ", ".join(
        f"{n['id']}: {n['op']}" + (f"({n['width']})" if n.get("width") else "") for n in hidden
    )
    family = model.get("task_family") or {}
    trial = (model.get("source") or {}).get("trial") or {}
    lines = [
        f"# Architecture `{model['canonical_hash']}`",
        "",
        *_headline(model),
        f"- task family: {family.get('name') or 'not recorded'}"
        + (f" {family['options']}" if family.get("options") else ""),
        f"- parameters: {model['num_params']:,}; MACs per observation: {model['macs']:,}",
        f"- observation space: {_space(model['observation_space'])}",
        f"- action space: {_space(model['action_space'])}, {model['head']} head",
        f"- nodes ({len(hidden)} hidden): {ops}",
        "",
    ]
    drawing = model.get("drawing")
    if drawing:
        lines += [f"![architecture]({drawing})", ""]
    lines += ["## Score", "", *_score_definition(model), ""]
    lines += _final(model)
    returns = _returns(model.get("metrics") or {}, trial.get("weights_seed"))
    if returns:
        lines += ["## Returns", "", *returns, ""]
    adaptation = model.get("adaptation") or {}
    if adaptation:
        lines += ["## Adaptation settings", ""]
        lines += [f"- {k}: {_num(v)}" for k, v in adaptation.items()]
        lines.append("")
    steps = model.get("step_sizes")
    if steps:
        lines += [
            f"Meta-SGD: one learned step size per parameter, in `{steps['file']}` (mean "
            f"{_num(steps['mean'])}); `autometa.adapt` steps with them in place of `fast_lr` "
            "(times `test_lr_scale` after the first step).",
            "",
        ]
    lines += ["## Search", "", *_search(model), ""]
    lines += ["## Exported files", "", *_checks(model.get("checks") or {}), ""]
    lines += [
        "## Use",
        "",
        "```python",
        "import autometa",
        'policy = autometa.load("<this folder>")',
        "adapted, returns = autometa.adapt(policy, autometa.make_task("
        f'"{family.get("name") or "<family>"}"), task=0, steps=1)',
        "```",
        "",
        f"Exported with autometa {model['versions'].get('autometa')}, torch "
        f"{model['versions'].get('torch')}. `model.json` lists the sha256 of every file; "
        "`autometa.load` refuses the folder if any of them changed.",
        "",
    ]
    return "\n".join(lines)
