"""A one-line progress bar for searches on a terminal; silent elsewhere."""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

from autometa.experiment.budget import Budget
from autometa.experiment.trial import TrialState

__all__ = ["ProgressBar", "format_seconds"]


def format_seconds(seconds: float) -> str:
    """``h:mm:ss`` (or ``m:ss`` under an hour)."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressBar:
    """Trials done / failed, best score, elapsed and remaining budget on one ``\\r`` line.

    Args:
        budget: the search budget (its limits give the bar's length and the time left).
        stream: where to draw; default ``sys.stderr``.
        min_interval: seconds between redraws.
    """

    def __init__(self, budget: Budget, stream: TextIO | None = None, min_interval: float = 0.2):
        self.budget = budget
        self.stream = stream if stream is not None else sys.stderr
        self.min_interval = min_interval
        self._last = 0.0
        self._width = 0

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

    def render(self, loop: Any) -> str:
        """The bar's text for the loop's current state."""
        counts = loop.counts()
        usage = loop.usage()
        finished = sum(n for s, n in counts.items() if s.is_finished())
        parts = []
        if self.budget.trials:
            filled = int(20 * min(1.0, finished / self.budget.trials))
            parts.append(f"[{'#' * filled}{'-' * (20 - filled)}] {finished}/{self.budget.trials}")
        else:
            parts.append(f"{finished} trials")
        parts.append(f"{counts[TrialState.FAILED]} failed")
        if counts[TrialState.PRUNED]:
            parts.append(f"{counts[TrialState.PRUNED]} pruned")
        running = counts[TrialState.RUNNING]
        if running:
            parts.append(f"{running} running")
        best = loop.best()
        parts.append(f"best {best.score:.4g} (#{best.number})" if best else "best -")
        elapsed = f"{format_seconds(usage.seconds)} elapsed"
        remaining = self.budget.remaining(usage)
        if "seconds" in remaining:
            elapsed += f", {format_seconds(remaining['seconds'])} left"
        parts.append(elapsed)
        if "meta_iterations" in remaining:
            parts.append(f"{int(remaining['meta_iterations'])} meta-it left")
        final = loop.final_progress()
        if final is not None:
            parts.append(f"final {final[0]}/{final[1]}")
        return " | ".join(parts)

    def update(self, loop: Any, force: bool = False) -> None:
        """Redraw (at most every ``min_interval`` seconds unless ``force``)."""
        now = time.monotonic()
        if not force and now - self._last < self.min_interval:
            return
        self._last = now
        text = self.render(loop)
        pad = max(0, self._width - len(text))
        self._width = len(text)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()

    def close(self, loop: Any) -> None:
        """Draw the final state and end the line."""
        self.update(loop, force=True)
        self.stream.write("\n")
        self.stream.flush()
