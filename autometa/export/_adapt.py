"""``adapt``: fine-tune a loaded policy to one new task with the evaluator's inner loop."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

import torch

from autometa.errors import ExportError
from autometa.meta import adapt_to_tasks, config_for, settable_fields
from autometa.meta.inner import ALPHA
from autometa.policy import GraphPolicy, space_dims
from autometa.tasks import make_task

__all__ = ["AdaptResult", "adapt", "adaptation_config"]

log = logging.getLogger(__name__)


class AdaptResult(NamedTuple):
    """What :func:`adapt` returns (unpack it as ``adapted, returns = adapt(...)``).

    Attributes:
        policy: a copy of the policy holding the adapted weights, in eval mode, on the task
            family's device; the policy passed in is left unchanged.
        returns: mean undiscounted episode return on the task before adaptation (index 0) and
            after each adaptation step (index ``k`` after ``k`` steps); ``steps + 1`` floats.
    """

    policy: GraphPolicy
    returns: list[float]


def adaptation_config(policy: GraphPolicy, family: Any, fast_lr: float | None = None):
    """The ``MAMLConfig`` that drives adaptation of ``policy`` on ``family``.

    The family's preset, overridden by the settings recorded at export
    (``policy.export_info["adaptation"]``: the evaluator's configuration and the graph's
    hyperparameters), then by ``fast_lr`` when given.
    """
    info = getattr(policy, "export_info", None) or {}
    recorded = (info.get("task_family") or {}).get("name")
    known = set(settable_fields())
    changes = {k: v for k, v in (info.get("adaptation") or {}).items() if k in known}
    if fast_lr is not None:
        changes["fast_lr"] = float(fast_lr)
    return config_for(recorded or getattr(family, "name", None), **changes)


def _one_task(family: Any, task: Any, cfg: Any) -> dict[str, torch.Tensor]:
    """Task parameters with a leading task dimension of 1, validated by the family."""
    if isinstance(task, bool):
        raise ExportError(f"task must be an int index or a task-parameter dict, got {task!r}")
    if isinstance(task, int):
        if task < 0:
            raise ExportError(f"task index must be >= 0, got {task}")
        tasks = family.test_tasks(max(cfg.test_tasks, task + 1), cfg.test_seed)
        return {k: v[task : task + 1] for k, v in tasks.items()}
    if not isinstance(task, Mapping):
        raise ExportError(
            f"task must be an int index or a task-parameter dict, got {type(task).__name__}"
        )
    params = {}
    for key, value in task.items():
        value = torch.as_tensor(value, device=family.device)
        spec = family.task_params.get(key)
        if spec is not None and tuple(value.shape) == tuple(spec.shape):
            value = value.unsqueeze(0)  # one task given without its task dimension
        if spec is not None:
            value = value.to(spec.dtype)
        if value.ndim == 0 or value.shape[0] != 1:
            raise ExportError(
                f"task parameter {key!r} must describe one task (leading dimension 1, as from "
                f"family.sample_tasks(1, seed)); got shape {tuple(value.shape)}"
            )
        params[key] = value
    family.validate_tasks(params)
    return params


def _with_step_sizes(policy: GraphPolicy, step_sizes: Mapping[str, Any]) -> dict[str, Any]:
    """The policy's parameters plus Meta-SGD step sizes (``alpha.<name>``), on its device."""
    theta = {n: p.detach() for n, p in policy.named_parameters()}
    if set(step_sizes) != set(theta):
        raise ExportError(
            "policy.step_sizes must hold one step size per parameter; missing "
            f"{sorted(set(theta) - set(step_sizes))}, unexpected "
            f"{sorted(set(step_sizes) - set(theta))}"
        )
    alpha = {
        ALPHA + n: torch.as_tensor(step_sizes[n]).to(p.device, p.dtype).expand_as(p)
        for n, p in theta.items()
    }
    return {**theta, **alpha}


