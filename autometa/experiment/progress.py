"""Search progress: a tqdm bar on a terminal, a plain line now and then elsewhere.

The bar shows trials done out of the budget, failures, trials running, the best score so far,
the time spent and an estimate of the time left (see :func:`eta_seconds`), then the final
stage's progress while it runs. On a stream that is not a terminal (a log file, CI), a
forced bar prints one plain line every ``line_interval`` seconds and one at the end, never
carriage returns.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from tqdm import tqdm

from autometa.experiment.budget import Budget, Usage
from autometa.experiment.trial import TrialState

__all__ = ["ProgressBar", "eta_seconds", "format_seconds"]


def format_seconds(seconds: float) -> str:
    """``h:mm:ss`` (or ``m:ss`` under an hour)."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def eta_seconds(
    budget: Budget,
    usage: Usage,
    finished: int,
    durations: Sequence[float],
    meta_per_trial: float | None,
    workers: int,
) -> float | None:
    """Seconds until the budget is spent, estimated from the trials seen so far.

    Each limit gives an estimate and the search stops at the first one reached, so the
    smallest counts: the trial budget takes ``remaining trials x median duration / workers``;
    the meta-iterations budget converts what is left into trials with the mean meta-iterations
    per finished trial first; the time budget is the seconds left. Without a finished trial
    only the time budget can say anything.

    Args:
        budget: the search's limits.
        usage: what the study has spent.
        finished: trials in a finished state.
        durations: wall-clock seconds of finished evaluations.
        meta_per_trial: mean meta-iterations of a finished trial, if known.
        workers: evaluations run at once.

    Returns:
        The estimate, or None when no limit gives one.

    Example:
        >>> eta_seconds(Budget(trials=10), Usage(trials=4), 4, [10.0, 20.0, 30.0], None, 2)
        120.0
    """
    estimates: list[float] = []
    workers = max(1, int(workers))
    if durations:
        per_trial = statistics.median(durations) / workers
        if budget.trials is not None:
            estimates.append(max(0, budget.trials - finished) * per_trial)
        if budget.meta_iterations is not None and meta_per_trial:
            left = max(0, budget.meta_iterations - usage.meta_iterations)
            estimates.append(left / meta_per_trial * per_trial)
    if budget.seconds is not None:
        estimates.append(max(0.0, budget.seconds - usage.seconds))
    return min(estimates) if estimates else None


class ProgressBar:
    """Progress of a search: what ``SearchLoop`` calls while it runs (``update``, ``close``).

    Args:
        budget: the search budget (its limits give the bar's length and the estimates).
        stream: where to draw; default ``sys.stderr``.
        min_interval: seconds between redraws on a terminal.
        line_interval: seconds between plain lines on a stream that is not a terminal.
        clock: the time source for the intervals (a fixed clock in tests).
    """

    def __init__(
        self,
        budget: Budget,
        stream: TextIO | None = None,
        min_interval: float = 0.2,
        line_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget = budget
        self.stream = stream if stream is not None else sys.stderr
        self.min_interval, self.line_interval = min_interval, line_interval
        self.clock = clock
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self._last: float | None = None
        self._bar: tqdm | None = None

    @staticmethod
    def wanted(progress: bool | None, stream: TextIO | None = None) -> bool:
        """Whether to draw: ``progress`` when given, else only on a terminal outside CI."""
        if progress is not None:
            return bool(progress)
        stream = stream if stream is not None else sys.stderr
        if os.environ.get("CI"):
            return False
        isatty = getattr(stream, "isatty", None)
        return bool(isatty and isatty())

    def status(self, loop: Any) -> str:
        """Everything but the bar: failures, running, best, time spent and left, final stage."""
        counts = loop.counts()
        usage = loop.usage()
        parts = [f"{counts[TrialState.FAILED]} failed"]
        if counts[TrialState.PRUNED]:
            parts.append(f"{counts[TrialState.PRUNED]} pruned")
        if counts[TrialState.RUNNING]:
            parts.append(f"{counts[TrialState.RUNNING]} running")
        best = loop.best()
        parts.append(f"best {best.score:.4g} (#{best.number})" if best else "best -")
        final = loop.final_progress()
        timing = f"{format_seconds(usage.seconds)} elapsed"
        if final is None:
            eta = self.eta(loop)
            timing += f", eta {format_seconds(eta)}" if eta is not None else ", eta ?"
        parts.append(timing)
        remaining = self.budget.remaining(usage)
        if "meta_iterations" in remaining:
            parts.append(f"{int(remaining['meta_iterations'])} meta-it left")
        if final is not None:
            parts.append(f"final {final[0]}/{final[1]}")
        return " | ".join(parts)

    def eta(self, loop: Any) -> float | None:
        """:func:`eta_seconds` for the loop's trials and its executor's workers."""
        done = [t for t in loop.trials.values() if t.state.is_finished()]
        durations = [t.wall_time for t in done if t.wall_time and t.duplicate_of is None]
        spent = [t.metrics.get("meta_iterations_spent") for t in done]
        spent = [float(s) for s in spent if isinstance(s, (int, float)) and s > 0]
        workers = getattr(getattr(loop, "executor", None), "capacity", 1) or 1
        return eta_seconds(
            self.budget,
            loop.usage(),
            len(done),
            durations,
            statistics.fmean(spent) if spent else None,
            workers,
        )

    def render(self, loop: Any) -> str:
        """The whole line as plain text (what a stream that is not a terminal gets)."""
        finished = sum(n for s, n in loop.counts().items() if s.is_finished())
        head = f"{finished}/{self.budget.trials}" if self.budget.trials else f"{finished} trials"
        return f"{head} | {self.status(loop)}"

    def update(self, loop: Any, force: bool = False) -> None:
        """Redraw (at most every ``min_interval``, or ``line_interval``, unless ``force``)."""
        now = self.clock()
        interval = self.min_interval if self.tty else self.line_interval
        if not force and self._last is not None and now - self._last < interval:
            return
        self._last = now
        if not self.tty:
            self.stream.write(self.render(loop) + "\n")
            self.stream.flush()
            return
        finished = sum(n for s, n in loop.counts().items() if s.is_finished())
        if self._bar is None:
            self._bar = self._open()
        self._bar.n = finished
        self._bar.set_description_str(self.status(loop), refresh=False)
        self._bar.refresh()

    def close(self, loop: Any) -> None:
        """Draw the final state and end the line."""
        self.update(loop, force=True)
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _open(self) -> tqdm:
        """The tqdm bar, drawn by :meth:`update` only (no timer, no own rate or estimate)."""
        if self.budget.trials:
            layout = "{n_fmt}/{total_fmt} [{bar:20}] | {desc}"
        else:
            layout = "{n_fmt} trials | {desc}"
        return tqdm(
            total=self.budget.trials,
            file=self.stream,
            bar_format=layout,
            ascii="-#",
            mininterval=0,
            miniters=0,
            dynamic_ncols=False,
            disable=False,
            leave=True,
        )
