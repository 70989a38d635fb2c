"""The byte formats of what a study stores beside its rows: a trial's meta-learned weights
(with Meta-SGD's step sizes) and its training state, both as safetensors (no pickle).

Kept apart from :mod:`.base` because every backend stores the same bytes and the search
encodes them before any storage is involved; :mod:`.base` re-exports these names.
"""

from __future__ import annotations

from typing import Any

from safetensors.torch import load, save

from autometa.errors import StorageError

__all__ = [
    "STEP_SIZE_PREFIX",
    "decode_training_state",
    "decode_weights",
    "encode_training_state",
    "encode_weights",
    "split_step_sizes",
]

STEP_SIZE_PREFIX = "step_size."
"""Prefix of the Meta-SGD step sizes stored with a trial's weights (``step_size.<parameter>``).

No policy parameter name starts with it, so weights stored without step sizes (by Meta-SGD-less
evaluations or older versions) read back unchanged."""


def encode_weights(state_dict: dict[str, Any], step_sizes: dict[str, Any] | None = None) -> bytes:
    """Serialise a ``state_dict`` of tensors with safetensors (no pickle involved).

    Args:
        state_dict: the meta-learned weights.
        step_sizes: Meta-SGD's per-parameter step sizes (``EvalResult.step_sizes``), stored in
            the same blob under :data:`STEP_SIZE_PREFIX`; :func:`split_step_sizes` separates
            them again.

    Raises:
        ValueError: a weight's name starts with :data:`STEP_SIZE_PREFIX`.
    """
    tensors = {name: t.detach().cpu().contiguous().clone() for name, t in state_dict.items()}
    clash = sorted(n for n in tensors if n.startswith(STEP_SIZE_PREFIX))
    if clash:
        raise ValueError(
            f"weight names must not start with {STEP_SIZE_PREFIX!r} (kept for Meta-SGD step "
            f"sizes), got {clash}"
        )
    for name, t in (step_sizes or {}).items():
        tensors[STEP_SIZE_PREFIX + name] = t.detach().cpu().contiguous().clone()
    return save(tensors)


def decode_weights(data: bytes) -> dict[str, Any]:
    """Inverse of :func:`encode_weights`: every stored tensor (step sizes prefixed), on CPU.

    Raises:
        StorageError: ``data`` is not safetensors.
    """
    try:
        return load(data)
    except Exception as exc:  # safetensors' own error type is not importable by name
        raise StorageError(f"weights are not safetensors ({exc})") from None


def encode_training_state(tensors: dict[str, Any]) -> bytes:
    """Serialise a training state's tensors (``EvalResult.training_state``) with safetensors."""
    return save({name: t.detach().cpu().contiguous().clone() for name, t in tensors.items()})


def decode_training_state(data: bytes) -> dict[str, Any]:
    """Inverse of :func:`encode_training_state`: the stored tensors, on CPU, not yet checked
    (``autometa.meta.training_state.TrainingState.from_tensors`` checks them).

    Raises:
        StorageError: ``data`` is not safetensors.
    """
    try:
        return load(data)
    except Exception as exc:  # safetensors' own error type is not importable by name
        raise StorageError(f"training state is not safetensors ({exc})") from None


def split_step_sizes(tensors: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``(weights, step_sizes)`` from :func:`decode_weights`'s output (step sizes or None)."""
    weights = {n: t for n, t in tensors.items() if not n.startswith(STEP_SIZE_PREFIX)}
    steps = {
        n[len(STEP_SIZE_PREFIX) :]: t for n, t in tensors.items() if n.startswith(STEP_SIZE_PREFIX)
    }
    return weights, (steps or None)
