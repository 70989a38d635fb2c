"""Multi-fidelity: successive halving, Hyperband and ASHA over the number of meta-iterations.

A candidate first gets a short evaluation (few meta-iterations); only the best ``1/eta`` of
each rung is evaluated again with ``eta`` times more, up to the full count, so weak
architectures are dropped early.

Records: a candidate is **one trial** for its whole life. Between rungs it is ``QUEUED`` with
the score and ``fidelity`` of the rung it has reached; ``metrics["rungs"]`` lists every rung's
``{"rung", "meta_iterations", "score"}``. A candidate dropped by a rung ends ``PRUNED`` with
its last score; one that completes the top rung ends ``DONE``. A promoted trial's next rung
continues the meta-training its last rung stopped (the state stored with the trial,
``autometa.experiment._rungs``), so a trial's cost is its highest rung, kept in
``metrics["meta_iterations_spent"]``; an evaluator that keeps no state starts each rung over
and pays the sum of its rungs. Everything is derived from the stored
trials (their ``bracket``, ``rung`` and ``fidelity``), so a multi-fidelity search resumes like
any other. The strategy is told a candidate's last score when it is pruned or done.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from autometa.experiment._asha import asha_promotions
from autometa.experiment.trial import TrialRecord, TrialState

__all__ = ["ASHA", "BracketPlan", "SuccessiveHalving", "Hyperband", "fidelity_from_dict"]


@dataclass(frozen=True)
class BracketPlan:
    """One successive-halving bracket: candidates and meta-iterations per rung."""

    sizes: tuple[int, ...]
    fidelities: tuple[int, ...]

    @property
    def cost(self) -> int:
        """Meta-iterations the full bracket spends (sum over rungs of size x fidelity)."""
        return sum(n * r for n, r in zip(self.sizes, self.fidelities))


@dataclass(frozen=True)
class SuccessiveHalving:
    """Successive halving over meta-iterations (Jamieson & Talwalkar, 2016).

    Rungs run at ``max_iterations * eta**-i`` meta-iterations for ``i = s, ..., 0`` where
    ``s = floor(log_eta(max_iterations / min_iterations))``; each bracket starts ``eta**s``
    candidates and keeps the best ``1/eta`` at every rung.

    Args:
        min_iterations: meta-iterations of the first rung (at least this many).
        max_iterations: meta-iterations of the last rung (full evaluation).
        eta: the reduction factor (at least 2).

    Example:
        >>> SuccessiveHalving(10, 90, eta=3).plans()
        [BracketPlan(sizes=(9, 3, 1), fidelities=(10, 30, 90))]
    """

    min_iterations: int
    max_iterations: int
    eta: int = 3

    def __post_init__(self) -> None:
        if not 1 <= self.min_iterations <= self.max_iterations:
            raise ValueError(
                "`min_iterations` and `max_iterations` must satisfy 1 <= min <= max, got "
                f"min_iterations={self.min_iterations}, max_iterations={self.max_iterations}"
            )
        if self.eta < 2:
            raise ValueError(f"`eta` must be at least 2, got eta={self.eta}")

    @property
    def s_max(self) -> int:
        """Number of halvings in the most aggressive bracket."""
        return int(
            math.floor(math.log(self.max_iterations / self.min_iterations, self.eta) + 1e-9)
        )

    def _plan(self, s: int, n0: int) -> BracketPlan:
        sizes = tuple(max(1, n0 // self.eta**i) for i in range(s + 1))
        fidelities = tuple(
            max(1, round(self.max_iterations * self.eta ** (i - s))) for i in range(s + 1)
        )
        return BracketPlan(sizes, fidelities)

    def plans(self) -> list[BracketPlan]:
        """The brackets, used in turn (bracket ``b`` follows plan ``b % len(plans)``)."""
        return [self._plan(self.s_max, self.eta**self.s_max)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, stored with the study."""
        return {
            "method": type(self).__name__.lower(),
            "min_iterations": self.min_iterations,
            "max_iterations": self.max_iterations,
            "eta": self.eta,
        }


