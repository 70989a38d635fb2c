"""The search loop's in-memory mirror of its study: trials, spending, counts, the best."""

from __future__ import annotations

import time

from autometa.experiment._best import FINAL, Best, choose_best
from autometa.experiment._callbacks import CallbackList
from autometa.experiment._final import Final
from autometa.experiment._verdict import verdict
from autometa.experiment.budget import Budget, Usage
from autometa.experiment.storage.base import BaseStorage
from autometa.experiment.trial import TrialRecord, TrialState

__all__ = ["StudyMirror"]


class StudyMirror:
    """The records a search session wrote, kept in memory, and what they add up to.

    The search loop (:class:`~autometa.experiment._loop.SearchLoop`) builds on it; progress
    bars and callbacks read a session through these methods.

    Args:
        storage: the study's storage.
        budget: the study's limits.
        final: the final stage the session runs when the search ends (None: none).
        callbacks: told of each trial this session finishes (``on_trial_end``).
    """

    def __init__(
        self, storage: BaseStorage, budget: Budget, final: Final | None, callbacks: CallbackList
    ) -> None:
        self.storage, self.budget, self.final, self.callbacks = storage, budget, final, callbacks
        self.trials: dict[int, TrialRecord] = {}
        self._exhausted = False  # the strategy has no new candidates
        self._final_started = False
        self._base_elapsed = 0.0  # seconds spent by earlier sessions
        self._t0 = time.monotonic()

    def usage(self) -> Usage:
        """What the study has spent, this session included."""
        spent = sum(int(t.metrics.get("meta_iterations_spent") or 0) for t in self.trials.values())
        return Usage(
            trials=len(self.trials),
            seconds=self._base_elapsed + time.monotonic() - self._t0,
            meta_iterations=spent,
        )

    def counts(self) -> dict[TrialState, int]:
        """Trials per state, from the in-memory mirror."""
        counts = dict.fromkeys(TrialState, 0)
        for trial in self.trials.values():
            counts[trial.state] += 1
        return counts

    def best(self) -> TrialRecord | None:
        """The DONE trial with the best search score so far."""
        done = [t for t in self.trials.values() if t.state == TrialState.DONE and t.has_score]
        return max(done, key=lambda t: (t.score, -t.number), default=None)

    def final_best(self) -> Best | None:
        """The final stage's winner once the stage is complete (the study's best by the one
        rule of ``autometa.experiment._best``), else None."""
        progress = self.final_progress()
        if progress is None or progress[0] < progress[1]:
            return None
        best = choose_best(list(self.trials.values()), verdict(self.storage))
        return best if best is not None and best.basis == FINAL else None

    def _meta_spent(self, usage: Usage) -> bool:
        """Whether the meta-iterations budget is spent."""
        limit = self.budget.meta_iterations
        return limit is not None and usage.meta_iterations >= limit

    def _can_create(self, usage: Usage) -> bool:
        """Whether new trials may still be created (budget left, strategy not exhausted)."""
        limit = self.budget.trials
        return (
            not self._exhausted
            and (limit is None or usage.trials < limit)
            and not self._meta_spent(usage)
        )

    def _put(self, record: TrialRecord) -> TrialRecord:
        """Mirror a record just written; callbacks hear of a trial that just finished."""
        before = self.trials.get(record.number)
        self.trials[record.number] = record
        if record.state.is_finished() and (before is None or not before.state.is_finished()):
            self.callbacks.trial_end(self, record)
        return record

    def final_progress(self) -> tuple[int, int] | None:
        """``(finished, planned)`` final-stage evaluations, or None before the stage starts."""
        if self.final is None or not self.final.enabled:
            return None
        runs = self.storage.get_final_runs() if self._final_started else []
        if not runs:
            return None
        return sum(r.state.is_finished() for r in runs), len(runs)
