"""Trial states and the frozen record of one trial, as storage keeps it."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any

import networkx as nx

from autometa.graph import from_json

__all__ = ["TrialState", "TrialRecord", "StudyInfo", "trial_seed"]


class TrialState(IntEnum):
    """Where a trial is in its life.

    ``QUEUED`` (created, waiting for a worker, or waiting between multi-fidelity rungs) ->
    ``RUNNING`` (a worker evaluates it) -> one of the finished states: ``DONE`` (scored),
    ``FAILED`` (the evaluation raised, returned NaN, timed out, ran out of memory or its worker
    died) or ``PRUNED`` (dropped early by successive halving; its score is the one at the
    fidelity it reached). Finished trials never change again.
    """

    QUEUED = 0
    RUNNING = 1
    DONE = 2
    FAILED = 3
    PRUNED = 4

    def is_finished(self) -> bool:
        """True for ``DONE``, ``FAILED`` and ``PRUNED``."""
        return self in (TrialState.DONE, TrialState.FAILED, TrialState.PRUNED)


@dataclass(frozen=True)
class TrialRecord:
    """One candidate's evaluation, a read-only copy of what storage holds.

    Attributes:
        number: position of the trial in its study, from 0.
        state: the :class:`TrialState`.
        key: the candidate's canonical hash (``autometa.graph.canonical_hash``).
        graph_json: the candidate graph as node-link JSON (see :attr:`graph`).
        values: the candidate's decision values (its encoding in the space).
        seed: the evaluation seed, derived from the search seed and ``number``.
        candidate_id: the strategy's id of the candidate (JSON-safe), to tell it back.
        score: the value maximised; None until the trial has one, NaN never stored.
        objectives: extra objective values (e.g. ``params``).
        metrics: everything else the evaluator reported (JSON-safe).
        error: why the trial failed, or None.
        device: where it ran (``"cpu"``, ``"cuda:1"``, ``"ray:<node>"``).
        fidelity: meta-iterations reached (the highest rung for multi-fidelity), or None when
            the evaluator ran at its own default and did not report it.
        rung: multi-fidelity rung index reached, or None without multi-fidelity.
        bracket: multi-fidelity bracket index, or None without multi-fidelity.
        attempts: how many evaluations were lost to a dead worker and retried.
        duplicate_of: number of the DONE trial this one copied its score from, or None.
        created: when the trial was created (seconds since the epoch).
        started: when its (last) evaluation started.
        finished: when it reached a finished state.
        wall_time: seconds spent evaluating (all rungs together).
        storage: the SQLite file the record was read from (None in memory), so that
            ``autometa.export(result.best, path)`` finds the trial's weights on its own.
    """

    number: int
    state: TrialState
    key: str
    graph_json: dict[str, Any]
    values: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    candidate_id: Any = None
    score: float | None = None
    objectives: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    device: str | None = None
    fidelity: int | None = None
    rung: int | None = None
    bracket: int | None = None
    attempts: int = 0
    duplicate_of: int | None = None
    created: float | None = None
    started: float | None = None
    finished: float | None = None
    wall_time: float | None = None
    storage: str | None = field(default=None, compare=False)

    @property
    def graph(self) -> nx.DiGraph:
        """A fresh ``nx.DiGraph`` of the candidate (changing it does not change the record)."""
        return from_json(self.graph_json)

    @property
    def has_score(self) -> bool:
        """True when the trial holds a finite score (DONE or PRUNED with a score)."""
        return self.score is not None and math.isfinite(self.score)

    def replace(self, **changes: Any) -> TrialRecord:
        """A copy with some fields changed (records themselves are immutable)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of every field (``state`` by name)."""
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["state"] = self.state.name
        return out


@dataclass(frozen=True)
class StudyInfo:
    """What a study was started with; stored once, checked on every resume.

    Attributes:
        space_name: the space's name.
        space_hash: ``SearchSpace.content_hash`` of the normalised space.
        space_spec: ``SearchSpace.to_dict()``, so the space can be rebuilt from storage alone.
        space_source: the space file's path when it came from a file, else None.
        space_text: the space file's text when it came from a file, else None.
        strategy: the strategy's registry name, or its class path for an instance.
        strategy_options: keyword options the strategy was made with (JSON-safe).
        evaluator: ``{"target": "module:Class", "config": {...}}`` describing the evaluator.
        seed: the search seed.
        settings: run settings reused by ``autometa resume`` (budget, workers, fidelity,
            trial time-out).
        versions: autometa, torch, numpy and Python versions at creation.
        created: creation time (seconds since the epoch).
    """

    space_name: str
    space_hash: str
    space_spec: dict[str, Any]
    strategy: str
    seed: int = 0
    space_source: str | None = None
    space_text: str | None = None
    strategy_options: dict[str, Any] = field(default_factory=dict)
    evaluator: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    created: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of every field."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def trial_seed(search_seed: int, number: int) -> int:
    """The evaluation seed of trial ``number``: a fixed mix of the search seed and the number.

    A hash (not ``search_seed + number``) keeps the seeds of neighbouring searches apart, and
    the same pair always gives the same seed, on every machine, so a resumed or repeated
    search evaluates every trial with the seed it had the first time.
    """
    digest = hashlib.sha256(f"autometa-trial:{int(search_seed)}:{int(number)}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF
