"""Shared helpers for the benchmark scripts: timing, environment record, table, JSON."""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).parent / "results"


# Reduced MAMLEvaluator sizes the population benchmarks share: ``QUICK`` (10 tasks x 10
# episodes x 50 steps) and ``TINY`` (4 x 4 x 20, a smoke test; every member's tensors whole
# CPU vectors long).
QUICK = dict(
    num_tasks=10,
    episodes_per_task=10,
    test_tasks=10,
    test_episodes=10,
    family_options={"horizon": 50},
)
TINY = dict(
    num_tasks=4,
    episodes_per_task=4,
    test_tasks=4,
    test_episodes=4,
    family_options={"horizon": 20},
)


def time_samples(fn: Callable[[], Any], *, repeats: int, number: int) -> list[float]:
    """``repeats`` samples of the mean seconds per call of ``fn`` over ``number`` calls."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number)
    return samples


def median_time(fn: Callable[[], Any], *, repeats: int = 7, number: int = 100) -> float:
    """Median over ``repeats`` of the mean seconds per call of ``fn`` over ``number`` calls."""
    fn()
    return statistics.median(time_samples(fn, repeats=repeats, number=number))


def interleaved_times(
    fns: list[Callable[[], Any]], *, repeats: int = 9, number: int = 100
) -> list[float]:
    """Median seconds per call of each of ``fns``, timed in alternation after a warm-up.

    Alternating the functions inside every repeat keeps clock-speed changes and allocator
    state from favouring whichever function happens to be timed first.
    """
    for fn in fns:
        for _ in range(number):
            fn()
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            for _ in range(number):
                fn()
            samples[i].append((time.perf_counter() - start) / number)
    return [statistics.median(s) for s in samples]


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "device": device,
    }


def cpu_model() -> str:
    """The CPU's model name (from ``/proc/cpuinfo`` where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def print_table(headers: list[str], rows: list[list[Any]]) -> None:
    """Print a plain-text table with right-aligned columns."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def save(name: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` plus the machine record to ``benchmarks/results/<name>.json``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2, default=str))
    print(f"\nsaved {path}")
    return path
