"""``--log KIND:WHERE``: the logger callbacks a command-line search writes to."""

from __future__ import annotations

import argparse
from typing import Any

from autometa.errors import ConfigurationError
from autometa.experiment import MLflowCallback, TensorBoardCallback

__all__ = ["LOG_KINDS", "build_callbacks", "log_target"]

#: The ``--log`` kinds: ``tensorboard:DIR`` and ``mlflow:URI``.
LOG_KINDS = ("tensorboard", "mlflow")


def log_target(text: str) -> str:
    """Check one ``--log`` value: a kind, a colon, then a non-empty folder or URI."""
    kind, sep, where = text.partition(":")
    if kind not in LOG_KINDS or not sep or not where:
        raise argparse.ArgumentTypeError(f"expected tensorboard:DIR or mlflow:URI, got {text!r}")
    return text


def build_callbacks(targets: list[str]) -> list[Any]:
    """The logger callbacks of checked ``--log`` values, in order.

    Raises:
        ValueError: the package a target needs is not installed, or MLflow refuses the
            tracking URI (the message names the option).
    """
    out: list[Any] = []
    for target in targets:
        kind, _, where = target.partition(":")
        try:
            if kind == "tensorboard":
                out.append(TensorBoardCallback(where))
            else:
                out.append(MLflowCallback(where))
        except (ImportError, ConfigurationError) as exc:
            raise ValueError(f"argument --log {target}: {exc}") from exc
    return out
