"""An evaluator that logs where and when each evaluation runs on Ray (tests only).

Importable by Ray's worker processes when ``tests/experiment`` is on their ``PYTHONPATH``;
``--import`` of this file registers it as ``node-log`` for command-line searches.
"""

from __future__ import annotations

import os
import time

import ray

from autometa.experiment import register_evaluator
from autometa.meta.synthetic import SyntheticObjective


@register_evaluator("node-log", overwrite=True)
class NodeLog(SyntheticObjective):
    """Synthetic scores after ``pause`` seconds; each evaluation appends
    ``"start <seed> <node id>"`` to ``log`` as it begins and ``"end <seed> <node id>"`` as it
    returns, so a test sees which node runs what, and how often each seed was evaluated; the
    result's ``ray_resources`` metric is what Ray assigned to the task."""

    def __init__(self, *, log: str = "", pause: float = 0.0, noise: float = 0.02) -> None:
        super().__init__(noise=noise)
        self.log = str(log)
        self.pause = pause

    def _write(self, what: str, seed: int) -> None:
        node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"
        with open(self.log, "a") as log:
            log.write(f"{what} {seed} {node}\n")
            log.flush()
            os.fsync(log.fileno())

    def __call__(self, graph, *, seed=0, device=None, meta_iterations=None):
        self._write("start", seed)
        time.sleep(self.pause)
        result = super().__call__(graph, seed=seed, device=device, meta_iterations=meta_iterations)
        if ray.is_initialized():  # what Ray granted this task
            result.metrics["ray_resources"] = ray.get_runtime_context().get_assigned_resources()
        self._write("end", seed)
        return result


def read_log(path) -> list[tuple[str, int, str]]:
    """The log's lines as ``(what, seed, node)``."""
    if not os.path.exists(path):
        return []
    with open(path) as log:
        text = log.read()
    lines = text.split("\n")[:-1]  # a line still being written (no newline yet) is left out
    return [(w, int(s), n) for w, s, n in (line.split() for line in lines if line.strip())]
