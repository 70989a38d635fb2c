"""``import autometa`` and the evaluator's packages need only the core dependencies."""

import subprocess
import sys

HEAVY = [
    "nni",
    "ray",
    "mujoco",
    "deap",
    "skopt",
    "matplotlib",
    "onnx",
    "onnxruntime",
    "tensorboard",
    "mlflow",
]
PACKAGES = [
    "autometa",
    "autometa.space",
    "autometa.graph",
    "autometa.ops",
    "autometa.policy",
    "autometa.tasks",
    "autometa.meta",
    "autometa.strategies",
    "autometa.experiment",
    "autometa.export",
    "autometa.cli",
]


def test_core_imports_leave_optional_backends_alone():
    code = (
        "import importlib, sys\n"
        f"for name in {PACKAGES!r}:\n"
        "    importlib.import_module(name)\n"
        "import autometa\n"
        "autometa.make_task\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_unknown_top_level_name():
    import autometa

    try:
        autometa.frobnicate  # noqa: B018
    except AttributeError as exc:
        assert "frobnicate" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_export_is_both_a_function_and_a_package():
    code = (
        "import autometa\n"
        "e = autometa.export\n"
        "assert callable(e) and callable(e.plot) and callable(e.pareto_front)\n"
        "import autometa.export\n"
        "assert callable(autometa.export) and autometa.export.load is autometa.load\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
