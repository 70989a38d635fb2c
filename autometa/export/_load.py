"""``load``: rebuild the policy of an exported folder, refusing one that does not match itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from autometa.errors import AutometaError, ExportError
from autometa.export import _files as F
from autometa.export._export import step_sizes_problem, weights_problem
from autometa.graph import from_json, graph_equal
from autometa.policy import GraphPolicy, build_policy

__all__ = ["load", "read_export"]


def read_export(out_dir: str | Path) -> dict[str, Any]:
    """The verified ``model.json`` of an export: its own hash and every file's hash checked.

    A ``model.json`` that records no hashes at all (written before exports recorded them) is
    read with a one-line warning; its files are then only checked to lie inside the folder.

    Raises:
        ExportError: naming the first file that is outside the folder, missing or was changed
            after export.
    """
    folder = Path(out_dir)
    data = F.read_model_json(folder, allow_unhashed=True)
    if F.is_hashed(data):
        F.verify_files(data, folder)
    return data


def _named_file(folder: Path, data: dict[str, Any], key: str, name: Any) -> Path:
    """The file ``model.json``'s ``key`` names: inside the folder and listed in the manifest.

    Every listed file was hash-checked by :func:`read_export`; an unlisted one is refused,
    since nothing vouches for its bytes (a folder without hashes lists nothing).
    """
    path = F.inside(folder, name, key)
    if F.is_hashed(data) and name not in data["files"]:
        raise ExportError(
            f"{path}: named by {key} in model.json but not listed in its 'files', so its "
            "sha256 cannot be checked"
        )
    if not path.is_file():
        raise ExportError(f"{path}: missing (named by {key} in model.json)")
    return path


def load(out_dir: str | Path, *, device: str | torch.device | None = None) -> GraphPolicy:
    """Rebuild the exported policy with its meta-learned initial weights.

    The folder is checked before anything is built: ``model.json`` must match its own sha256,
    every file it names must lie inside the folder (no absolute or ``..`` path, no symbolic
    link out of it), every file in its manifest must exist with the recorded sha256 (an
    export written before hashes were recorded loads with a warning), ``architecture.json`` must
    hold the same graph, and the weights must have exactly the graph's keys and shapes. The
    weights are read with ``safetensors`` (no pickle). The module is returned in eval mode;
    ``policy.export_info`` holds the verified ``model.json`` content (spaces, adaptation
    settings, task family, score), and ``policy.step_sizes`` the Meta-SGD step sizes of an
    export that has them (CPU tensors keyed by parameter name, which
    :func:`autometa.export.adapt` steps with), else None.

    Args:
        out_dir: a folder written by :func:`autometa.export.export`.
        device: where to put the parameters (default: CPU).

    Returns:
        A :class:`~autometa.policy.GraphPolicy`: ``policy(obs)`` gives ``(mean, log_std)`` for a
        Gaussian head or ``(logits,)`` for a categorical one; ``policy.distribution(obs)``
        gives the action distribution.

    Raises:
        ExportError: a file outside the folder, a missing file, a hash mismatch ("... does
            not match the sha256 ... recorded in model.json (the file was changed after
            export)"), a graph that
            differs between files or does not build, or weights with missing/unexpected keys
            or wrong shapes.

    Example:
        >>> policy = autometa.load("runs/best")                          # doctest: +SKIP
        >>> mean, log_std = policy(torch.zeros(1, policy.obs_dim))       # doctest: +SKIP
    """
    folder = Path(out_dir)
    data = read_export(folder)
    model_path = folder / F.MODEL_JSON
    try:
        graph = from_json(data["graph"])
        arch_listed = F.ARCH_JSON in data.get("files", {}) or not F.is_hashed(data)
        arch_path = F.inside(folder, F.ARCH_JSON)
        arch = (
            from_json(json.loads(arch_path.read_text()))
            if arch_listed and arch_path.is_file()
            else graph
        )
        obs_space = F.space_from_dict(data["observation_space"], str(model_path))
        act_space = F.space_from_dict(data["action_space"], str(model_path))
        init_std = float(data.get("init_std", 1.0))
    except (KeyError, TypeError, ValueError) as exc:
        raise ExportError(f"{model_path}: malformed ({type(exc).__name__}: {exc})") from exc
    if not graph_equal(graph, arch):
        raise ExportError(f"{folder / F.ARCH_JSON}: the graph differs from the one in model.json")
    try:
        policy = build_policy(graph, obs_space, act_space, init_std=init_std)
    except AutometaError as exc:
        raise ExportError(f"{model_path}: the graph does not build: {exc}") from exc
    entry = data.get("weights")
    name = entry.get("file", F.WEIGHTS) if isinstance(entry, dict) else F.WEIGHTS
    weights_path = _named_file(folder, data, "'weights.file'", name)
    try:
        weights = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ExportError(f"{weights_path}: not a readable safetensors file ({exc})") from exc
    problem = weights_problem(policy, weights, str(weights_path))
    if problem:
        raise ExportError(problem)
    policy.load_state_dict(weights, strict=True)
    policy.step_sizes = _step_sizes(folder, data, policy)
    if policy.num_params != data.get("num_params"):
        raise ExportError(
            f"{model_path}: num_params is {data.get('num_params')}, the rebuilt policy has "
            f"{policy.num_params}"
        )
    policy.export_info = data
    policy.eval()
    return policy.to(device) if device is not None else policy


def _step_sizes(
    folder: Path, data: dict[str, Any], policy: GraphPolicy
) -> dict[str, torch.Tensor] | None:
    """The export's Meta-SGD step sizes, checked against the policy's parameters, or None."""
    entry = data.get("step_sizes")
    if not entry:
        return None  # no Meta-SGD, or an export written before step sizes were exported
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
        raise ExportError(
            f"{folder / F.MODEL_JSON}: 'step_sizes' must be null or name its file, got {entry!r}"
        )
    path = _named_file(folder, data, "'step_sizes.file'", entry["file"])
    try:
        steps = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ExportError(f"{path}: not a readable safetensors file ({exc})") from exc
    problem = step_sizes_problem(policy, steps, str(path))
    if problem:
        raise ExportError(problem)
    return steps
