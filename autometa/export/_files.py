"""The exported folder's bookkeeping: file names, JSON-safe spaces, hashes and ``model.json``.

``model.json`` carries a ``files`` manifest (the sha256 of every other file) and a ``sha256``
of its own canonical JSON, so :func:`autometa.export.load` can tell a folder that was changed
after export from one that was written by :func:`autometa.export.export`. The hashes guard
against accidents (a half-copied folder, a hand-edited file), not against someone who rewrites
the manifest on purpose. Every file name in ``model.json`` must name a file inside the folder
(:func:`inside`): a folder is self-contained, so nothing outside it is ever read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from autometa.errors import ExportError

__all__ = [
    "ARCH_DOT",
    "ARCH_GRAPHML",
    "ARCH_JSON",
    "CARD",
    "FORMAT",
    "MODEL_JSON",
    "ONNX",
    "STEP_SIZES",
    "TORCHSCRIPT",
    "WEIGHTS",
    "check_hash",
    "file_sha256",
    "inside",
    "is_hashed",
    "json_safe",
    "read_model_json",
    "seal",
    "space_from_dict",
    "space_to_dict",
    "verify_files",
    "write_model_json",
]

FORMAT = "autometa.export/1"
"""The export folder's format tag, written to ``model.json``; :func:`load` refuses others."""
MODEL_JSON = "model.json"
WEIGHTS = "model.safetensors"
STEP_SIZES = "step_sizes.safetensors"
"""Meta-SGD's learned per-parameter inner step sizes, keyed like the weights (only with
Meta-SGD); ``autometa.adapt`` steps with them."""
ARCH_JSON = "architecture.json"
ARCH_GRAPHML = "architecture.graphml"
ARCH_DOT = "architecture.dot"
TORCHSCRIPT = "policy.torchscript.pt"
ONNX = "policy.onnx"
CARD = "card.md"
HASH_SHOWN = 12
"""How many hex digits of a sha256 a mismatch message shows."""

log = logging.getLogger(__name__)


def json_safe(value: Any) -> Any:
    """Plain JSON values: numpy/torch scalars unwrapped, tuples as lists, non-finite as text.

    Strict JSON has no ``Infinity`` or ``NaN``, so they are written as ``"inf"``, ``"-inf"``
    and ``"nan"`` (``float("inf")`` reads them back).
    """
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _floats(values: list[Any]) -> list[float]:
    return [float(v) for v in values]


def space_to_dict(space: gym.Space) -> dict[str, Any]:
    """A JSON-safe description of a flat ``Box`` or a ``Discrete`` space."""
    if isinstance(space, gym.spaces.Box):
        return {
            "type": "Box",
            "shape": [int(d) for d in space.shape],
            "dtype": str(space.dtype),
            "low": json_safe(space.low.reshape(-1).astype(np.float64)),
            "high": json_safe(space.high.reshape(-1).astype(np.float64)),
        }
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    raise ExportError(f"only Box and Discrete spaces can be exported, got {space}")


