"""Trial states and the frozen record of one trial, as storage keeps it."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any

import networkx as nx

from autometa.errors import StorageError
from autometa.graph import from_json

__all__ = [
    "LOST_WORKER",
    "FinalRun",
    "SessionInfo",
    "StudyInfo",
    "TrialRecord",
    "TrialState",
    "confirmation_seeds",
    "final_seeds",
    "seed_list",
    "trial_seed",
]

LOST_WORKER = "worker died"
"""How the reason of every evaluation lost with its worker begins (``"worker died (signal
9)"`` from worker processes, ``"worker died (Ray: NodeDiedError)"`` from Ray)."""


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
        score: the *search score*, the value the search maximised (the mean over the search
            seeds); None until the trial has one, NaN never stored.
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
        final_mean: the *final mean*, over the final stage's fresh seeds, for a finalist of
            a study read with :func:`~autometa.experiment.load_result`; else None (never
            stored with the trial: the final runs hold it).
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
    final_mean: float | None = field(default=None, compare=False)

    @property
    def search_score(self) -> float | None:
        """The mean over the search seeds (:attr:`score`), named for what it is."""
        return self.score

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

    def __repr__(self) -> str:
        """One short line (number, state, score, key prefix); the graph is in ``graph_json``."""
        score = f"{self.score:.6g}" if self.score is not None else "None"
        final = "" if self.final_mean is None else f", final_mean={self.final_mean:.6g}"
        return (
            f"TrialRecord(number={self.number}, state={self.state.name}, score={score}{final}, "
            f"key='{self.key[:12]}')"
        )


