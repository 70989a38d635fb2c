"""The optional heavy backends: the only packages autometa imports inside functions.

``import autometa`` and every stage package need only torch, numpy, networkx, gymnasium, pyyaml
and safetensors. The backends below are imported on first use, either inside the function that
needs them or at the top of a private module that only a registry's lazy ``"module:attr"`` entry
point reaches (``autometa.strategies._deap``). :data:`OPTIONAL_BACKENDS` lists them with what
installs each, and :func:`import_optional` imports one with an error that says so.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["OPTIONAL_BACKENDS", "backend_of", "import_optional"]

OPTIONAL_BACKENDS: dict[str, str] = {
    "deap": "deap",
    "hyperopt": "hyperopt",
    "matplotlib": "autometa-nas[plot]",
    "mujoco": "autometa-nas[mujoco]",
    "gymnasium.envs.mujoco": "autometa-nas[mujoco]",
    "nni": "nni",
    "onnx": "autometa-nas[onnx]",
    "onnxruntime": "autometa-nas[onnx]",
    "onnxscript": "autometa-nas[onnx]",
    "ray": "autometa-nas[distributed]",
    "skopt": "scikit-optimize",
    "sklearn": "scikit-learn",
    "mlflow": "autometa-nas[mlflow]",
    "pandas": "autometa-nas[pandas]",
    "tensorboard": "autometa-nas[tensorboard]",
    "torch.utils.tensorboard": "autometa-nas[tensorboard]",
}
"""Module (a top-level package, or a subpackage that needs one) -> what ``pip install`` takes."""


def backend_of(module: str) -> str | None:
    """The :data:`OPTIONAL_BACKENDS` entry that ``module`` belongs to, or None for a core one."""
    for name in sorted(OPTIONAL_BACKENDS, key=len, reverse=True):
        if module == name or module.startswith(name + "."):
            return name
    return None


def import_optional(module: str, purpose: str) -> ModuleType:
    """Import an optional backend, or say which package to install.

    Args:
        module: a module of a listed backend (``"matplotlib.pyplot"``, ``"ray"``).
        purpose: what needs it, for the error message (``"the Ray executor"``).

    Returns:
        The imported module.

    Raises:
        ValueError: ``module`` is not part of a listed backend (a mistake in autometa).
        ImportError: the backend is not installed; the message names the package to install.
    """
    backend = backend_of(module)
    if backend is None:
        raise ValueError(
            f"{module!r} is not an optional backend; expected a module of one of "
            f"{', '.join(sorted(OPTIONAL_BACKENDS))}"
        )
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # gymnasium's DependencyNotInstalled is an ImportError too
        raise ImportError(
            f"{backend} is not installed; it is needed for {purpose}: "
            f"pip install '{OPTIONAL_BACKENDS[backend]}'"
        ) from exc
