"""Meta-training and test-time adaptation: the two loops every MAML evaluation runs.

:func:`meta_train` runs ``cfg.meta_iterations`` meta-updates (one :func:`~autometa.meta.outer.
meta_iteration` each, one host read per iteration); :func:`adapt_to_tasks` takes the inner
loop's policy-gradient steps (:mod:`autometa.meta.inner`, the same as meta-training's) on a
batch of tasks given as tensors: the score's test phase, and the loop under the export-level
``autometa.adapt``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from autometa._maml_config import MAMLConfig
from autometa.evaluation import Reporter
from autometa.meta.inner import sample_inner_loop
from autometa.meta.maml import derive_seed, init_meta_params
from autometa.meta.outer import check_finite, meta_iteration, outer_step_of
from autometa.meta.reporting import is_report_step
from autometa.meta.rollout import Params
from autometa.meta.training_state import TrainingState, capture_outer, restore_outer
from autometa.policy import GraphPolicy

if TYPE_CHECKING:
    from autometa.tasks import TaskFamily

__all__ = ["Adaptation", "adapt_to_tasks", "meta_train", "meta_train_state"]


@dataclass
class Adaptation:
    """What :func:`adapt_to_tasks` produced.

    Attributes:
        params: the adapted parameters, stacked per task (leading T) after at least one step.
        returns: mean episode return per task before and after each step, ``(steps + 1, T)``.
        env_steps: transitions stepped.
    """

    params: Params
    returns: torch.Tensor
    env_steps: int


def adapt_to_tasks(
    policy: GraphPolicy,
    family: TaskFamily,
    task_params: dict[str, torch.Tensor],
    steps: int = 1,
    *,
    params: Params | None = None,
    config: MAMLConfig | None = None,
    episodes: int | None = None,
    seed: int = 0,
) -> Adaptation:
    """Adapt ``policy`` to each task in ``task_params`` with the inner loop of meta-training.

    The steps are those of :func:`autometa.meta.inner.sample_inner_loop` with
    ``config.meta_learner``'s inner loss (REINFORCE for MAML, LVC for ProMP).

    Every step rolls out ``episodes`` fresh episodes per task, fits the baseline and takes one
    policy-gradient step: ``fast_lr`` for the first, ``fast_lr * test_lr_scale`` after (the
    paper's test-time schedule). Meta-SGD step sizes in ``params`` (``"alpha.<name>"``) are used
    when present.

    Args:
        policy: the policy module.
        family: the task family the tasks belong to.
        task_params: T tasks (from ``family.sample_tasks`` / ``test_tasks``).
        steps: adaptation steps.
        params: initial parameters (default: the policy's own).
        config: supplies ``fast_lr``, ``test_lr_scale``, discount and baseline settings.
        episodes: episodes per task and step (default ``config.test_episodes``).
        seed: seeds the rollouts.
    """
    cfg = config if config is not None else MAMLConfig()
    if params is None:
        params = {n: p.detach() for n, p in policy.named_parameters()}
    generator = torch.Generator(device=family.device).manual_seed(derive_seed(seed, 3))
    loop = sample_inner_loop(
        policy,
        params,
        family,
        task_params,
        cfg,
        steps,
        episodes=episodes if episodes is not None else cfg.test_episodes,
        generator=generator,
        seeds=[derive_seed(seed, 4, k) for k in range(steps + 1)],
        scales=[1.0] + [cfg.test_lr_scale] * max(steps - 1, 0),
    )
    returns = torch.stack([b.episode_returns().mean(1) for b in loop.batches])
    env_steps = sum(b.env_steps for b in loop.batches)
    return Adaptation(params=loop.params, returns=returns, env_steps=env_steps)


def meta_train(
    policy: GraphPolicy,
    family,
    cfg: MAMLConfig,
    seed: int,
    *,
    traced: bool | None = None,
    reporter: Reporter | None = None,
) -> tuple[Params, list[float], list[float], int]:
    """Run ``cfg.meta_iterations`` meta-updates from the policy's current weights.

    ``traced`` chooses how TRPO computes its products: the traced program (True), eagerly
    (False) or by the evaluation's size (None, see ``autometa.meta.backend.TRACE_MIN_STEPS``).
    ``reporter`` is told the post-adaptation return every
    :func:`~autometa.meta.reporting.report_interval` iterations; when its ``should_stop()``
    says True (it is not asked after the last iteration), training ends there and the curves
    are as long as the iterations run.

    Returns:
        ``(meta_params, post_curve, pre_curve, env_steps)``: the curves hold the mean return
        after and before adaptation of each meta-iteration's training tasks.

    Raises:
        EvaluationError: on NaN or Inf (checked once per iteration).
    """
    meta, post, pre, env_steps, _ = meta_train_state(
        policy, family, cfg, seed, traced=traced, reporter=reporter
    )
    return meta, post, pre, env_steps


def meta_train_state(
    policy: GraphPolicy,
    family,
    cfg: MAMLConfig,
    seed: int,
    *,
    traced: bool | None = None,
    reporter: Reporter | None = None,
    resume_from: TrainingState | None = None,
    keep_state: bool = False,
) -> tuple[Params, list[float], list[float], int, TrainingState | None]:
    """:func:`meta_train` that can continue from, and hand back, a :class:`TrainingState`.

    With ``resume_from`` training continues at its iteration up to ``cfg.meta_iterations``:
    task seeds use the absolute iteration index and the generator, optimiser and curves
    continue where they stopped, so the numbers equal those of one run straight through.
    With ``keep_state`` the state after the last iteration run comes back (else None).

    Raises:
        EvaluationError: on NaN or Inf (checked once per iteration).
        ValueError: ``resume_from`` does not fit this candidate, seed or iteration count.
    """
    meta = init_meta_params(policy, cfg)
    generator = torch.Generator(device=family.device).manual_seed(derive_seed(seed, 0))
    outer = outer_step_of(cfg)
    post: list = []
    pre: list = []
    env_steps, first = 0, 0
    if resume_from is not None:
        resume_from.check_for(meta, seed, cfg.meta_iterations)
        meta = {n: resume_from.meta[n].to(t.device).clone() for n, t in meta.items()}
        try:
            generator.set_state(resume_from.generator)
        except RuntimeError as exc:
            raise ValueError(f"resume_from: the generator state does not fit ({exc})") from None
        post, pre = list(resume_from.post_curve), list(resume_from.pre_curve)
        env_steps, first = resume_from.env_steps, resume_from.iteration
    state = outer.init(meta, cfg) if outer.init is not None else None
    if resume_from is not None:
        state = restore_outer(state, resume_from.outer)
    done = len(post)
    it = first - 1
    for it in range(first, cfg.meta_iterations):
        meta, stats, steps = meta_iteration(
            policy, meta, family, cfg, generator, seed, it, state, traced=traced
        )
        check_finite(stats, it)
        post.append(stats["post_return"])
        pre.append(stats["pre_return"])
        env_steps += steps
        if reporter is not None and is_report_step(it + 1, cfg.meta_iterations):
            reporter.report(it + 1, float(stats["post_return"]))
            if it + 1 < cfg.meta_iterations and reporter.should_stop():
                break  # not asked after the last iteration: nothing is left to save
    new_post = torch.stack(post[done:]).tolist() if len(post) > done else []
    new_pre = torch.stack(pre[done:]).tolist() if len(pre) > done else []
    post, pre = post[:done] + new_post, pre[:done] + new_pre
    kept = None
    if keep_state:
        kept = TrainingState(
            iteration=max(it + 1, first),
            seed=int(seed),
            meta={n: t.detach().cpu().clone() for n, t in meta.items()},
            outer=capture_outer(state),
            generator=generator.get_state().clone(),
            post_curve=list(post),
            pre_curve=list(pre),
            env_steps=env_steps,
        )
    return meta, post, pre, env_steps, kept
