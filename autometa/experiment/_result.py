"""What a search produced, read back from its storage: :class:`SearchResult`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from autometa.errors import StorageError
from autometa.experiment._best import Best, choose_best, ranked
from autometa.experiment._failures import FailureKind, failure_kinds
from autometa.experiment._frame import trials_frame
from autometa.experiment._verdict import Verdict, verdict
from autometa.experiment.budget import Usage
from autometa.experiment.storage import BaseStorage, SQLiteStorage, get_storage
from autometa.experiment.trial import StudyInfo, TrialRecord

__all__ = ["SearchResult", "load_result"]


@dataclass
class SearchResult:
    """What a search produced, read back from its storage.

    Attributes:
        best: the study's best trial by the one rule of ``docs/scoring.md``: the final
            stage's winner (highest final mean over its fresh seeds) once the stage is
            complete, else the DONE trial with the highest search score; None when no trial
            succeeded. ``best.score`` is always its search score, ``best.final_mean`` its
            final mean (None before the final stage).
        trials: every trial, best first (the leaderboard: the final stage's finalists by
            final mean once it is complete, then by search score; unscored trials last).
        study: what the study was started with.
        storage: the storage holding everything (weights: ``storage.load_weights(n)``).
        counts: number of trials per state name (``"DONE"``, ``"FAILED"``, ...).
        usage: trials, seconds and meta-iterations spent over all sessions.
        stop_reason: why the last session stopped.
        verdict: the final stage's entries, winner and paired margins (None without one).
        best_info: which score made ``best`` the best, with its label (``best (final stage
            winner, final mean over 3 fresh seeds)`` or ``best so far (search score)``).
    """

    best: TrialRecord | None
    trials: list[TrialRecord]
    study: StudyInfo
    storage: BaseStorage
    counts: dict[str, int] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    stop_reason: str = ""
    verdict: Verdict | None = None
    best_info: Best | None = None

    def __repr__(self) -> str:
        best = "None" if self.best_info is None else self.best_info.short()
        counts = ", ".join(f"{k.lower()}={v}" for k, v in self.counts.items() if v)
        return f"SearchResult(best={best}, {counts or 'no trials'}, storage={self.storage})"

    @property
    def meta_iterations(self) -> int:
        """Meta-iterations evaluated over the whole study (every multi-fidelity rung)."""
        return self.usage.meta_iterations

    @property
    def failures(self) -> list[FailureKind]:
        """Failed trials grouped by kind (``ValueError``, ``out of memory``, ...), most first."""
        return failure_kinds(self.trials)

    def to_pandas(self) -> Any:
        """The trials as a ``pandas.DataFrame``, one row per trial by number.

        Columns: ``number``, ``state``, ``best`` (True on the row of :attr:`best`),
        ``search_score`` (the mean over the search seeds), ``score_sem``,
        ``params``, ``fidelity``, ``wall_time``, ``key``, ``duplicate_of``, ``device``,
        ``error``, ``final_mean`` (a finalist's mean over the final stage's fresh seeds),
        ``seed_score_0`` ... (each search seed's score) and ``value.<name>`` for every
        decision. Needs pandas (the ``pandas`` extra): without it, an ImportError that says
        what to install.
        """
        best = self.best
        return trials_frame(self.trials, self.verdict, None if best is None else best.number)


def load_result(
    storage: BaseStorage | str | os.PathLike[str], stop_reason: str = ""
) -> SearchResult:
    """Read a study (finished, running or interrupted) into a :class:`SearchResult`.

    A path is opened read-only: the file is never written (nor migrated) by reading it.

    Raises:
        StorageError: the storage holds no study, or the file is damaged or malformed (one
            line naming the table, row and field).
    """
    if isinstance(storage, (str, os.PathLike)) and str(storage) != ":memory:":
        storage = SQLiteStorage(storage, read_only=True)
    store = get_storage(storage)
    study = store.get_study()
    if study is None:
        raise StorageError(f"{store} holds no study")
    final = verdict(store)
    trials = ranked(store.get_all_trials(), final)
    spent = sum(int(t.metrics.get("meta_iterations_spent") or 0) for t in trials)
    counts = {state.name: n for state, n in store.count_states().items()}
    usage = Usage(len(trials), store.elapsed_seconds(), spent)
    best = choose_best(trials, final)
    return SearchResult(
        None if best is None else best.trial,
        trials,
        study,
        store,
        counts,
        usage,
        stop_reason,
        final,
        best,
    )