def adapt(
    policy: GraphPolicy,
    task_family: Any,
    task: int | Mapping[str, Any],
    steps: int = 1,
    *,
    episodes: int | None = None,
    fast_lr: float | None = None,
    seed: int = 0,
) -> AdaptResult:
    """Adapt a (loaded) policy to one task with the same inner loop as the MAML evaluator.

    Each step rolls out ``episodes`` episodes on the task, fits the linear feature baseline and
    takes one REINFORCE policy-gradient step: ``fast_lr`` for the first step, then
    ``fast_lr * test_lr_scale`` (the evaluator's test-time schedule); a last rollout measures
    the adapted policy. A policy meta-trained with Meta-SGD (``policy.step_sizes``, loaded
    from the export) steps with its learned per-parameter step sizes in place of ``fast_lr``,
    unless ``fast_lr`` is given. This is :func:`autometa.meta.adapt_to_tasks`, so the
    returns match what the search scored for the same task and seed.

    Args:
        policy: the policy, typically from :func:`autometa.export.load` (its recorded
            adaptation settings are the defaults); any ``GraphPolicy`` works.
        task_family: a ``TaskFamily`` instance, or its registered name (made on CPU).
        task: an int ``i``: the ``i``-th held-out test task the evaluator scored on
            (``family.test_tasks(test_tasks, test_seed)``); or one task's parameters as a
            dict, as from ``family.sample_tasks(1, seed)`` (a missing task dimension is added).
        steps: adaptation steps (0 only measures the policy as it is).
        episodes: episodes per step (default: the evaluator's ``test_episodes``).
        fast_lr: the inner step size (default: the exported Meta-SGD step sizes, else the
            exported ``fast_lr``); given, it replaces the Meta-SGD step sizes too.
        seed: seeds the rollouts (the same seed gives the same adaptation).

    Returns:
        :class:`AdaptResult` ``(policy, returns)``: an adapted copy of the policy and the mean
        return before and after each step.

    Raises:
        ExportError: a task that is not one valid task, a policy that does not fit the
            family's spaces, or ``policy.step_sizes`` without one step size per parameter.
        TaskParameterError: task parameters out of the family's ranges.

    Example:
        >>> policy = autometa.load("runs/best")                                 # doctest: +SKIP
        >>> adapted, returns = autometa.adapt(policy, "navigation2d", task=0)   # doctest: +SKIP
    """
    family = task_family
    if isinstance(family, str):
        family = make_task(family)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ExportError(f"steps must be an int >= 0, got {steps!r}")
    dims = space_dims(family.single_observation_space, family.single_action_space)
    if dims != (policy.obs_dim, policy.act_dim, policy.discrete):
        raise ExportError(
            f"the policy (obs_dim={policy.obs_dim}, act_dim={policy.act_dim}, "
            f"discrete={policy.discrete}) does not fit task family {family.name!r} "
            f"(obs_dim={dims[0]}, act_dim={dims[1]}, discrete={dims[2]})"
        )
    cfg = adaptation_config(policy, family, fast_lr)
    step_sizes = getattr(policy, "step_sizes", None)
    if cfg.meta_sgd and fast_lr is None and not step_sizes:
        log.warning(
            "the policy was meta-trained with Meta-SGD, but its per-parameter step sizes are "
            "not part of this export (exported by an older autometa?); adapting with the "
            "scalar fast_lr=%g instead",
            cfg.fast_lr,
        )
    params = _one_task(family, task, cfg)
    adapted = copy.deepcopy(policy).to(family.device)
    meta = None
    if step_sizes and fast_lr is None:
        meta = _with_step_sizes(adapted, step_sizes)
    result = adapt_to_tasks(
        adapted, family, params, steps, params=meta, config=cfg, episodes=episodes, seed=int(seed)
    )
    with torch.no_grad():
        for name, p in adapted.named_parameters():
            value = result.params[name]
            p.copy_(value[0] if value.ndim > p.ndim else value)
    adapted.eval()
    return AdaptResult(adapted, [float(r) for r in result.returns[:, 0].tolist()])
