"""What can be exported: a trial record, an evaluation result with its graph, or weights.

Every accepted form is normalised into one :class:`Source` (graph, weights, score, metrics and
what is known about the search that produced it) before anything is written.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import networkx as nx
import torch

from autometa.errors import ExportError
from autometa.evaluation import EvalResult
from autometa.experiment import verdict
from autometa.experiment._best import choose_best
from autometa.experiment.storage import SQLiteStorage
from autometa.meta import config_for, settable_fields
from autometa.tasks import make_task

__all__ = ["Source", "adaptation_settings", "family_name", "resolve_source", "resolve_spaces"]

log = logging.getLogger(__name__)

# Evaluator settings that shape the inner loop; copied to model.json for autometa.export.adapt.
_ADAPT_KEYS = (
    "fast_lr",
    "inner_steps",
    "episodes_per_task",
    "test_episodes",
    "test_steps",
    "test_lr_scale",
    "test_tasks",
    "test_seed",
    "first_order",
    "meta_sgd",
    "gamma",
    "gae_lambda",
    "normalize_advantages",
    "baseline_ridge",
    "init_std",
    "meta_learner",
)


@dataclass
class Source:
    """A normalised export source.

    Attributes:
        graph: the candidate graph.
        state_dict: the meta-learned initial weights (CPU tensors).
        kind: ``"trial"``, ``"eval_result"`` or ``"state_dict"`` (what the user passed).
        score: the search score, or None when unknown.
        metrics: the evaluator's metrics (JSON-safe), possibly empty.
        trial: the trial's identity and bookkeeping (number, key, seed, ...) or None.
        study: the study's description (space, strategy, evaluator, seed, versions) or None.
        step_sizes: Meta-SGD's learned per-parameter step sizes (CPU tensors keyed like
            ``state_dict``), or None when the evaluator learned none.
    """

    graph: nx.DiGraph
    state_dict: dict[str, torch.Tensor]
    kind: str
    score: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    trial: dict[str, Any] | None = None
    study: dict[str, Any] | None = None
    step_sizes: dict[str, torch.Tensor] | None = None


def _is_weights(value: Any) -> bool:
    return isinstance(value, Mapping) and all(isinstance(v, torch.Tensor) for v in value.values())


def _cpu(state_dict: Mapping[str, Any], where: str) -> dict[str, torch.Tensor]:
    out = {}
    for name, tensor in state_dict.items():
        if not isinstance(tensor, torch.Tensor):
            raise ExportError(
                f"{where}: weight {name!r} is a {type(tensor).__name__}, not a tensor"
            )
        out[str(name)] = tensor.detach().to("cpu").contiguous().clone()
    return out


def _open_storage(storage: Any) -> Any:
    if isinstance(storage, str | Path):
        path = Path(storage)
        if not path.is_file():
            raise ExportError(f"{path}: no such study database")
        return SQLiteStorage(path, read_only=True)
    return storage


def _study_dict(storage: Any) -> dict[str, Any] | None:
    info = storage.get_study() if hasattr(storage, "get_study") else None
    if info is None:
        return None
    data = info.to_dict() if hasattr(info, "to_dict") else dict(info)
    data.pop("space_text", None)  # the full file text stays in the database
    if hasattr(storage, "get_final_runs"):
        final = verdict(storage)
        if final is not None:
            data["final"] = final.to_dict()
        best = choose_best(storage.get_all_trials(), final)
        data["best"] = best.to_dict() if best is not None else None
    return data


def _from_trial(trial: Any, storage: Any) -> Source:
    number = int(trial.number)
    state = getattr(getattr(trial, "state", None), "name", None)
    if state is not None and state != "DONE":
        raise ExportError(f"trial {number} is {state}, only DONE trials can be exported")
    if storage is None:
        storage = getattr(trial, "storage", None)
    if storage is None:
        raise ExportError(
            f"trial {number} carries no weights: pass storage= (the study's storage or the path "
            "of its SQLite file) so the meta-learned weights can be read"
        )
    storage = _open_storage(storage)
    weights = storage.load_weights(number)
    holder = number
    origin = getattr(trial, "duplicate_of", None)
    if weights is None and origin is not None:
        holder = int(origin)  # a duplicate shares its original's weights
        weights = storage.load_weights(holder)
    if weights is None:
        raise ExportError(
            f"trial {number} has no stored weights (the evaluator did not return a state_dict, "
            "or the search did not keep weights)"
        )
    load_steps = getattr(storage, "load_step_sizes", None)
    steps = load_steps(holder) if load_steps is not None else None
    record = trial.to_dict() if hasattr(trial, "to_dict") else {}
    keep = ("number", "key", "seed", "state", "fidelity", "device", "wall_time", "duplicate_of")
    seeds = list((trial.metrics or {}).get("seeds") or [getattr(trial, "seed", 0)])
    identity = {k: record[k] for k in keep if k in record} or {"number": number}
    # the weights (and the metrics: returns, curves) are those of the first search seed
    identity |= {"search_seeds": seeds, "weights_seed": seeds[0]}
    return Source(
        graph=trial.graph,
        state_dict=_cpu(weights, f"trial {number}"),
        step_sizes=_cpu(steps, f"trial {number}") if steps else None,
        kind="trial",
        score=trial.score,
        metrics=dict(trial.metrics or {}),
        trial=identity,
        study=_study_dict(storage),
    )


def _from_eval_result(result: Any, graph: nx.DiGraph) -> Source:
    if result.status != "ok":
        raise ExportError(f"the evaluation failed ({result.error}); there is nothing to export")
    if result.state_dict is None:
        raise ExportError("the EvalResult carries no state_dict (the evaluator did not keep it)")
    return Source(
        graph=graph,
        state_dict=_cpu(result.state_dict, "EvalResult.state_dict"),
        step_sizes=(
            _cpu(result.step_sizes, "EvalResult.step_sizes") if result.step_sizes else None
        ),
        kind="eval_result",
        score=float(result.score),
        metrics=dict(result.metrics or {}),
    )


def resolve_source(source: Any, storage: Any = None) -> Source:
    """Normalise what the user passed to :func:`autometa.export.export`.

    Accepted: a trial record (with ``storage``), a search result (``.best`` and ``.storage``),
    a ``(graph, EvalResult)`` or ``(graph, state_dict)`` pair in either order.

    Raises:
        ExportError: for anything else, a failed evaluation, or missing weights.
    """
    if hasattr(source, "best") and not isinstance(source, tuple | list):
        best = source.best
        if best is None:
            raise ExportError("the search has no DONE trial to export")
        return _from_trial(
            best, storage if storage is not None else getattr(source, "storage", None)
        )
    if hasattr(source, "graph_json") and hasattr(source, "number"):
        return _from_trial(source, storage)
    if isinstance(source, tuple | list) and len(source) == 2:
        first, second = source
        graph, other = (first, second) if isinstance(first, nx.DiGraph) else (second, first)
        if isinstance(graph, nx.DiGraph):
            if isinstance(other, EvalResult):
                return _from_eval_result(other, graph)
            if _is_weights(other):
                return Source(graph=graph, state_dict=_cpu(other, "state_dict"), kind="state_dict")
    raise ExportError(
        "export() takes a trial record (with storage=), a search result, or a pair "
        f"(graph, EvalResult) / (graph, state_dict); got {type(source).__name__}"
    )


def family_name(src: Source) -> tuple[str | None, dict[str, Any]]:
    """The task family the evaluator used, and its options, as recorded with the source."""
    evaluator = (src.study or {}).get("evaluator") or {}
    config = evaluator.get("config") or {}
    for holder in (src.metrics, config, evaluator):
        for key in ("task_family", "family", "task"):
            value = holder.get(key)
            if isinstance(value, str):
                options = holder.get("family_options") or holder.get("task_options") or {}
                return value, dict(options)
            if isinstance(value, Mapping) and isinstance(value.get("name"), str):
                return value["name"], dict(value.get("options") or {})
    return None, {}


def resolve_spaces(
    src: Source,
    observation_space: gym.Space | None,
    action_space: gym.Space | None,
    task_family: Any,
) -> tuple[gym.Space, gym.Space, str | None, dict[str, Any]]:
    """The policy's spaces: explicit arguments, else the given or recorded task family.

    Returns:
        ``(observation_space, action_space, family_name, family_options)``.
    """
    name, options = family_name(src)
    family = None
    if task_family is not None and not isinstance(task_family, str):
        family, name = task_family, getattr(task_family, "name", None) or name
    elif isinstance(task_family, str):
        name, options = task_family, {}
    if (observation_space is None or action_space is None) and family is None and name:
        family = make_task(name, **options)
    if family is not None:
        observation_space = observation_space or family.single_observation_space
        action_space = action_space or family.single_action_space
    if observation_space is None or action_space is None:
        raise ExportError(
            "the policy's spaces are unknown: no task family is recorded with this source; pass "
            "task_family= (a name or a TaskFamily) or observation_space= and action_space="
        )
    return observation_space, action_space, name, options


def adaptation_settings(src: Source, family: str | None) -> dict[str, Any]:
    """The inner-loop settings the evaluator used: its config, then the graph's overrides."""
    evaluator = (src.study or {}).get("evaluator") or {}
    recorded = dict(evaluator.get("config") or {})
    if isinstance(recorded.get("config"), Mapping):  # MAMLEvaluator: {"config": MAMLConfig}
        recorded.update(recorded["config"])
    recorded.update(src.metrics.get("config") or {})
    try:
        known = set(settable_fields())
        cfg = config_for(family, **{k: v for k, v in recorded.items() if k in known})
        settings = dataclasses.asdict(cfg)
    except (ImportError, ValueError, TypeError) as exc:
        log.info("MAML settings not recorded in full (%s); keeping what the source has", exc)
        settings = recorded
    settings.update(src.graph.graph.get("hyperparameters") or {})
    return {k: settings[k] for k in _ADAPT_KEYS if k in settings}