@dataclass(frozen=True)
class Hyperband(SuccessiveHalving):
    """Hyperband (Li et al., 2018): successive-halving brackets from aggressive to none.

    Bracket ``s`` (from ``s_max`` down to 0) starts ``ceil((s_max + 1) / (s + 1) * eta**s)``
    candidates at ``max_iterations * eta**-s`` meta-iterations; the last bracket evaluates
    every candidate fully. Brackets are used in turn.
    """

    def plans(self) -> list[BracketPlan]:
        s_max = self.s_max
        return [
            self._plan(s, math.ceil((s_max + 1) / (s + 1) * self.eta**s))
            for s in range(s_max, -1, -1)
        ]


@dataclass(frozen=True)
class ASHA(SuccessiveHalving):
    """Asynchronous successive halving (Li et al., 2020): promotions never wait for a rung.

    The rungs are successive halving's (``max_iterations * eta**-i`` meta-iterations), but
    whenever a worker is free it continues a candidate from the highest rung where one is in
    the top ``1/eta`` of that rung's results so far and not yet promoted, and otherwise starts
    a new candidate at the first rung (``autometa.experiment._asha``). Every candidate is in
    bracket 0; the number of candidates is left to the budget. Candidates still waiting at a
    rung when no new candidate may start and none is due for promotion end ``PRUNED``.

    Example:
        >>> ASHA(10, 90, eta=3).plans()[0].fidelities
        (10, 30, 90)
    """


def fidelity_from_dict(data: dict[str, Any] | None) -> SuccessiveHalving | None:
    """Inverse of :meth:`SuccessiveHalving.to_dict` (None stays None)."""
    if not data:
        return None
    data = dict(data)
    method = data.pop("method", "successivehalving")
    classes = {"successivehalving": SuccessiveHalving, "hyperband": Hyperband, "asha": ASHA}
    if method not in classes:
        raise ValueError(f"unknown fidelity method {method!r}; known: {sorted(classes)}")
    return classes[method](**data)