@dataclass(frozen=True)
class StudyInfo:
    """What a study was started with; stored once, checked on every resume.

    Attributes:
        space_name: the space's name.
        space_hash: ``SearchSpace.content_hash`` of the normalised space.
        space_spec: ``SearchSpace.to_dict()``, so the space can be rebuilt from storage alone.
        space_source: the space file's path when it came from a file, else None.
        space_text: the space file's text when it came from a file, else None.
        strategy: the strategy's registered name (``STRATEGIES``); for a strategy object no
            registry knows, its class path (a record only: see ``unregistered``).
        strategy_options: keyword options the strategy was made with (JSON-safe).
        evaluator: ``{"name": ..., "target": "module:Class", "config": {...}}``: the
            evaluator's registered name (``EVALUATORS``; None for an object no registry
            knows), its class path (a record only, never imported) and ``to_config()``.
        seed: the search seed.
        settings: run settings reused by ``autometa resume`` (budget, workers, fidelity,
            trial time-out).
        versions: autometa, torch, numpy and Python versions at creation.
        created: creation time (seconds since the epoch).
        imports: the modules and files that registered the study's names (the command
            line's ``--import`` list), named again in the message when a name is missing.
            Never imported because the study lists them.
        unregistered: which of ``"evaluator"`` and ``"strategy"`` were objects no registry
            knows; such a study is shown and exported, and resumed only from Python.
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
    imports: list[str] = field(default_factory=list)
    unregistered: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of every field."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: Any, where: str = "the study") -> StudyInfo:
        """The study record read from storage, checked field by field (unknown keys ignored).

        Raises:
            StorageError: a field is missing or has the wrong type (one line naming it).
        """
        if not isinstance(data, dict):
            raise StorageError(f"{where}: the study record is {type(data).__name__}, not a dict")
        out: dict[str, Any] = {}
        for name, (types, required) in _STUDY_FIELDS.items():
            if name not in data:
                if required:
                    raise StorageError(f"{where}: the study record lacks {name!r}")
                continue
            value = data[name]
            if not isinstance(value, types) or isinstance(value, bool) and bool not in types:
                expected = " or ".join("None" if t is type(None) else t.__name__ for t in types)
                raise StorageError(
                    f"{where}: the study record's {name!r} must be {expected}, "
                    f"got {type(value).__name__}"
                )
            if isinstance(value, list) and not all(isinstance(v, str) for v in value):
                raise StorageError(f"{where}: the study record's {name!r} must list strings")
            out[name] = value
        return cls(**out)


_STUDY_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "space_name": ((str,), True),
    "space_hash": ((str,), True),
    "space_spec": ((dict,), True),
    "strategy": ((str,), True),
    "seed": ((int,), False),
    "space_source": ((str, type(None)), False),
    "space_text": ((str, type(None)), False),
    "strategy_options": ((dict,), False),
    "evaluator": ((dict,), False),
    "settings": ((dict,), False),
    "versions": ((dict,), False),
    "created": ((float, int, type(None)), False),
    "imports": ((list,), False),
    "unregistered": ((list,), False),
}


@dataclass(frozen=True)
class SessionInfo:
    """One process's work on a study, as storage records it (see ``autometa.experiment``'s
    heartbeat: a session that misses its heartbeats is stale and its study may be taken over).

    Attributes:
        id: the session number.
        host: the machine's name (``socket.gethostname()``), or None for old records.
        pid: the process id.
        started: when the session began (seconds since the epoch).
        updated: its last heartbeat.
        heartbeat: the seconds between its heartbeats, or None for old records.
        ended: when it ended (or was taken over), or None while it claims the study.
    """

    id: int
    host: str | None
    pid: int | None
    started: float
    updated: float
    heartbeat: float | None = None
    ended: float | None = None


@dataclass(frozen=True)
class FinalRun:
    """One evaluation of the final stage: one entry (a finalist, a baseline or an ablation
    cell) on one of the fresh seeds every entry shares, or one evaluation of the confirmation
    (the winner or its closest rival on a confirmation seed).

    Attributes:
        id: position in the final stage, from 0 (assigned by storage).
        entry: the entry's label (``"trial 12"``, ``"baseline maml-relu-2x100"``, ...).
        kind: ``"finalist"``, ``"baseline"``, ``"ablation"`` or ``"confirmation"`` (then
            ``entry`` is the label of the final-stage entry it scores again).
        trial: the search trial a finalist re-evaluates (None for the others).
        key: the canonical hash of the evaluated graph (hyperparameters included).
        graph_json: the evaluated graph as node-link JSON.
        seed_index: which of the final seeds (0 .. S'-1), or of the confirmation seeds for
            a confirmation run; the same index is the same seed for every entry of a phase,
            so differences between entries are paired.
        seed: the evaluation seed.
        state: ``QUEUED``, ``RUNNING``, ``DONE`` or ``FAILED``.
        score: the held-out score, or None.
        metrics: what the evaluator reported (JSON-safe).
        error: why it failed, or None.
        device: where it ran.
        wall_time: seconds it took.
        created: when it was created (seconds since the epoch).
        finished: when it finished.
        attempts: evaluations of this run lost with their worker and retried.
    """

    id: int
    entry: str
    kind: str
    trial: int | None
    key: str
    graph_json: dict[str, Any]
    seed_index: int
    seed: int
    state: TrialState = TrialState.QUEUED
    score: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    device: str | None = None
    wall_time: float | None = None
    created: float | None = None
    finished: float | None = None
    attempts: int = 0

    @property
    def graph(self) -> nx.DiGraph:
        """A fresh ``nx.DiGraph`` of the evaluated graph."""
        return from_json(self.graph_json)

    @property
    def lost_with_worker(self) -> bool:
        """FAILED because the process or node running it died (a signal, a lost Ray node), not
        because of the candidate: a resume runs it again. Out of memory is not a lost worker
        (its reason starts with ``"out of memory: "``)."""
        return self.state == TrialState.FAILED and (self.error or "").startswith(LOST_WORKER)

    def replace(self, **changes: Any) -> FinalRun:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of every field (``state`` by name)."""
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["state"] = self.state.name
        return out


def _mix(*parts: object) -> int:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def seed_list(first: int, count: int) -> list[int]:
    """The ``count`` evaluation seeds of one trial: its own seed, then seeds mixed from it.

    With ``count=1`` this is ``[first]``, so a one-seed search evaluates exactly as before.
    """
    return [int(first)] + [_mix("autometa-seed", int(first), k) for k in range(1, count)]


def final_seeds(
    search_seed: int, count: int, used: set[int] | frozenset[int] = frozenset()
) -> list[int]:
    """``count`` fresh seeds for the final stage, none of them in ``used`` (the search's).

    They come from their own stream (``"autometa-final"``), so they are the same for every
    finalist, baseline and ablation cell of a study (common random numbers), and a resumed
    study draws the same ones.
    """
    return _fresh_seeds("autometa-final", search_seed, count, used)


def confirmation_seeds(
    search_seed: int, count: int, used: set[int] | frozenset[int] = frozenset()
) -> list[int]:
    """``count`` fresh seeds for the confirmation, none of them in ``used`` (the search's and
    the final stage's seeds).

    Drawn like :func:`final_seeds` from a stream of their own (``"autometa-confirm"``), so
    they are the same for the winner and its rival, and a resumed study draws the same ones.
    """
    return _fresh_seeds("autometa-confirm", search_seed, count, used)


def _fresh_seeds(
    stream: str, search_seed: int, count: int, used: set[int] | frozenset[int]
) -> list[int]:
    out: list[int] = []
    k = 0
    while len(out) < count:
        seed = _mix(stream, int(search_seed), k)
        k += 1
        if seed not in used and seed not in out:
            out.append(seed)
    return out


def trial_seed(search_seed: int, number: int) -> int:
    """The evaluation seed of trial ``number``: a fixed mix of the search seed and the number.

    A hash (not ``search_seed + number``) keeps the seeds of neighbouring searches apart, and
    the same pair always gives the same seed, on every machine, so a resumed or repeated
    search evaluates every trial with the seed it had the first time.
    """
    return _mix("autometa-trial", int(search_seed), int(number))