def space_from_dict(data: dict[str, Any], where: str = MODEL_JSON) -> gym.Space:
    """Rebuild a space written by :func:`space_to_dict`; ``where`` names it in errors."""
    try:
        if data["type"] == "Box":
            shape = tuple(int(d) for d in data["shape"])
            dtype = np.dtype(data.get("dtype", "float32"))
            low = np.array(_floats(data["low"]), dtype=dtype).reshape(shape)
            high = np.array(_floats(data["high"]), dtype=dtype).reshape(shape)
            return gym.spaces.Box(low, high, shape, dtype=dtype)
        if data["type"] == "Discrete":
            return gym.spaces.Discrete(int(data["n"]), start=int(data.get("start", 0)))
    except (KeyError, TypeError, ValueError) as exc:
        raise ExportError(f"{where}: malformed space {data!r} ({exc})") from exc
    raise ExportError(
        f"{where}: unknown space type {data.get('type')!r}; expected Box or Discrete"
    )


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _canonical(data: dict[str, Any]) -> bytes:
    body = {k: v for k, v in data.items() if k != "sha256"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def seal(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Fill ``data["files"]`` with the hashes of the listed files and ``data["sha256"]``.

    ``data["files"]`` maps each file name to ``None`` (or an old digest) on input; every
    listed file must exist in ``folder``.
    """
    data["files"] = {name: file_sha256(folder / name) for name in sorted(data["files"])}
    data["sha256"] = hashlib.sha256(_canonical(data)).hexdigest()
    return data


def write_model_json(data: dict[str, Any], folder: Path) -> Path:
    """Seal ``data`` against the files in ``folder`` and write it as ``model.json``."""
    path = folder / MODEL_JSON
    sealed = seal(json_safe(data), folder)
    path.write_text(json.dumps(sealed, indent=2, sort_keys=False, allow_nan=False) + "\n")
    return path


def is_hashed(data: dict[str, Any]) -> bool:
    """Whether ``model.json`` records hashes (every export does; hand-made folders may not)."""
    return "sha256" in data or "files" in data


def read_model_json(folder: Path, *, allow_unhashed: bool = False) -> dict[str, Any]:
    """Read ``model.json`` and check its format and its own hash.

    Args:
        folder: the export folder.
        allow_unhashed: accept a ``model.json`` without ``sha256`` and ``files`` (a folder
            written before hashes were recorded) with a one-line warning; its files then
            cannot be checked.

    Raises:
        ExportError: the file is missing, is not JSON, has another format, or its content
            does not match its recorded sha256.
    """
    path = folder / MODEL_JSON
    if not folder.is_dir():
        raise ExportError(f"{folder}: not a folder (expected an exported architecture)")
    if not path.is_file():
        raise ExportError(f"{path}: missing (every export has a model.json)")
    inside(folder, MODEL_JSON)
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ExportError(f"{path}: format must be {FORMAT!r}, got {got!r}")
    if allow_unhashed and not is_hashed(data):
        log.warning(
            "%s: records no sha256 (written before exports recorded hashes), so its files are "
            "read without checking them",
            path,
        )
        return data
    recorded = data.get("sha256")
    actual = hashlib.sha256(_canonical(data)).hexdigest()
    if recorded != actual:
        raise ExportError(
            f"{path}: content sha256 {actual} does not match the sha256 {recorded} recorded in "
            "it (the file was changed after export)"
        )
    if not isinstance(data.get("files"), dict):
        raise ExportError(f"{path}: 'files' must map file names to sha256 digests")
    return data


def inside(folder: Path, name: Any, key: str | None = None) -> Path:
    """The path of file ``name`` (given by ``model.json``'s ``key``), refused unless inside.

    A name must be one plain file name (no folder, no ``..``, not absolute) and, after
    symbolic links are followed, still lie in ``folder``: an export is self-contained.

    Raises:
        ExportError: naming the file, the key and what was expected.
    """
    where = folder / MODEL_JSON
    if not isinstance(name, str) or name in ("", ".", "..") or Path(name).name != name:
        raise ExportError(
            f"{where}: {key} names {name!r}; expected the name of a file inside the export "
            "folder (no folder, '..' or absolute path)"
        )
    path = folder / name
    real = path.resolve()
    if path.is_symlink() and folder.resolve() not in real.parents:
        named = f" (named by {key} in {MODEL_JSON})" if key else ""
        raise ExportError(
            f"{path}: is a symbolic link to {real}, outside the export folder{named}; expected "
            "a file inside the folder"
        )
    return path


def verify_files(data: dict[str, Any], folder: Path) -> None:
    """Check every file in the manifest lies in the folder, exists and has the recorded sha256.

    Raises:
        ExportError: naming the first file that is outside the folder, missing or whose bytes
            changed.
    """
    for name, expected in data["files"].items():
        path = inside(folder, name, "'files'")
        if not path.is_file():
            raise ExportError(f"{path}: missing (listed in model.json)")
        check_hash(path, expected)


def check_hash(path: Path, expected: Any) -> None:
    """Refuse a file whose sha256 is not ``expected`` (the digest recorded in ``model.json``).

    Raises:
        ExportError: one line with the file and the first digits of both digests.
    """
    actual = file_sha256(path)
    if actual != expected:
        shown = f"{expected[:HASH_SHOWN]}..." if isinstance(expected, str) else repr(expected)
        raise ExportError(
            f"{path}: sha256 {actual[:HASH_SHOWN]}... does not match the sha256 {shown} "
            "recorded in model.json (the file was changed after export)"
        )
