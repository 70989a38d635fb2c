"""Small picklable evaluators with scripted faults, keyed by trial seed (tests only)."""

from __future__ import annotations

import math
import os
import signal
import time
from pathlib import Path

from autometa.evaluation import EvalResult
from autometa.meta.reporting import is_report_step
from autometa.meta.synthetic import SyntheticObjective
from autometa.policy import count_params


class Scripted:
    """Synthetic scores, except for the trials whose seed is in ``faults``.

    Fault modes: ``raise`` (ValueError from an op), ``nan`` (a NaN score), ``sleep`` (hangs
    for a minute), ``oom`` (MemoryError), ``kill`` (SIGKILLs its own process),
    ``kill_once`` (SIGKILLs the first time only, remembered in a marker file),
    ``kill_twice`` (SIGKILLs the first two times),
    ``interrupt`` (KeyboardInterrupt, as Ctrl-C would inside an inline evaluation),
    ``hog`` (fills 200 MiB, holds it for a second, then SIGKILLs its own process, as the
    kernel's OOM killer would).

    While ``busy_dir`` is set, each evaluation keeps a file named by its process id there
    that holds its seed (a test finds the worker evaluating a given seed and kills it).
    """

    def __init__(self, faults=None, delay=0.0, marker_dir=None, busy_dir=None):
        self.faults = dict(faults or {})
        self.delay = delay
        self.marker_dir = marker_dir
        self.busy_dir = busy_dir
        self.objective = SyntheticObjective()
        self.calls = 0

    def __call__(self, graph, *, seed, device=None, meta_iterations=None):
        if self.busy_dir is None:
            return self._evaluate(graph, seed, device, meta_iterations)
        busy = Path(self.busy_dir) / str(os.getpid())
        busy.write_text(str(seed))
        try:
            return self._evaluate(graph, seed, device, meta_iterations)
        finally:
            busy.unlink()

    def _evaluate(self, graph, seed, device, meta_iterations):
        self.calls += 1
        mode = self.faults.get(seed)
        if self.delay:
            time.sleep(self.delay)
        if mode == "raise":
            raise ValueError("op 'broken' cannot run on this input")
        if mode == "nan":
            return EvalResult(status="ok", score=math.nan, metrics={"loss": "nan"})
        if mode == "sleep":
            time.sleep(60)
        if mode == "oom":
            raise MemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        if mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if mode == "kill_once":
            marker = Path(self.marker_dir) / f"killed-{seed}"
            if not marker.exists():
                marker.write_text("x")
                os.kill(os.getpid(), signal.SIGKILL)
        if mode == "kill_twice":
            for attempt in (1, 2):
                marker = Path(self.marker_dir) / f"killed-{seed}-{attempt}"
                if not marker.exists():
                    marker.write_text("x")
                    os.kill(os.getpid(), signal.SIGKILL)
        if mode == "hog":
            self.hoard = bytearray(b"x") * (200 * 2**20)  # written: every page is resident
            time.sleep(1.0)
            os.kill(os.getpid(), signal.SIGKILL)
        if mode == "interrupt":
            raise KeyboardInterrupt
        return self.objective(graph, seed=seed, device=device, meta_iterations=meta_iterations)


def curve_level(seed: int) -> float:
    """The level a :class:`Curves` trial's curve climbs to, fixed by its seed."""
    return (int(seed) % 97) / 97.0


class Curves:
    """Straight learning curves reported through ``reporter``: ``level * step / total``.

    The level comes from the seed (:func:`curve_level`), so which trials a pruner stops is
    known from their seeds. Reports every ``max(1, total // 10)`` steps, like MAML; a stopped
    evaluation returns at once with its curve so far.
    """

    def __init__(self, total: int = 10):
        self.total = total

    def __call__(self, graph, *, seed, device=None, meta_iterations=None, reporter=None):
        total = meta_iterations or self.total
        level, curve = curve_level(seed), []
        for step in range(1, total + 1):
            curve.append(level * step / total)
            if reporter is not None and is_report_step(step, total):
                reporter.report(step, curve[-1])
                if step < total and reporter.should_stop():
                    break
        metrics = {"learning_curve": curve}
        return EvalResult(status="ok", score=curve[-1], metrics=metrics, fidelity=len(curve))


class CallLog:
    """Synthetic scores (full fidelity 90); each evaluation appends ``"<seed> <meta_iterations>"``
    to ``path`` as it starts, so a test sees the order in which workers got their jobs."""

    def __init__(self, path):
        self.path = str(path)
        self.objective = SyntheticObjective(full_fidelity=90)

    def __call__(self, graph, *, seed, device=None, meta_iterations=None):
        with open(self.path, "a") as log:
            log.write(f"{seed} {meta_iterations}\n")
        return self.objective(graph, seed=seed, device=device, meta_iterations=meta_iterations)


class PopulationLog(CallLog):
    """:class:`CallLog` that also scores batches: ``evaluate_population`` appends one line
    ``"<pairs> <meta_iterations>"`` per call, so a test sees which populations formed."""

    def evaluate_population(self, pairs, *, device=None, meta_iterations=None):
        with open(self.path + ".populations", "a") as log:
            log.write(f"{len(pairs)} {meta_iterations}\n")
        return [
            self.objective(graph, seed=seed, device=device, meta_iterations=meta_iterations)
            for graph, seed in pairs
        ]


class SizedCurves(Curves):
    """:class:`Curves` whose results carry the candidate's size as the ``params`` objective,
    known before the evaluation through ``cost_objectives`` (for multi-objective pruning)."""

    def cost_objectives(self, graph):
        return {"params": float(count_params(graph, 2, 2))}

    def __call__(self, graph, *, seed, device=None, meta_iterations=None, reporter=None):
        result = super().__call__(
            graph, seed=seed, device=device, meta_iterations=meta_iterations, reporter=reporter
        )
        result.objectives = self.cost_objectives(graph)
        return result
