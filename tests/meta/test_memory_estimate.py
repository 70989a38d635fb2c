"""The memory estimate bounds real evaluations: measured in fresh processes, within 2x."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from autometa.graph import mlp_graph
from autometa.meta import MAMLEvaluator

SMALL = dict(num_tasks=4, episodes_per_task=4, test_tasks=4, test_episodes=4)

_MEASURE = """
import json, sys
from autometa.graph import mlp_graph
from autometa.meta import MAMLEvaluator

widths, horizon = json.loads(sys.argv[1])
evaluator = MAMLEvaluator(
    "navigation2d", 1, family_options={"horizon": horizon}, num_tasks=4, episodes_per_task=4,
    test_tasks=4, test_episodes=4, keep_state_dict=False,
)
evaluator.family("cpu")


def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))


with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak: imports and set-up do not count
before = status("VmRSS")
result = evaluator(mlp_graph(widths), seed=0, device="cpu")
print(json.dumps([result.ok, status("VmHWM") - before]))
"""


@pytest.mark.slow
@pytest.mark.parametrize(("widths", "horizon"), [((32, 32), 20), ((256, 256), 40)])
def test_estimate_bounds_a_real_evaluation_within_2x(widths, horizon):
    """The measured peak (fresh process, after imports and family) is under the estimate."""
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, json.dumps([widths, horizon])],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    ok, measured = json.loads(out.stdout.strip().splitlines()[-1])
    estimate = MAMLEvaluator(
        "navigation2d", 1, family_options={"horizon": horizon}, **SMALL
    ).estimate_memory(mlp_graph(widths))
    assert ok
    assert measured <= estimate <= 2 * measured, (measured, estimate)
