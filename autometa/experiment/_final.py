"""The final stage: re-score the best candidates, baselines and ablation cells on fresh seeds.

A search ranks candidates by one noisy score each, and the maximum of noisy scores is biased
upwards (the winner's curse). When the search budget is spent, the final stage evaluates

- the top ``K`` distinct candidates of the search (*finalists*),
- reference architectures (*baselines*: built-ins such as the paper's 2x100 ReLU policy, or
  names from the space file), and
- two *ablation* cells that separate architecture from hyperparameters: the winner's
  architecture with the best baseline's hyperparameters, and the best baseline's
  architecture with the winner's hyperparameters,

each on the same ``S'`` seeds that the search never used (common random numbers: the same
seed index is the same seed, so differences between entries are paired). With
``confirm_seeds`` the winner and its closest rival are then scored again on further fresh
seeds, which did not choose the winner (:mod:`autometa.experiment._confirm`). Every evaluation is
a :class:`~autometa.experiment.trial.FinalRun` in storage, written when it is created, starts
and ends, so a killed search resumes the stage where it stopped and runs nothing twice.
``docs/scoring.md`` explains how to read the result (:func:`verdict`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import networkx as nx

from autometa.evaluation import Evaluator, SettingsResolving, abilities
from autometa.experiment._confirm import CONFIRMATION, rival_of, split_runs
from autometa.experiment._verdict import best_entry, entries_of
from autometa.experiment.storage.base import BaseStorage
from autometa.experiment.trial import (
    FinalRun,
    TrialRecord,
    TrialState,
    confirmation_seeds,
    final_seeds,
    seed_list,
)
from autometa.graph import canonical_hash, from_json, mlp_graph, to_json
from autometa.registry import Registry

__all__ = ["BASELINES", "Final", "baseline_graph", "register_baseline", "run_final_stage"]

logger = logging.getLogger("autometa.experiment")

BASELINES: Registry[Callable[[], nx.DiGraph]] = Registry("baseline")
"""Built-in reference architectures: name -> a function making the graph. Their hyperparameters
are empty, i.e. the evaluator's defaults (MAML's alpha 0.1, one step)."""


def register_baseline(name: str, make: Callable[[], nx.DiGraph], *, overwrite: bool = False):
    """Register a reference architecture under ``name`` for ``--baseline`` / ``baselines:``."""
    return BASELINES.register(name, make, overwrite=overwrite)


register_baseline(
    # Finn et al. 2017, App. A.2: "a neural network policy with two hidden layers of size 100,
    # with ReLU nonlinearities" for every RL task.
    "maml-relu-2x100",
    lambda: mlp_graph((100, 100), "linear_relu", {}, name="baseline-maml-relu-2x100"),
)
register_baseline(
    # The 2x64 tanh policy of pytorch-maml-rl's configurations (Deleu 2018), also the policy of
    # autometa's navigation benchmarks.
    "tanh-2x64",
    lambda: mlp_graph((64, 64), "linear_tanh", {}, name="baseline-tanh-2x64"),
)


def baseline_graph(name: str) -> nx.DiGraph:
    """The graph of a registered baseline (``UnknownNameError`` with close matches if none)."""
    return BASELINES.get(name)()


@dataclass(frozen=True)
class Final:
    """What the final stage evaluates.

    Attributes:
        top: distinct finalists re-evaluated (0 turns the stage off).
        seeds: fresh seeds each entry is evaluated on (0 turns the stage off).
        baselines: registered baseline names (:data:`BASELINES`).
        ablation: add the two architecture-vs-hyperparameter cells (needs a baseline).
        confirm_seeds: once the stage is complete, score the winner and its closest rival
            (next-highest final mean, a finalist or a baseline) again on this many further
            fresh seeds, for a margin free of the winner's selection (0: no confirmation).
    """

    top: int = 3
    seeds: int = 3
    baselines: tuple[str, ...] = ()
    ablation: bool = True
    confirm_seeds: int = 0

    def __post_init__(self) -> None:
        for name in ("top", "seeds", "confirm_seeds"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"final {name}: expected an int >= 0, got {value!r}")
        object.__setattr__(self, "baselines", tuple(dict.fromkeys(self.baselines)))
        for name in self.baselines:
            BASELINES.get(name)  # unknown names fail here, before anything runs

    @property
    def enabled(self) -> bool:
        """Whether there is anything to evaluate."""
        return self.top > 0 and self.seeds > 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe settings (stored with the study)."""
        return {
            "top": self.top,
            "seeds": self.seeds,
            "baselines": list(self.baselines),
            "ablation": self.ablation,
            "confirm_seeds": self.confirm_seeds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Final | None:
        """Inverse of :meth:`to_dict` (None stays None)."""
        if data is None:
            return None
        return cls(
            int(data.get("top", 3)),
            int(data.get("seeds", 3)),
            tuple(data.get("baselines") or ()),
            bool(data.get("ablation", True)),
            int(data.get("confirm_seeds", 0)),
        )


# -- planning -----------------------------------------------------------------------------


def _finalists(trials: list[TrialRecord], top: int) -> list[TrialRecord]:
    """The ``top`` best DONE trials with distinct candidate keys (copies excluded)."""
    done = sorted(
        (t for t in trials if t.state == TrialState.DONE and t.has_score and not t.duplicate_of),
        key=lambda t: (-t.score, t.number),  # type: ignore[operator]
    )
    out, keys = [], set()
    for trial in done:
        if trial.key not in keys:
            keys.add(trial.key)
            out.append(trial)
        if len(out) == top:
            break
    return out


def _runs(entry: str, kind: str, graph: nx.DiGraph, seeds: list[int], trial: int | None):
    key, data = canonical_hash(graph), to_json(graph)
    return [
        FinalRun(-1, entry, kind, trial, key, data, index, seed)
        for index, seed in enumerate(seeds)
    ]


def _with_hyperparameters(graph: nx.DiGraph, hyper: dict[str, Any]) -> nx.DiGraph:
    out = graph.copy()
    out.graph = {**graph.graph, "hyperparameters": dict(hyper)}
    return out


def _first_phase(plan: Final, trials: list[TrialRecord], seeds: list[int]) -> list[FinalRun]:
    runs: list[FinalRun] = []
    for trial in _finalists(trials, plan.top):
        runs += _runs(f"trial {trial.number}", "finalist", trial.graph, seeds, trial.number)
    for name in plan.baselines:
        runs += _runs(f"baseline {name}", "baseline", baseline_graph(name), seeds, None)
    return runs


def _same_settings(evaluator: Evaluator, a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two hyperparameter sets score alike: equal, or equal once the evaluator fills
    in its defaults (``{}`` and ``{"fast_lr": 0.1}`` are one setting for MAML's defaults)."""
    if a == b:
        return True
    if not abilities(evaluator).settings:
        return False
    settings = cast(SettingsResolving, evaluator).config_for_graph
    try:
        return settings(nx.DiGraph(hyperparameters=a)) == settings(nx.DiGraph(hyperparameters=b))
    except Exception:  # noqa: BLE001 - not comparable: treat them as different settings
        return False


def _ablation_phase(
    runs: list[FinalRun], seeds: list[int], evaluator: Evaluator
) -> list[FinalRun]:
    """The two ablation cells, once the winner and the best baseline are known.

    None when the winner and the baseline already share their hyperparameters: their margin
    is then the architecture's alone.
    """
    entries = {e.label: e for e in entries_of(runs)}
    winner = best_entry(e for e in entries.values() if e.kind == "finalist")
    base = best_entry(e for e in entries.values() if e.kind == "baseline")
    if winner is None or base is None:
        return []
    w_graph = from_json(winner.graph_json)
    b_graph = from_json(base.graph_json)
    w_hyper = dict(w_graph.graph.get("hyperparameters") or {})
    b_hyper = dict(b_graph.graph.get("hyperparameters") or {})
    if _same_settings(evaluator, w_hyper, b_hyper):
        logger.info("final stage: no ablation, the winner has the baseline's hyperparameters")
        return []
    w_name, b_name = winner.label, base.label.removeprefix("baseline ")
    cells = [
        (f"ablation {w_name} architecture + {b_name} hyperparameters",
         _with_hyperparameters(w_graph, b_hyper)),
        (f"ablation {b_name} architecture + {w_name} hyperparameters",
         _with_hyperparameters(b_graph, w_hyper)),
    ]  # fmt: skip
    known = {e.key for e in entries.values()}
    out: list[FinalRun] = []
    for label, graph in cells:
        if canonical_hash(graph) in known:  # same hyperparameters: the cell is an entry already
            continue
        out += _runs(label, "ablation", graph, seeds, None)
    return out


def _confirmation_phase(
    runs: list[FinalRun],
    confirming: list[FinalRun],
    count: int,
    search_seed: int,
    used: set[int],
) -> list[FinalRun]:
    """The confirmation runs still missing: the winner and its closest rival, each on the
    ``count`` confirmation seeds (those already stored are kept, with their seeds).

    Called once every final-stage run has finished; nothing when there is no winner or no
    rival scored on every seed.
    """
    entries = entries_of(runs)
    winner = best_entry(e for e in entries if e.kind == "finalist")
    rival = None if winner is None else rival_of(entries, winner)
    if winner is None or rival is None:
        logger.info("confirmation skipped: no winner and rival scored on every seed")
        return []
    if confirming:
        by_index = {r.seed_index: r.seed for r in confirming}
        seeds = [by_index[i] for i in sorted(by_index)][:count]
    else:
        seeds = confirmation_seeds(search_seed, count, used | {r.seed for r in runs})
    known = {r.entry for r in confirming}
    out: list[FinalRun] = []
    for entry in (winner, rival):
        if entry.label not in known:
            out += [
                FinalRun(-1, entry.label, CONFIRMATION, entry.trial, entry.key, entry.graph_json,
                         index, seed)
                for index, seed in enumerate(seeds)
            ]  # fmt: skip
    if out:
        logger.info("confirmation: %s and %s on %d further fresh seeds", winner.label,
                    rival.label, len(seeds))  # fmt: skip
    return out


# -- the stage ------------------------------------------------------------------------------


def run_final_stage(
    plan: Final,
    search_seed: int,
    *,
    storage: BaseStorage,
    trials: list[TrialRecord],
    evaluator: Evaluator,
    evaluate: Callable[[list[FinalRun]], None],
) -> None:
    """Plan (or resume) the final stage phase by phase; ``evaluate`` runs each phase.

    Incremental and idempotent: entries already in storage are kept and never run again;
    RUNNING runs left by a killed process and runs lost with their worker (FAILED with
    ``"worker died ..."``) run again; entries that are missing are added (after a resumed
    search with a larger budget, new finalists join the ones already scored); the ablation
    cells are planned once every finalist and baseline run is finished, none lost.

    Args:
        plan: what the stage evaluates.
        search_seed: the study's seed (the fresh seeds are drawn from it).
        storage: the study's storage, where every run is planned and recorded.
        trials: the search's trials (finalists are drawn from them; their seeds are used).
        evaluator: the search's evaluator (whether two hyperparameter sets are one setting).
        evaluate: runs the QUEUED runs of a list and returns when every one has ended (the
            search loop's :meth:`~autometa.experiment._loop.SearchLoop.run_final`).
    """
    for run in storage.get_final_runs():
        if run.state == TrialState.RUNNING:
            storage.update_final_run(run.id, state=TrialState.QUEUED)
        elif run.lost_with_worker:
            logger.info("final run %d (%s, seed %d) was lost with its worker (%s); running it "
                        "again", run.id, run.entry, run.seed, run.error)  # fmt: skip
            storage.update_final_run(run.id, state=TrialState.QUEUED, attempts=run.attempts + 1)
    runs, confirming = split_runs(storage.get_final_runs())
    if runs:  # keep the seeds the stage started with
        by_index = {r.seed_index: r.seed for r in runs}
        seeds = [by_index[i] for i in sorted(by_index)][: plan.seeds]
    else:
        used = {s for t in trials for s in seed_list(t.seed, _seed_count(t))}
        seeds = final_seeds(search_seed, plan.seeds, used)
    known = {r.entry for r in runs}
    planned = [r for r in _first_phase(plan, trials, seeds) if r.entry not in known]
    if not planned and not runs:
        logger.info("final stage skipped: no trial succeeded")
        return
    if planned:
        storage.create_final_runs(planned)
        logger.info("final stage: %d evaluations on %d fresh seeds", len(planned), len(seeds))
    evaluate(storage.get_final_runs())
    runs, confirming = split_runs(storage.get_final_runs())
    if plan.ablation and not any(r.lost_with_worker for r in runs):
        known = {r.entry for r in runs}
        cells = [r for r in _ablation_phase(runs, seeds, evaluator) if r.entry not in known]
        if cells:
            evaluate(storage.create_final_runs(cells))
            runs, confirming = split_runs(storage.get_final_runs())
    if plan.confirm_seeds and all(r.state.is_finished() and not r.lost_with_worker
                                  for r in runs):  # fmt: skip
        used = {s for t in trials for s in seed_list(t.seed, _seed_count(t))}
        more = _confirmation_phase(runs, confirming, plan.confirm_seeds, search_seed, used)
        if more:
            evaluate(storage.create_final_runs(more))
    lost = [r for r in storage.get_final_runs() if r.lost_with_worker]
    if lost:
        where = getattr(storage, "path", None)
        logger.warning(
            "final stage incomplete: %d evaluation(s) lost with their worker on every try; %s "
            "runs them again", len(lost),
            f"`autometa resume {where}`" if where else "the same search on this storage",
        )  # fmt: skip


def _seed_count(trial: TrialRecord) -> int:
    return max(1, len(trial.metrics.get("seeds") or []))