class Scheduler:
    """Decides, from the trial records alone, what runs next and at which fidelity.

    Without a fidelity plan every queued trial runs once at the evaluator's default
    meta-iterations. With one, trials belong to brackets and rungs as described in the module
    docstring.
    """

    def __init__(self, fidelity: SuccessiveHalving | None) -> None:
        self.fidelity = fidelity
        self.asynchronous = isinstance(fidelity, ASHA)
        self._plans = fidelity.plans() if fidelity is not None else []

    def plan(self, bracket: int) -> BracketPlan:
        """The plan bracket ``bracket`` follows."""
        return self._plans[bracket % len(self._plans)]

    # -- new candidates ------------------------------------------------------------------

    def _members(self, trials: Iterable[TrialRecord], bracket: int) -> list[TrialRecord]:
        return [t for t in trials if t.bracket == bracket]

    def _closed(self, members: Sequence[TrialRecord], plan: BracketPlan) -> bool:
        """A bracket takes no new candidate once full or once a rung has been decided."""
        return len(members) >= plan.sizes[0] or any(
            (t.rung or 0) > 0 or t.state == TrialState.PRUNED for t in members
        )

    def next_slots(self, trials: Sequence[TrialRecord]) -> tuple[int | None, dict[str, Any]]:
        """How many new candidates may join now (None: any number) and their placement."""
        if self.fidelity is None:
            return None, {}
        if self.asynchronous:  # a free worker may always start a new candidate
            return None, {"bracket": 0, "rung": 0}
        brackets = [t.bracket for t in trials if t.bracket is not None]
        bracket = max(brackets) if brackets else 0
        members = self._members(trials, bracket)
        if members and self._closed(members, self.plan(bracket)):
            bracket, members = bracket + 1, []
        return self.plan(bracket).sizes[0] - len(members), {"bracket": bracket, "rung": 0}

    # -- running -------------------------------------------------------------------------

    def job_fidelity(self, trial: TrialRecord) -> int | None:
        """Meta-iterations to evaluate the trial at (None: the evaluator's default)."""
        if self.fidelity is None or trial.bracket is None:
            return None
        return self.plan(trial.bracket).fidelities[trial.rung or 0]

    def _awaiting(self, trial: TrialRecord) -> bool:
        """QUEUED and already evaluated at its rung (waiting for the rung's decision)."""
        return (
            trial.state == TrialState.QUEUED
            and trial.bracket is not None
            and trial.fidelity is not None
            and trial.fidelity >= self.job_fidelity(trial)  # type: ignore[operator]
        )

    def runnable(self, trials: Iterable[TrialRecord]) -> list[TrialRecord]:
        """QUEUED trials to evaluate, higher rungs first, then by number."""
        ready = [t for t in trials if t.state == TrialState.QUEUED and not self._awaiting(t)]
        return sorted(ready, key=lambda t: (-(t.rung or 0), t.number))

    def is_final(self, trial: TrialRecord) -> bool:
        """Whether a successful evaluation of the trial (at its rung) finishes it as DONE."""
        if self.fidelity is None or trial.bracket is None:
            return True
        return (trial.rung or 0) >= len(self.plan(trial.bracket).fidelities) - 1

    def decide(
        self, trials: Sequence[TrialRecord], *, accepting: bool, free: int | None = None
    ) -> tuple[list[TrialRecord], list[TrialRecord]]:
        """Rungs that are complete now: ``(promoted, pruned)`` trials.

        Args:
            trials: every trial of the study.
            accepting: whether new candidates may still be created; when not, a bracket that
                is not full is decided with the candidates it has.
            free: evaluations that could start now (free workers less queued work); ASHA
                promotes at most this many (None: no limit), successive halving ignores it.
        """
        promoted: list[TrialRecord] = []
        pruned: list[TrialRecord] = []
        if self.fidelity is None:
            return promoted, pruned
        if self.asynchronous:
            return self._decide_async(trials, accepting=accepting, free=free)
        for bracket in sorted({t.bracket for t in trials if t.bracket is not None}):
            members = self._members(trials, bracket)
            plan = self.plan(bracket)
            if not self._closed(members, plan) and accepting:
                continue
            for rung in range(len(plan.fidelities) - 1):
                at_rung = [t for t in members if (t.rung or 0) == rung]
                if any(not t.state.is_finished() and not self._awaiting(t) for t in at_rung):
                    break  # still evaluating this rung
                waiting = [t for t in at_rung if self._awaiting(t)]
                if not waiting:
                    continue  # decided already (or everyone failed)
                entrants = sum(1 for t in members if (t.rung or 0) >= rung)
                keep = max(1, entrants // self.fidelity.eta)
                ranked = sorted(
                    waiting,
                    key=lambda t: (-(t.score if t.score is not None else -math.inf), t.number),
                )
                promoted.extend(ranked[:keep])
                pruned.extend(ranked[keep:])
                break
        return promoted, pruned

    def _decide_async(
        self, trials: Sequence[TrialRecord], *, accepting: bool, free: int | None
    ) -> tuple[list[TrialRecord], list[TrialRecord]]:
        """ASHA: promote into free workers; once nothing can run any more, drop the rest."""
        assert self.fidelity is not None
        promoted = asha_promotions(
            trials,
            eta=self.fidelity.eta,
            rungs=len(self._plans[0].fidelities),
            awaiting=self._awaiting,
            free=free,
        )
        running = any(t.state == TrialState.RUNNING for t in trials)
        if promoted or accepting or running or self.runnable(trials):
            return promoted, []
        return [], [t for t in trials if self._awaiting(t)]
