"""Every script in ``examples/`` runs in its documented quick mode and writes what it says."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, *args: str, timeout: float = 240) -> str:
    """Run ``examples/<name>`` in a fresh interpreter; return its stdout, fail on exit != 0."""
    env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=EXAMPLES.parent,
    )
    assert proc.returncode == 0, f"{name} exited with {proc.returncode}:\n{proc.stderr[-4000:]}"
    return proc.stdout


def test_every_example_is_tested_and_listed_in_the_readme():
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py"))
    tested = sorted(re.findall(r'run_example\(\s*"(\w+\.py)"', Path(__file__).read_text()))
    assert scripts == sorted(set(tested))
    readme = (EXAMPLES / "README.md").read_text()
    for script in scripts:
        assert f"python examples/{script} --quick" in readme


def test_first_search(tmp_path):
    out = run_example("first_search.py", "--quick", "--out", str(tmp_path))
    assert "search stopped: trials budget reached (3); 3 done" in out
    assert re.search(r"best: trial \d+, score -?\d+\.\d+", out)
    model = json.loads((tmp_path / "best" / "model.json").read_text())
    assert model["task_family"]["name"] == "navigation2d"
    assert (tmp_path / "best" / "model.safetensors").is_file()
    assert (tmp_path / "search.db").is_file()


def test_custom_task_family(tmp_path):
    out = run_example("custom_task_family.py", "--quick", "--out", str(tmp_path))
    assert "task family 'point-reacher-1d' passes check_task_family" in out
    assert re.search(r"held-out return after k adaptation steps: k=0: -?\d+\.\d+, k=1: ", out)
    # the worker process found the family by name: registration at import time works
    assert "in 1 worker process(es): 2 of 2 trials done" in out
    assert (tmp_path / "search.db").is_file()
    # the tutorial's last step: export, reload, adapt to a new task
    best = tmp_path / "best"
    assert f"to {best}; adapted to {{'target': 0.8, 'friction': 0.2}}:" in out
    assert re.search(
        r"mean return after 0 steps: -?\d+\.\d+, after 1 steps: .*, after 2 steps: ", out
    )
    model = json.loads((best / "model.json").read_text())
    assert model["task_family"]["name"] == "point-reacher-1d"


def test_multi_objective(tmp_path):
    out = run_example("multi_objective.py", "--quick", "--out", str(tmp_path))
    assert "nsga2 on 'chain-mlp': 32 trials, 32 scored" in out
    front = re.findall(r"^\s+(\d+)\s+(\d+)\s+(-?\d+\.\d+)\s+\S+$", out, flags=re.M)
    assert len(front) >= 2
    params = [int(p) for _, p, _ in front]
    scores = [float(s) for _, _, s in front]
    assert params == sorted(params) and scores == sorted(scores)  # fewer params, lower score
    plots = tmp_path / "plots"
    for name in ("progress.png", "pareto.png", "best_graph.png"):
        assert (plots / name).stat().st_size > 0
    with open(plots / "trials.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 32


def test_reload_and_adapt(tmp_path):
    out = run_example("reload_and_adapt.py", "--quick", "--out", str(tmp_path))
    returns = re.findall(r"^\s+(?:before adaptation|after step \d):\s+(-?\d+\.\d+)", out, re.M)
    assert len(returns) == 4  # before, then after each of the 3 steps
    assert "exported policy unchanged by adapt: True" in out
    assert "TorchScript copy matches the reloaded policy" in out
    assert (tmp_path / "best" / "model.json").is_file()


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_help(name):
    out = run_example(name, "--help", timeout=60)
    assert "--quick" in out and "--out" in out
