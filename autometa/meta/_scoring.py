"""The record of a finished evaluation: score, curves, sizes, versions and weights.

One per member of a program (``autometa.meta._evaluate``; a candidate alone is a program of
one), so all record exactly the same fields.
"""

from __future__ import annotations

import math
import time
from typing import Any

import networkx as nx
import torch

from autometa._maml_config import MAMLConfig
from autometa.errors import EvaluationError
from autometa.evaluation import EvalResult
from autometa.meta.inner import split_meta
from autometa.meta.result import Trained, runtime_versions
from autometa.policy import GraphPolicy, count_macs, count_params, space_dims

__all__ = ["graph_objectives", "pruned_result", "scored_result"]


def graph_objectives(graph: nx.DiGraph, family: Any) -> dict[str, float]:
    """The ``objectives`` a result for ``graph`` on ``family`` carries (``params``, ``macs``),
    counted from the graph without building the policy; only the family's spaces are read.

    Raises:
        GraphValidationError: the graph is not a valid candidate.
    """
    io = space_dims(family.single_observation_space, family.single_action_space)
    return {"params": float(count_params(graph, *io)), "macs": float(count_macs(graph, *io))}


def scored_result(
    policy: GraphPolicy,
    family,
    cfg: MAMLConfig,
    seed: int,
    trained: Trained,
    by_step: list[float],
    start: float,
    keep_state_dict: bool = True,
    **extra: Any,
) -> EvalResult:
    """The result of a finished evaluation: the score, the curves and the weights.

    One per member: ``start`` is when its evaluation began
    (``time.perf_counter``), ``keep_state_dict`` keeps the weights (and Meta-SGD's step
    sizes) on the CPU, ``extra`` adds metrics.

    Raises:
        EvaluationError: NaN or Inf in the held-out test returns.
    """
    if not all(math.isfinite(r) for r in by_step):
        raise EvaluationError("NaN or Inf in the held-out test returns")
    score = by_step[cfg.test_steps]
    theta, alpha = split_meta(trained.meta)
    metrics: dict[str, Any] = {
        "score": score,
        "pre_return": by_step[0],
        "post_return": score,
        "adaptation_gain": score - by_step[0],
        "returns_by_step": by_step,
        "learning_curve": trained.post_curve,
        "learning_curve_pre": trained.pre_curve,
        "params": policy.num_params,
        "macs": policy.macs,
        "env_steps": trained.train_steps + trained.test_steps,
        "meta_train_env_steps": trained.train_steps,
        "test_env_steps": trained.test_steps,
        "meta_iterations": cfg.meta_iterations,
        "wall_time": time.perf_counter() - start,
        "device": str(family.device),
        "torch_threads": torch.get_num_threads(),
        "seed": seed,
        "task_family": family.name,
        "versions": runtime_versions(),
        "config": cfg.to_dict(),
        **extra,
    }
    if alpha is not None:
        metrics["meta_sgd_mean_step"] = float(
            torch.cat([a.reshape(-1) for a in alpha.values()]).mean()
        )
    state = step_sizes = None
    if keep_state_dict:
        state = {n: t.detach().cpu().clone() for n, t in theta.items()}
        if alpha is not None:  # Meta-SGD: the step sizes adaptation needs, kept apart
            step_sizes = {n: a.detach().cpu().clone() for n, a in alpha.items()}
    return EvalResult(
        status="ok",
        score=score,
        objectives={"params": float(policy.num_params), "macs": float(policy.macs)},
        metrics=metrics,
        state_dict=state,
        fidelity=cfg.meta_iterations,
        step_sizes=step_sizes,
    )


def pruned_result(
    policy: GraphPolicy,
    family,
    cfg: MAMLConfig,
    seed: int,
    trained: Trained,
    start: float,
    **extra: Any,
) -> EvalResult:
    """The result of an evaluation its reporter stopped: no held-out test, no weights.

    The score is the last post-adaptation return of meta-training (the value last reported);
    ``fidelity`` and ``metrics["meta_iterations"]`` are the iterations run.
    """
    reached = len(trained.post_curve)
    value = trained.post_curve[-1] if reached else math.nan
    metrics: dict[str, Any] = {
        "learning_curve": trained.post_curve,
        "learning_curve_pre": trained.pre_curve,
        "params": policy.num_params,
        "macs": policy.macs,
        "env_steps": trained.train_steps,
        "meta_train_env_steps": trained.train_steps,
        "meta_iterations": reached,
        "wall_time": time.perf_counter() - start,
        "device": str(family.device),
        "seed": seed,
        "task_family": family.name,
        "versions": runtime_versions(),
        "config": cfg.to_dict(),
        **extra,
    }
    return EvalResult(
        status="pruned",
        score=value,
        objectives={"params": float(policy.num_params), "macs": float(policy.macs)},
        metrics=metrics,
        fidelity=reached,
    )
