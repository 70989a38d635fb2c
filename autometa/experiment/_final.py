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
seed index is the same seed, so differences between entries are paired). Every evaluation is
a :class:`~autometa.experiment.trial.FinalRun` in storage, written when it is created, starts
and ends, so a killed search resumes the stage where it stopped and runs nothing twice.
``docs/scoring.md`` explains how to read the result (:func:`verdict`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from autometa.experiment._worker import Job
from autometa.experiment.storage.base import BaseStorage
from autometa.experiment.trial import FinalRun, TrialRecord, TrialState, final_seeds, seed_list
from autometa.graph import canonical_hash, from_json, mlp_graph, to_json
from autometa.registry import Registry

__all__ = [
    "BASELINES",
    "Final",
    "Verdict",
    "VerdictEntry",
    "baseline_graph",
    "register_baseline",
    "run_final_stage",
    "verdict",
]

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
    """

    top: int = 3
    seeds: int = 3
    baselines: tuple[str, ...] = ()
    ablation: bool = True

    def __post_init__(self) -> None:
        for name in ("top", "seeds"):
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


def _same_settings(evaluator: Any, a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two hyperparameter sets score alike: equal, or equal once the evaluator fills
    in its defaults (``{}`` and ``{"fast_lr": 0.1}`` are one setting for MAML's defaults)."""
    if a == b:
        return True
    settings = getattr(evaluator, "config_for_graph", None)
    if settings is None:
        return False
    try:
        return settings(nx.DiGraph(hyperparameters=a)) == settings(nx.DiGraph(hyperparameters=b))
    except Exception:  # noqa: BLE001 - not comparable: treat them as different settings
        return False


def _ablation_phase(runs: list[FinalRun], seeds: list[int], evaluator: Any) -> list[FinalRun]:
    """The two ablation cells, once the winner and the best baseline are known.

    None when the winner and the baseline already share their hyperparameters: their margin
    is then the architecture's alone.
    """
    entries = {e.label: e for e in _entries(runs)}
    winner = _best(e for e in entries.values() if e.kind == "finalist")
    base = _best(e for e in entries.values() if e.kind == "baseline")
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


# -- running ------------------------------------------------------------------------------


def run_final_stage(loop: Any, plan: Final, search_seed: int) -> None:
    """Plan (or resume) and run the final stage on the search loop's executor.

    Incremental and idempotent: entries already in storage are kept and never run again;
    RUNNING runs left by a killed process run again; entries that are missing are added
    (after a resumed search with a larger budget, new finalists join the ones already
    scored); the ablation cells are planned once the finalists and baselines are done.
    """
    storage: BaseStorage = loop.storage
    for run in storage.get_final_runs():
        if run.state == TrialState.RUNNING:
            storage.update_final_run(run.id, state=TrialState.QUEUED)
    runs = storage.get_final_runs()
    if runs:  # keep the seeds the stage started with
        by_index = {r.seed_index: r.seed for r in runs}
        seeds = [by_index[i] for i in sorted(by_index)][: plan.seeds]
    else:
        used = {s for t in loop.trials.values() for s in seed_list(t.seed, _seed_count(t))}
        seeds = final_seeds(search_seed, plan.seeds, used)
    known = {r.entry for r in runs}
    planned = [
        r for r in _first_phase(plan, list(loop.trials.values()), seeds) if r.entry not in known
    ]
    if not planned and not runs:
        logger.info("final stage skipped: no trial succeeded")
        return
    if planned:
        storage.create_final_runs(planned)
        logger.info("final stage: %d evaluations on %d fresh seeds", len(planned), len(seeds))
    _run_queued(loop, storage.get_final_runs())
    if plan.ablation:
        runs = storage.get_final_runs()
        known = {r.entry for r in runs}
        cells = [r for r in _ablation_phase(runs, seeds, loop.evaluator) if r.entry not in known]
        if cells:
            _run_queued(loop, storage.create_final_runs(cells))


def _seed_count(trial: TrialRecord) -> int:
    return max(1, len(trial.metrics.get("seeds") or []))


def _run_queued(loop: Any, runs: list[FinalRun]) -> None:
    """Evaluate every QUEUED run through the loop's executor, writing each as it ends."""
    storage: BaseStorage = loop.storage
    queue = [r for r in runs if r.state == TrialState.QUEUED]
    inflight: dict[int, FinalRun] = {}
    while queue or inflight:
        while queue and loop.executor.in_flight < loop.executor.capacity:
            run = queue.pop(0)
            job = Job(-(run.id + 1), run.graph_json, run.seed)
            storage.update_final_run(run.id, state=TrialState.RUNNING)
            inflight[job.number] = run
            loop.final_inflight.add(job.number)
            loop.executor.submit(job)
        for outcome in loop.executor.wait(0.25):
            run = inflight.pop(outcome.number)
            loop.final_inflight.discard(outcome.number)
            result = outcome.result
            metrics = {k: v for k, v in result.metrics.items() if k not in _HEAVY}
            if result.ok:
                fields: dict[str, Any] = dict(state=TrialState.DONE, score=result.score)
            else:
                fields = dict(state=TrialState.FAILED, error=result.error or "failed")
                logger.info("final %s (seed %d) failed: %s", run.entry, run.seed, result.error)
            storage.update_final_run(
                run.id, metrics=metrics, device=outcome.device, wall_time=outcome.wall_time,
                finished=time.time(), **fields,
            )  # fmt: skip
        loop.heartbeat()


_HEAVY = ("config", "versions", "learning_curve_pre")


# -- reading the verdict -------------------------------------------------------------------

# Two-sided 95% quantiles of Student's t by degrees of freedom (then the normal's 1.96).
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042]  # fmt: skip


