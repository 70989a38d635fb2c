"""TorchScript and ONNX copies of a policy network, each checked against the eager module.

The compiled plan of a :class:`~autometa.policy.GraphPolicy` has no data-dependent control
flow, so a trace records it exactly. Each copy is run on random observations right after it is
written and compared with the eager policy; a copy that cannot be written or does not match
is removed and the reason is recorded instead (``model.json`` and ``card.md`` show it).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from autometa.policy import GraphPolicy

__all__ = [
    "TOLERANCE",
    "PlainOutputs",
    "check_inputs",
    "output_names",
    "write_onnx",
    "write_torchscript",
]

log = logging.getLogger(__name__)

TOLERANCE = 1e-5
"""Largest absolute (and relative) difference allowed between a copy and the eager policy."""

_CHECK_BATCHES = (1, 5, 17)


class PlainOutputs(nn.Module):
    """Wraps a policy so ``forward(obs)`` returns a plain tuple of tensors (tracer-friendly)."""

    def __init__(self, policy: GraphPolicy) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.policy(obs))


def output_names(policy: GraphPolicy) -> list[str]:
    """``["logits"]`` for a categorical head, ``["mean", "log_std"]`` for a Gaussian one."""
    return ["logits"] if policy.discrete else ["mean", "log_std"]


def check_inputs(obs_dim: int, seed: int = 0) -> list[torch.Tensor]:
    """Random observations (several batch sizes) used to compare a copy with the policy."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(b, obs_dim, generator=generator) for b in _CHECK_BATCHES]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence tracer/exporter chatter (constant shapes, optional torchvision ops)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _max_error(outputs: list[list[torch.Tensor]], expected: list[tuple[torch.Tensor, ...]]):
    """Largest absolute difference, and whether every pair is within :data:`TOLERANCE`."""
    worst, ok = 0.0, True
    for got, want in zip(outputs, expected):
        if len(got) != len(want):
            return float("inf"), False
        for g, w in zip(got, want):
            g = torch.as_tensor(g, dtype=w.dtype).detach()
            if g.shape != w.shape:
                return float("inf"), False
            worst = max(worst, float((g - w).abs().max()) if w.numel() else 0.0)
            ok &= bool(torch.allclose(g, w, rtol=TOLERANCE, atol=TOLERANCE))
    return worst, ok


