"""Search progress: a tqdm bar on a terminal, plain lines elsewhere.

The bar shows trials done out of the budget, failures, trials running, the best search score so
far (and, once the final stage is complete, its winner's final mean instead: the study's best),
the time spent and an estimate of the time left, search and final stage together (see
:func:`eta_seconds`; recomputed at every redraw from the time spent and the work done), then
the final stage's progress while it runs. On a stream that is not a terminal (a log file,
Slurm, CI), it prints one plain line when a trial or a final-stage run ends, at least every
``line_interval`` seconds while nothing ends, and one at the end, never carriage returns.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from tqdm import tqdm

from autometa.experiment.budget import Budget, Usage
from autometa.experiment.trial import TrialState

__all__ = ["ProgressBar", "eta_seconds", "format_seconds", "planned_final_runs"]


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
    meta_per_trial: float | None,
    final_left: int = 0,
    seconds_per_final_run: float | None = None,
) -> float | None:
    """Seconds until the search and its final stage are done, from the time spent so far.

    The time one unit of work takes is the time spent divided by the trials finished
    (``usage.seconds / finished``: workers running at once are in it already), so the
    estimate grows while a slow trial runs and falls when trials end. The search stops at
    the first limit reached, so the smallest estimate counts: the trial budget takes the
    remaining trials, the meta-iterations budget converts what is left into trials with the
    mean meta-iterations per finished trial, the time budget is the seconds left. The final
    stage's ``final_left`` runs come after, each taking ``seconds_per_final_run`` (default:
    a trial's time).

    Args:
        budget: the search's limits.
        usage: what the study has spent (``seconds``: over every session).
        finished: trials in a finished state.
        meta_per_trial: mean meta-iterations of a finished trial, if known.
        final_left: final-stage evaluations still to run (planned ones included).
        seconds_per_final_run: the measured time of one final-stage run, once known.

    Returns:
        The estimate, or None when nothing gives one yet.

    Example:
        >>> eta_seconds(Budget(trials=10), Usage(trials=4, seconds=40.0), 4, None, 3)
        90.0
    """
    per_trial = usage.seconds / finished if finished > 0 else None
    estimates: list[float] = []
    if per_trial is not None:
        if budget.trials is not None:
            estimates.append(max(0, budget.trials - finished) * per_trial)
        if budget.meta_iterations is not None and meta_per_trial:
            left = max(0, budget.meta_iterations - usage.meta_iterations)
            estimates.append(left / meta_per_trial * per_trial)
    if budget.seconds is not None:
        estimates.append(max(0.0, budget.seconds - usage.seconds))
    if not estimates:
        return None
    per_run = seconds_per_final_run if seconds_per_final_run is not None else per_trial
    if final_left and per_run is None:
        return None
    return min(estimates) + final_left * (per_run or 0.0)


def planned_final_runs(final: Any, budget: Budget) -> int:
    """Final-stage evaluations a search will run, before the stage plans them.

    ``(finalists + baselines) x seeds``, plus the two ablation cells per seed when there is
    a baseline, plus the confirmation's winner and rival on each confirmation seed when
    there are two entries to compare; finalists are at most the trial budget.
    """
    if final is None or not getattr(final, "enabled", False):
        return 0
    top = final.top if budget.trials is None else min(final.top, budget.trials)
    entries = top + len(final.baselines)
    confirm = 2 * getattr(final, "confirm_seeds", 0) if entries >= 2 else 0
    if final.ablation and final.baselines:
        entries += 2
    return entries * final.seeds + confirm


class ProgressBar:
    """Progress of a search: what ``SearchLoop`` calls while it runs (``update``, ``close``).

    Args:
        budget: the search budget (its limits give the bar's length and the estimates).
        stream: where to draw; default ``sys.stderr``.
        min_interval: seconds between redraws on a terminal.
        line_interval: the most seconds between plain lines on a stream that is not a
            terminal while no trial ends (a line is printed at every trial end too).
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
        self.tty = bool(isatty and isatty()) and not os.environ.get("CI")
        self._last: float | None = None
        self._ended: tuple[int, int] | None = None  # finished trials and final runs, last line
        self._final_start: tuple[float, int] | None = None  # seconds and runs done at its start
        self._bar: tqdm | None = None

    @staticmethod
    def wanted(progress: bool | None, stream: TextIO | None = None) -> bool:
        """Whether to report: ``progress`` when given, else always (a bar on a terminal,
        plain lines elsewhere)."""
        return True if progress is None else bool(progress)

    def status(self, loop: Any) -> str:
        """Everything but the bar: failures, running, best, time spent and left, final stage."""
        counts = loop.counts()
        usage = loop.usage()
        parts = [f"{counts[TrialState.FAILED]} failed"]
        if counts[TrialState.PRUNED]:
            parts.append(f"{counts[TrialState.PRUNED]} pruned")
        if counts[TrialState.RUNNING]:
            parts.append(f"{counts[TrialState.RUNNING]} running")
        final = loop.final_progress()
        winner = loop.final_best()  # None until the final stage is complete
        if winner is not None:
            parts.append(f"best final mean {winner.value:.4g} (#{winner.number}, final winner)")
        else:
            best = loop.best()
            found = f"{best.score:.4g} (#{best.number})" if best else "-"
            parts.append(f"best search score {found}")
        eta = self.eta(loop)
        timing = f"{format_seconds(usage.seconds)} elapsed"
        timing += f", eta {format_seconds(eta)}" if eta is not None else ", eta ?"
        parts.append(timing)
        remaining = self.budget.remaining(usage)
        if "meta_iterations" in remaining and final is None:
            parts.append(f"{int(remaining['meta_iterations'])} meta-it left")
        if final is not None:
            parts.append(f"final {final[0]}/{final[1]}")
        return " | ".join(parts)

    def eta(self, loop: Any) -> float | None:
        """:func:`eta_seconds` for the loop now: the search's trials, then its final stage
        (the runs it planned, or will plan once the search ends)."""
        done = [t for t in loop.trials.values() if t.state.is_finished()]
        spent = [t.metrics.get("meta_iterations_spent") for t in done]
        spent = [float(s) for s in spent if isinstance(s, (int, float)) and s > 0]
        usage = loop.usage()
        final = loop.final_progress()
        if final is None:
            left = planned_final_runs(getattr(loop, "final", None), self.budget)
            return eta_seconds(self.budget, usage, len(done),
                               statistics.fmean(spent) if spent else None, left)  # fmt: skip
        if self._final_start is None:
            self._final_start = (usage.seconds, final[0])
        seconds, runs = usage.seconds - self._final_start[0], final[0] - self._final_start[1]
        per_run = seconds / runs if runs > 0 else None
        if per_run is None and done:
            per_run = self._final_start[0] / len(done)
        if per_run is None:
            return None
        return max(0, final[1] - final[0]) * per_run

    def render(self, loop: Any) -> str:
        """The whole line as plain text (what a stream that is not a terminal gets)."""
        finished = sum(n for s, n in loop.counts().items() if s.is_finished())
        head = f"{finished}/{self.budget.trials}" if self.budget.trials else f"{finished} trials"
        return f"{head} | {self.status(loop)}"

    def update(self, loop: Any, force: bool = False) -> None:
        """Redraw: on a terminal at most every ``min_interval``; elsewhere a line when a trial
        or final run has ended since the last one, or ``line_interval`` has passed."""
        now = self.clock()
        if not self.tty:
            final = loop.final_progress()
            ended = (sum(n for s, n in loop.counts().items() if s.is_finished()),
                     final[0] if final is not None else 0)  # fmt: skip
            due = self._last is None or now - self._last >= self.line_interval
            if not (force or due or ended != self._ended):
                return
            self._last, self._ended = now, ended
            self.stream.write(self.render(loop) + "\n")
            self.stream.flush()
            return
        if not force and self._last is not None and now - self._last < self.min_interval:
            return
        self._last = now
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