def t95(df: int) -> float:
    """The two-sided 95% quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        return math.nan
    if df <= len(_T95):
        return _T95[df - 1]
    return 2.021 if df <= 40 else 2.000 if df <= 60 else 1.980 if df <= 120 else 1.960


def mean_ci(values: list[float]) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean and its 95% t interval (NaN bounds for one value)."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = sum(values) / n
    if n == 1:
        return mean, math.nan, math.nan
    sem = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)
    half = t95(n - 1) * sem
    return mean, mean - half, mean + half


@dataclass(frozen=True)
class VerdictEntry:
    """One final-stage entry over its seeds.

    Attributes:
        label: ``"trial 12"``, ``"baseline maml-relu-2x100"``, ``"ablation ..."``.
        kind: ``"finalist"``, ``"baseline"`` or ``"ablation"``.
        trial: the search trial of a finalist, else None.
        key: the evaluated graph's canonical hash.
        graph_json: the evaluated graph.
        seeds: the final seeds, by seed index.
        scores: the score on each seed (None: failed or not run yet).
        mean: the mean over the finished seeds; ``low``, ``high``: its 95% t interval.
        complete: every seed finished.
        errors: reasons of failed seeds.
    """

    label: str
    kind: str
    trial: int | None
    key: str
    graph_json: dict[str, Any]
    seeds: list[int]
    scores: list[float | None]
    mean: float
    low: float
    high: float
    complete: bool
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (the graph left out)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "graph_json"}
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in out.items()}  # fmt: skip


def _entries(runs: list[FinalRun]) -> list[VerdictEntry]:
    by_label: dict[str, list[FinalRun]] = {}
    for run in runs:
        by_label.setdefault(run.entry, []).append(run)
    out = []
    for label, group in by_label.items():
        group.sort(key=lambda r: r.seed_index)
        scores = [r.score if r.state == TrialState.DONE else None for r in group]
        mean, low, high = mean_ci([s for s in scores if s is not None])
        out.append(VerdictEntry(
            label, group[0].kind, group[0].trial, group[0].key, group[0].graph_json,
            [r.seed for r in group], scores, mean, low, high,
            complete=all(r.state.is_finished() for r in group),
            errors=[f"seed {r.seed}: {r.error}" for r in group if r.state == TrialState.FAILED],
        ))  # fmt: skip
    return out


def _best(entries: Any) -> VerdictEntry | None:
    scored = [e for e in entries if e.complete and math.isfinite(e.mean)]
    return max(scored, key=lambda e: (e.mean, -(e.trial or 0)), default=None)


@dataclass(frozen=True)
class Margin:
    """The winner minus another entry, paired by seed: mean difference and its 95% interval."""

    other: str
    kind: str
    difference: float
    low: float
    high: float
    pairs: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in self.__dict__.items()}  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    """What the final stage says: every entry, the winner, and its paired margins."""

    entries: list[VerdictEntry]
    winner: VerdictEntry | None
    margins: list[Margin]

    @property
    def complete(self) -> bool:
        """Every final evaluation finished."""
        return bool(self.entries) and all(e.complete for e in self.entries)

    def sentence(self) -> str:
        """The result in one sentence a user can quote."""
        w = self.winner
        if w is None:
            return "The final stage has not finished; no verdict yet."
        n = sum(s is not None for s in w.scores)
        text = (
            f"{w.label} scores {w.mean:.2f} (95% CI {_fmt(w.low)} to {_fmt(w.high)}, "
            f"{n} fresh seeds)"
        )
        parts = [
            f"{'beats' if m.difference > 0 else 'trails'} {m.other} by "
            f"{abs(m.difference):.2f} (95% CI of the difference {_fmt(m.low, '+')} to "
            f"{_fmt(m.high, '+')})"
            for m in self.margins
            if math.isfinite(m.difference)
        ]
        if parts:
            text += "; paired on the same seeds, it " + "; it ".join(parts)
        return text + "."

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe."""
        return {
            "entries": [e.to_dict() for e in self.entries],
            "winner": self.winner.label if self.winner else None,
            "margins": [m.to_dict() for m in self.margins],
            "sentence": self.sentence(),
            "complete": self.complete,
        }


def _fmt(value: float, sign: str = "") -> str:
    return f"{value:{sign}.2f}" if math.isfinite(value) else "n/a"


def verdict(storage: BaseStorage) -> Verdict | None:
    """The final stage's result read from storage, or None when the study has none."""
    runs = storage.get_final_runs()
    if not runs:
        return None
    entries = _entries(runs)
    winner = _best(e for e in entries if e.kind == "finalist")
    margins = []
    if winner is not None:
        mine = dict(zip(winner.seeds, winner.scores))
        for other in entries:
            if other.kind == "finalist":
                continue
            diffs = [
                mine[s] - o for s, o in zip(other.seeds, other.scores)
                if o is not None and mine.get(s) is not None
            ]  # fmt: skip
            mean, low, high = mean_ci(diffs)
            margins.append(Margin(other.label, other.kind, mean, low, high, len(diffs)))
    return Verdict(entries, winner, margins)
