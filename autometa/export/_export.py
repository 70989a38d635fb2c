"""``export``: write an architecture, its meta-learned weights and its story to one folder."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from safetensors.torch import save

from autometa.errors import AutometaError, ExportError
from autometa.export import _files as F
from autometa.export._card import render_card
from autometa.export._formats import write_onnx, write_torchscript
from autometa.export._source import Source, adaptation_settings, resolve_source, resolve_spaces
from autometa.export._target import check_out_dir, move_into_place, study_files, work_folder
from autometa.graph import canonical_hash, draw, to_dot, to_graphml, to_json
from autometa.meta import runtime_versions
from autometa.policy import GraphPolicy, build_policy

__all__ = ["export", "step_sizes_problem", "weights_problem"]

log = logging.getLogger(__name__)


def export(
    source: Any,
    out_dir: str | Path,
    *,
    storage: Any = None,
    task_family: Any = None,
    observation_space: gym.Space | None = None,
    action_space: gym.Space | None = None,
    init_std: float | None = None,
    torchscript: bool = True,
    onnx: bool = True,
    drawing: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write a self-contained folder for one architecture and its meta-learned weights.

    The folder holds ``model.json`` (everything needed to rebuild the policy, plus a sha256
    manifest of every other file), ``model.safetensors`` (the initial weights, no pickle),
    ``architecture.json`` / ``.graphml`` / ``.dot`` (and ``.svg`` / ``.png`` with matplotlib),
    ``policy.torchscript.pt`` and ``policy.onnx`` where the ops export (each checked against
    the eager policy to 1e-5) and ``card.md``. The folder is built next to ``out_dir`` and
    moved into place at the end, so a failed export leaves nothing half-written. The folder and
    its files are created with the user's umask, like any file the user writes.

    Args:
        source: what to export, in any of these forms:

            - a trial record (``storage.get_trial(n)``, ``search_result.best``) together with
              ``storage``; the study's space, strategy, evaluator and versions go on the card;
            - a search result (anything with ``.best`` and ``.storage``);
            - ``(graph, EvalResult)``: an evaluator's result for ``graph`` (with weights);
            - ``(graph, state_dict)``: weights of ``build_policy(graph, ...)``.
        out_dir: the folder to create; it must not exist, or be empty. Never the current
            folder or one of its parents.
        storage: the study's storage (or the path of its SQLite file), to read the weights and
            the study of a trial record.
        task_family: a ``TaskFamily`` or its registered name; defaults to the family the
            evaluator recorded. It gives the observation and action spaces.
        observation_space: overrides the family's observation space.
        action_space: overrides the family's action space.
        init_std: recorded Gaussian initial std (the weights carry the learned one); defaults
            to the evaluator's setting.
        torchscript: write the TorchScript copy.
        onnx: write the ONNX copy (needs the ``onnx`` extra; skipped with a note otherwise).
        drawing: draw the graph to SVG and PNG (needs matplotlib; skipped with a note).
        overwrite: replace an earlier export in ``out_dir``: only a folder holding exactly
            what an earlier :func:`export` wrote (its ``model.json`` manifest and the unchanged
            files it lists) is replaced, never one with other files or the study database.

    Returns:
        The folder written.

    Raises:
        ExportError: an unsupported source, a failed trial, missing weights, unknown spaces,
            weights that do not fit the graph, or an ``out_dir`` that cannot be used (one
            line saying why).

    Example:
        >>> folder = autometa.export((graph, result), "runs/best")      # doctest: +SKIP
        >>> policy = autometa.load(folder)                               # doctest: +SKIP
    """
    src = resolve_source(source, storage)
    out_dir = Path(out_dir)
    keep = study_files(storage, source, getattr(source, "best", None))
    replaced = check_out_dir(out_dir, overwrite=overwrite, keep=keep)
    obs_space, act_space, family, options = resolve_spaces(
        src, observation_space, action_space, task_family
    )
    adaptation = adaptation_settings(src, family)
    std = float(init_std if init_std is not None else adaptation.get("init_std", 1.0))
    policy = _policy_with_weights(src, obs_space, act_space, std)
    target = out_dir.absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    work = work_folder(target)
    try:
        model = _write_folder(
            work,
            src,
            policy,
            obs_space,
            act_space,
            std,
            family,
            options,
            adaptation,
            torchscript=torchscript,
            onnx=onnx,
            drawing=drawing,
        )
        move_into_place(work, target, replaced)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log.info(
        "exported %s (%d parameters) to %s", model["canonical_hash"], policy.num_params, out_dir
    )
    return out_dir


def _policy_with_weights(
    src: Source, obs_space: gym.Space, act_space: gym.Space, init_std: float
) -> GraphPolicy:
    """Build the policy for the graph and load the source's weights strictly."""
    try:
        policy = build_policy(src.graph, obs_space, act_space, init_std=init_std)
    except AutometaError as exc:
        raise ExportError(f"the graph does not build for these spaces: {exc}") from exc
    problem = weights_problem(policy, src.state_dict, "the weights to export")
    if not problem and src.step_sizes is not None:
        problem = step_sizes_problem(policy, src.step_sizes, "the Meta-SGD step sizes to export")
    if problem:
        raise ExportError(problem)
    policy.load_state_dict(src.state_dict, strict=True)
    return policy.eval()


