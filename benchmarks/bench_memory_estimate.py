"""Estimated vs measured peak memory of MAML evaluations: calibrates the memory estimate.

Each case is evaluated in a fresh subprocess on the CPU; the measured figure is the peak
resident set (``ru_maxrss``) minus the resident set after imports and family creation, and the
estimate is ``MAMLEvaluator.estimate_memory``. The estimate should be an upper bound within about
2x for every case (``ratio`` between 1 and 2).

Run: ``python benchmarks/bench_memory_estimate.py`` (a few minutes on 2 cores).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from _common import print_table, save

#: (name, widths, num_tasks, episodes_per_task, horizon, inner_steps)
CASES = [
    ("tiny", (32, 32), 4, 4, 20, 1),
    ("wide", (512, 512), 4, 4, 20, 1),
    ("long", (64, 64), 4, 8, 100, 1),
    ("batch", (128, 128), 10, 10, 100, 1),
    ("deep", (256,) * 4, 8, 8, 50, 2),
    ("big", (512, 512), 10, 10, 100, 1),
]

_CHILD = """
import json, resource, sys
from autometa.graph import mlp_graph
from autometa.meta import MAMLEvaluator

widths, tasks, episodes, horizon, inner = json.loads(sys.argv[1])
evaluator = MAMLEvaluator(
    "navigation2d", meta_iterations=1, family_options={"horizon": horizon}, num_tasks=tasks,
    episodes_per_task=episodes, test_tasks=tasks, test_episodes=episodes, inner_steps=inner,
    keep_state_dict=False,
)
graph = mlp_graph(widths)
evaluator.family("cpu")
with open("/proc/self/statm") as f:
    before = int(f.read().split()[1]) * resource.getpagesize()
estimate = evaluator.estimate_memory(graph)
result = evaluator(graph, seed=0, device="cpu")
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"ok": result.ok, "measured": peak - before, "estimate": estimate}))
"""


def measure(widths: tuple[int, ...], tasks: int, episodes: int, horizon: int, inner: int) -> dict:
    """Run one evaluation in a fresh interpreter; its measured and estimated bytes."""
    arg = json.dumps([list(widths), tasks, episodes, horizon, inner])
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, arg], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    rows: list[list[Any]] = []
    records = []
    for name, widths, tasks, episodes, horizon, inner in CASES:
        got = measure(widths, tasks, episodes, horizon, inner)
        ratio = got["estimate"] / max(got["measured"], 1)
        mib = 2**20
        rows.append([name, "x".join(map(str, widths)), tasks, episodes, horizon, inner,
                     got["measured"] / mib, got["estimate"] / mib, ratio])  # fmt: skip
        records.append({"case": name, "widths": list(widths), "num_tasks": tasks,
                        "episodes_per_task": episodes, "horizon": horizon,
                        "inner_steps": inner, **got, "ratio": ratio})  # fmt: skip
    print_table(
        ["case", "widths", "tasks", "episodes", "horizon", "inner", "measured MiB",
         "estimate MiB", "ratio"],
        rows,
    )  # fmt: skip
    save("bench_memory_estimate", {"cases": records})


if __name__ == "__main__":
    main()