def reason(exc: BaseException, limit: int = 240) -> str:
    """A one-line reason from an exception (exporters raise multi-page messages)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    named = last.split(":", 1)[0].isidentifier() and last.split(":", 1)[0].endswith("Error")
    text = last if named else f"{type(exc).__name__}: {last}".rstrip(": ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _skip(path: Path, what: str, why: str) -> dict[str, str]:
    """Remove a copy that failed, log why, and return the record saying so."""
    path.unlink(missing_ok=True)
    log.warning("%s export skipped: %s", what, why)
    return {"skipped": why}


def _reference(policy: GraphPolicy, inputs: list[torch.Tensor]) -> list[tuple[torch.Tensor, ...]]:
    with torch.no_grad():
        return [tuple(t.detach() for t in policy(x)) for x in inputs]


def write_torchscript(policy: GraphPolicy, path: Path) -> dict[str, Any]:
    """Trace ``policy`` to ``path``, reload it from disk and compare it with the policy.

    Returns:
        The check record: ``{"file", "max_abs_error", "tolerance", "batches"}`` when the copy
        matches, or ``{"skipped": reason}`` (and no file) when it could not be made or differs.
    """
    inputs = check_inputs(policy.obs_dim)
    wrapper = PlainOutputs(policy).eval()
    try:
        with _quiet(), torch.no_grad():
            traced = torch.jit.trace(wrapper, (torch.zeros(2, policy.obs_dim),))
            torch.jit.save(traced, str(path))
    except Exception as exc:  # any op the tracer cannot record
        return _skip(path, "TorchScript", f"torch.jit.trace failed: {reason(exc)}")
    try:
        with _quiet(), torch.no_grad():
            reloaded = torch.jit.load(str(path), map_location="cpu")
            outputs = [list(reloaded(x)) for x in inputs]
    except Exception as exc:  # e.g. a shape the trace froze as a constant
        return _skip(
            path, "TorchScript", f"the traced module fails on check inputs: {reason(exc)}"
        )
    error, ok = _max_error(outputs, _reference(policy, inputs))
    if not ok:
        return _skip(path, "TorchScript", f"the traced module differs (max error {error:.3g})")
    return {
        "file": path.name,
        "max_abs_error": error,
        "tolerance": TOLERANCE,
        "batches": list(_CHECK_BATCHES),
    }


def _onnx_export(wrapper: nn.Module, path: Path, names: list[str], obs_dim: int) -> str:
    """Export with the default (dynamo) exporter, falling back to the TorchScript-based one."""
    example = (torch.zeros(2, obs_dim),)
    try:
        with _quiet():
            torch.onnx.export(
                wrapper,
                example,
                str(path),
                input_names=["obs"],
                output_names=names,
                dynamic_shapes={"obs": {0: torch.export.Dim("batch")}},
                external_data=False,
                verbose=False,
            )
        return "dynamo"
    except Exception as exc:  # e.g. onnxscript missing, or an op the new exporter lacks
        log.info("dynamo ONNX exporter failed (%s); trying dynamo=False", exc)
        path.unlink(missing_ok=True)
    with _quiet():
        torch.onnx.export(
            wrapper,
            example,
            str(path),
            input_names=["obs"],
            output_names=names,
            dynamic_axes={"obs": {0: "batch"}, **{n: {0: "batch"} for n in names}},
            dynamo=False,
            verbose=False,
        )
    return "torchscript"


def write_onnx(policy: GraphPolicy, path: Path) -> dict[str, Any]:
    """Export ``policy`` to ONNX at ``path`` (dynamic batch axis) and check it.

    The file is run with onnxruntime when it is installed; otherwise only ``onnx.checker``
    validates it and the record says the outputs were not compared.

    Returns:
        The check record (``file``, ``exporter``, ``opset``, ``runtime``, ``max_abs_error``,
        ``tolerance``, ``batches``) or ``{"skipped": reason}`` with no file left behind.
    """
    try:
        import onnx
    except ImportError:
        log.warning(
            "ONNX export skipped: onnx is not installed (pip install 'autometa-nas[onnx]')"
        )
        return {"skipped": "onnx is not installed (pip install 'autometa-nas[onnx]')"}
    names = output_names(policy)
    wrapper = PlainOutputs(policy).eval()
    try:
        exporter = _onnx_export(wrapper, path, names, policy.obs_dim)
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
        opset = max(
            (o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=None
        )
    except Exception as exc:
        return _skip(path, "ONNX", f"torch.onnx.export failed: {reason(exc)}")
    record: dict[str, Any] = {"file": path.name, "exporter": exporter, "opset": opset}
    try:
        import onnxruntime
    except ImportError:
        record["runtime"] = None
        record["note"] = "onnxruntime is not installed: outputs were not compared"
        return record
    inputs = check_inputs(policy.obs_dim)
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outputs = [
            [torch.from_numpy(o) for o in session.run(names, {"obs": x.numpy()})] for x in inputs
        ]
    except Exception as exc:
        return _skip(path, "ONNX", f"onnxruntime could not run the export: {reason(exc)}")
    error, ok = _max_error(outputs, _reference(policy, inputs))
    if not ok:
        return _skip(path, "ONNX", f"the ONNX model differs (max error {error:.3g})")
    record.update(
        runtime=f"onnxruntime {onnxruntime.__version__}",
        max_abs_error=error,
        tolerance=TOLERANCE,
        batches=list(_CHECK_BATCHES),
    )
    return record