def weights_problem(policy: GraphPolicy, weights: dict[str, torch.Tensor], where: str) -> str:
    """Why ``weights`` cannot be loaded into ``policy`` (empty string when they can)."""
    return _tensors_problem(policy.state_dict(), weights, where)


def step_sizes_problem(policy: GraphPolicy, steps: dict[str, torch.Tensor], where: str) -> str:
    """Why ``steps`` are not one Meta-SGD step size per parameter of ``policy`` (or "")."""
    return _tensors_problem(dict(policy.named_parameters()), steps, where)


def _tensors_problem(
    expected: dict[str, torch.Tensor], weights: dict[str, torch.Tensor], where: str
) -> str:
    """The first key, shape or dtype of ``weights`` that does not match ``expected``."""
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys {missing}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected}")
        return f"{where}: {'; '.join(parts)} for the graph in model.json"
    for name, tensor in expected.items():
        if tuple(weights[name].shape) != tuple(tensor.shape):
            return (
                f"{where}: {name!r} has shape {tuple(weights[name].shape)}, the graph in "
                f"model.json needs {tuple(tensor.shape)}"
            )
        if not weights[name].is_floating_point():
            return f"{where}: {name!r} has dtype {weights[name].dtype}, expected a float tensor"
    return ""


def _write_folder(
    work: Path,
    src: Source,
    policy: GraphPolicy,
    obs_space: gym.Space,
    act_space: gym.Space,
    init_std: float,
    family: str | None,
    options: dict[str, Any],
    adaptation: dict[str, Any],
    *,
    torchscript: bool,
    onnx: bool,
    drawing: bool,
) -> dict[str, Any]:
    graph_json = to_json(src.graph)
    (work / F.ARCH_JSON).write_text(json.dumps(F.json_safe(graph_json), indent=2) + "\n")
    to_graphml(src.graph, work / F.ARCH_GRAPHML)
    (work / F.ARCH_DOT).write_text(to_dot(src.graph))
    files = [F.ARCH_JSON, F.ARCH_GRAPHML, F.ARCH_DOT]
    picture = None
    if drawing:
        try:
            for suffix in (".svg", ".png"):
                draw(src.graph, work / f"architecture{suffix}", title=canonical_hash(src.graph))
                files.append(f"architecture{suffix}")
            picture = "architecture.svg"
        except ImportError as exc:
            log.warning("architecture drawing skipped: %s", exc)
    weights = {k: v.contiguous() for k, v in policy.state_dict().items()}
    # bytes written by Python, so the file gets the user's umask (save_file makes it 0600)
    (work / F.WEIGHTS).write_bytes(save(weights, metadata={"format": F.FORMAT}))
    files.append(F.WEIGHTS)
    step_sizes = None
    if src.step_sizes is not None:
        steps = {k: src.step_sizes[k].contiguous() for k in weights if k in src.step_sizes}
        (work / F.STEP_SIZES).write_bytes(save(steps, metadata={"format": F.FORMAT}))
        files.append(F.STEP_SIZES)
        step_sizes = {"file": F.STEP_SIZES, **_describe(steps)}
        step_sizes["mean"] = float(torch.cat([v.reshape(-1) for v in steps.values()]).mean())
    checks: dict[str, Any] = {}
    if torchscript:
        checks["torchscript"] = write_torchscript(policy, work / F.TORCHSCRIPT)
    if onnx:
        checks["onnx"] = write_onnx(policy, work / F.ONNX)
    files += [c["file"] for c in checks.values() if "file" in c]
    model = {
        "format": F.FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "canonical_hash": canonical_hash(src.graph),
        "graph": graph_json,
        "observation_space": F.space_to_dict(obs_space),
        "action_space": F.space_to_dict(act_space),
        "obs_dim": policy.obs_dim,
        "act_dim": policy.act_dim,
        "head": "categorical" if policy.discrete else "gaussian",
        "outputs": ["logits"] if policy.discrete else ["mean", "log_std"],
        "init_std": init_std,
        "hyperparameters": dict(src.graph.graph.get("hyperparameters") or {}),
        "adaptation": adaptation,
        "task_family": {"name": family, "options": options} if family else None,
        "num_params": policy.num_params,
        "macs": policy.macs,
        "weights": {"file": F.WEIGHTS, **_describe(weights)},
        "step_sizes": step_sizes,
        "score": src.score,
        "search_score": src.score,
        "metrics": src.metrics,
        "source": {"kind": src.kind, "trial": src.trial, "study": src.study},
        "checks": checks,
        "drawing": picture,
        "versions": runtime_versions(),
    }
    model = F.json_safe(model)
    (work / F.CARD).write_text(render_card(model))
    files.append(F.CARD)
    model["files"] = dict.fromkeys(files)
    F.write_model_json(model, work)
    return model


def _describe(tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """``{"tensors": {name: {"shape", "dtype"}}}`` for ``model.json``."""
    return {
        "tensors": {
            k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")}
            for k, v in tensors.items()
        }
    }
