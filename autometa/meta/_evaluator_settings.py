"""An evaluator's settings turned into what an evaluation runs with: the task family and the
:class:`MAMLConfig` of one candidate, refusing settings that cannot work for any candidate.

Every refusal is a :class:`~autometa.errors.ConfigurationError` naming the setting, so that the
search stops instead of failing each candidate; :class:`~autometa.meta.evaluator.MAMLEvaluator`
calls these at construction and per candidate. Kept apart from it so the evaluator reads as
build, meta-train, score.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from autometa._maml_config import MAMLConfig, close_match_hint, settable_fields
from autometa._meta_learners import META_LEARNERS
from autometa.errors import ConfigurationError, TaskParameterError, UnknownNameError
from autometa.meta.inner import INNER_LOSSES
from autometa.meta.outer import OUTER_STEPS
from autometa.tasks import TASKS, make_task

__all__ = ["candidate_config", "check_family", "check_learner", "make_family"]


def check_family(name: str, options: dict[str, Any]) -> None:
    """Refuse an unregistered family name, or options the family refuses (made once on CPU)."""
    if name not in TASKS:
        raise ConfigurationError(TASKS.unknown_message(name))
    if options:
        try:
            make_task(name, device="cpu", **options)
        except (TaskParameterError, TypeError) as exc:
            raise ConfigurationError(
                f"task family {name!r} with family_options {options!r}: {exc}"
            ) from exc


def check_learner(cfg: MAMLConfig) -> None:
    """Refuse an unregistered outer step (``outer``), or a meta-learner whose inner loss or
    outer step is not registered."""
    if cfg.outer not in OUTER_STEPS:
        raise ConfigurationError(f"outer: {OUTER_STEPS.unknown_message(cfg.outer)}")
    learner = META_LEARNERS.get(cfg.meta_learner)
    for registry, name in (
        (INNER_LOSSES, learner.inner_loss),
        (OUTER_STEPS, learner.outer_step(cfg.outer)),
    ):
        if name not in registry:
            raise ConfigurationError(
                f"meta_learner {cfg.meta_learner!r}: {registry.unknown_message(name)}"
            )


def make_family(name: str, device: str, options: dict[str, Any]) -> Any:
    """The registered family ``name`` made on ``device`` with ``options``.

    Raises:
        ConfigurationError: ``name`` is not registered in this process (a worker that does
            not import the module registering it), or the family refuses the options.
    """
    try:
        return make_task(name, device=device, **options)
    except UnknownNameError as exc:
        raise ConfigurationError(
            f"{exc} (a family registered at run time must be registered in a module "
            "that worker processes import too, or run the search with workers=0)"
        ) from exc
    except (TaskParameterError, TypeError) as exc:
        raise ConfigurationError(
            f"task family {name!r} with family_options {options!r}: {exc}"
        ) from exc


def candidate_config(
    config: MAMLConfig, graph: nx.DiGraph, meta_iterations: int | None = None
) -> MAMLConfig:
    """``config`` with ``graph``'s hyperparameters (``graph.graph["hyperparameters"]``) and
    ``meta_iterations`` (when given) applied over it.

    Raises:
        ConfigurationError: naming every hyperparameter that is not a :class:`MAMLConfig`
            field, or a value a field refuses.
    """
    hyper = dict(graph.graph.get("hyperparameters") or {})
    unknown = sorted(set(hyper) - set(settable_fields()))
    if unknown:
        raise ConfigurationError(
            f"unknown hyperparameter(s) {', '.join(map(repr, unknown))} in "
            f"graph.graph['hyperparameters'].{close_match_hint(unknown)} "
            f"Valid names: {', '.join(settable_fields())}"
        )
    changes = {k: (v.item() if hasattr(v, "item") else v) for k, v in hyper.items()}
    if meta_iterations is not None:
        changes["meta_iterations"] = meta_iterations
    return config.replace(**changes) if changes else config
