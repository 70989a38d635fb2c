"""Meta-training and test-time adaptation: the two loops every MAML evaluation runs.

:func:`train_members` runs ``cfg.meta_iterations`` meta-updates of every member of a program
(one :func:`~autometa.meta.outer.meta_iteration` each, one host read of the members'
finiteness flags per iteration); :func:`adapt_members` takes the inner loop's policy-gradient
steps (:mod:`autometa.meta.inner`, the same as meta-training's) on a batch of tasks given as
tensors: the score's test phase. A candidate evaluated alone is a population of one:
:func:`meta_train` and :func:`adapt_to_tasks` are these loops for one member (the latter under
the export-level ``autometa.adapt``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from autometa._maml_config import MAMLConfig
from autometa.evaluation import Reporter
from autometa.meta.inner import sample_inner_loop
from autometa.meta.maml import derive_seed, init_meta_params
from autometa.meta.members import Cohort, Member, cohort_slices, member_knobs, stack_members
from autometa.meta.outer import OuterStep, check_finite, meta_iteration, outer_step_of
from autometa.meta.reporting import is_report_step, report_members
from autometa.meta.rollout import Params, cat_tasks
from autometa.meta.training_state import TrainingState, capture_outer, restore_outer
from autometa.policy import GraphPolicy

if TYPE_CHECKING:
    from autometa.tasks import TaskFamily

__all__ = [
    "Adaptation",
    "Training",
    "adapt_members",
    "adapt_to_tasks",
    "check_resume",
    "meta_train",
    "train_members",
]

_STATS = ("pre_return", "post_return", "loss", "finite")


@dataclass
class Training:
    """What :func:`train_members` produced, per member.

    Attributes:
        cohorts: the program's architectures; members are numbered cohort after cohort.
        meta: each cohort's meta-learned parameters, ``(P_c, ...)``.
        post_curve: mean post-adaptation return of each meta-iteration, per member.
        pre_curve: the same before adaptation.
        env_steps: transitions each member stepped (until it stopped or failed).
        errors: member index -> the :class:`~autometa.errors.EvaluationError` that ended it.
        stopped: member index -> the meta-iterations it ran before its reporter stopped it.
        states: with ``keep_state``, each member's :class:`TrainingState` after the last
            iteration run (else None).
    """

    cohorts: list[Cohort]
    meta: list[Params]
    post_curve: list[list[float]]
    pre_curve: list[list[float]]
    env_steps: list[int]
    errors: dict[int, Exception] = field(default_factory=dict)
    stopped: dict[int, int] = field(default_factory=dict)
    states: list[TrainingState] | None = None

    def member_meta(self, p: int) -> Params:
        """Member ``p``'s meta-learned parameters."""
        return _member_params(self.cohorts, self.meta, p)


def _member_params(cohorts: list[Cohort], metas: list[Params], p: int) -> Params:
    for meta, where in zip(metas, cohort_slices(cohorts)):
        if where.start <= p < where.stop:
            return {n: v[p - where.start] for n, v in meta.items()}
    raise IndexError(f"member {p} is not in a program of {sum(c.size for c in cohorts)}")


def _resume(
    cohorts: list[Cohort], metas: list[Params], members: list[Member], states: list[TrainingState],
    outer: OuterStep, generators: list[torch.Generator],
) -> tuple[list[Params], list, int, list[list[float]], list[list[float]], list[int]]:  # fmt: skip
    """Load every member's stored state (all at one iteration) into a fresh start."""
    first = states[0].iteration
    for p, (member, state) in enumerate(zip(members, states)):
        check_resume(_member_params(cohorts, metas, p), member, state, generators[p])
        if state.iteration != first:
            raise ValueError("resume_from: the members' training states are at other iterations")
    new_metas, outer_states = [], []
    for meta, where in zip(metas, cohort_slices(cohorts)):
        mine = states[where]
        new = {n: torch.stack([s.meta[n].to(v.device) for s in mine]) for n, v in meta.items()}
        fresh = outer.init(new, members[where.start].config) if outer.init is not None else None
        stored = {
            k: torch.stack([s.outer[k] for s in mine]) if v.dim() else v
            for k, v in mine[0].outer.items()
        }
        new_metas.append(new)
        outer_states.append(restore_outer(fresh, stored))
    post = [list(s.post_curve) for s in states]
    pre = [list(s.pre_curve) for s in states]
    return new_metas, outer_states, first, post, pre, [s.env_steps for s in states]


def check_resume(
    meta: Params, member: Member, state: TrainingState, generator: torch.Generator
) -> None:
    """Check that ``state`` can continue ``member``'s training, ``meta`` being its initial
    meta-parameters (no member axis), and load its action-noise state into ``generator``.

    Everything a program's start would refuse is checked here (seed, iteration, parameter
    names and shapes, the generator state, the outer step's state), so that a program can
    set aside a member whose state does not fit before it starts, instead of failing all.

    Raises:
        ValueError: one line naming what does not fit.
    """
    cfg = member.config
    state.check_for(meta, member.seed, cfg.meta_iterations)
    try:
        generator.set_state(state.generator)
    except RuntimeError as exc:
        raise ValueError(f"resume_from: the generator state does not fit ({exc})") from None
    outer = outer_step_of(cfg)
    one = {n: v.detach().unsqueeze(0) for n, v in meta.items()}
    stored = {k: v.unsqueeze(0) if v.dim() else v for k, v in state.outer.items()}
    restore_outer(outer.init(one, cfg) if outer.init is not None else None, stored)


def _kept(cohorts, metas, states, generators, members, iteration, post, pre, env_steps):
    """Every member's :class:`TrainingState` (its slice of its cohort's outer state)."""
    kept = []
    for meta, state, where in zip(metas, states, cohort_slices(cohorts)):
        outer = capture_outer(state)
        for i, p in enumerate(range(where.start, where.stop)):
            kept.append(
                TrainingState(
                    iteration=iteration,
                    seed=int(members[p].seed),
                    meta={n: t[i].detach().cpu().clone() for n, t in meta.items()},
                    outer={k: v[i] if v.dim() else v for k, v in outer.items()},
                    generator=generators[p].get_state().clone(),
                    post_curve=list(post[p]),
                    pre_curve=list(pre[p]),
                    env_steps=env_steps[p],
                )
            )
    return kept


def train_members(
    cohorts: list[Cohort],
    family,
    metas: list[Params],
    members: list[Member],
    *,
    traced: bool | None = None,
    compiled: bool = False,
    reporters: list[Reporter | None] | None = None,
    resume_from: list[TrainingState] | None = None,
    keep_state: bool = False,
) -> Training:
    """Meta-train every member of a program from its initial parameters.

    ``cohorts`` are the program's architectures and ``metas`` their members' initial
    meta-parameters (``(P_c, ...)`` each); ``members`` are numbered cohort after cohort.
    Member ``p`` draws its tasks, reset noise and action noise from ``members[p].seed``, so
    its curves and weights do not depend on the other members. A member whose numbers become
    NaN or Inf fails alone (its error is kept); the others go on.

    ``reporters`` (one or None per member) are told each member's post-adaptation return every
    :func:`~autometa.meta.reporting.report_interval` iterations; every member reports before
    any is asked ``should_stop()`` (not after the last iteration). A member told to stop stops
    alone: its curves end there; it keeps its slot in the batched kernels until the program
    ends or every member has stopped or failed.

    With ``resume_from`` (one state per member, all at one iteration) training continues where
    they stopped up to ``cfg.meta_iterations``: task seeds use the absolute iteration index
    and the generators, optimiser and curves continue, so the numbers equal those of one run
    straight through. With ``keep_state`` every member's state after the last iteration run
    comes back.

    Raises:
        ValueError: ``resume_from`` does not fit these members or iteration count.
    """
    cfg = members[0].config
    device = family.device
    seeds = [m.seed for m in members]
    knobs = member_knobs(members, device)
    generators = [torch.Generator(device=device).manual_seed(derive_seed(s, 0)) for s in seeds]
    outer = outer_step_of(cfg)
    post: list[list[float]] = [[] for _ in members]
    pre: list[list[float]] = [[] for _ in members]
    env_steps, first = [0] * len(members), 0
    if resume_from is not None:
        metas, states, first, post, pre, env_steps = _resume(
            cohorts, metas, members, resume_from, outer, generators
        )
    else:
        states = [outer.init(meta, cfg) if outer.init is not None else None for meta in metas]
    errors: dict[int, Exception] = {}
    stopped: dict[int, int] = {}
    active = torch.ones(len(members), dtype=torch.bool, device=device)
    it = first - 1
    for it in range(first, cfg.meta_iterations):
        if len(errors) + len(stopped) == len(members):
            break  # nobody left to train
        metas, stats, steps = meta_iteration(
            cohorts, metas, family, cfg, knobs, generators, seeds, it, states,
            active=active, traced=traced, compiled=compiled,
        )  # fmt: skip
        values = torch.stack([stats[k].to(torch.float64) for k in _STATS]).tolist()
        for p in range(len(members)):  # a failed member keeps its error; the rest go on
            if p in errors or p in stopped:
                continue
            env_steps[p] += steps
            try:
                check_finite({k: values[i][p] for i, k in enumerate(_STATS)}, it)
            except Exception as exc:  # noqa: BLE001 - EvaluationError, kept per member
                errors[p] = exc
                continue
            post[p].append(values[1][p])
            pre[p].append(values[0][p])
        if reporters is not None and is_report_step(it + 1, cfg.meta_iterations):
            out = errors.keys() | stopped.keys()
            stopped.update(report_members(reporters, values[1], out, it + 1, cfg.meta_iterations))
        out = errors.keys() | stopped.keys()
        active = torch.tensor([p not in out for p in range(len(members))], device=device)
    kept = None
    if keep_state:
        reached = max(it + 1, first)
        kept = _kept(cohorts, metas, states, generators, members, reached, post, pre, env_steps)
    return Training(list(cohorts), metas, post, pre, env_steps, errors, stopped, kept)


def meta_train(
    policy: GraphPolicy,
    family,
    cfg: MAMLConfig,
    seed: int,
    *,
    traced: bool | None = None,
    compiled: bool = False,
    reporter: Reporter | None = None,
) -> tuple[Params, list[float], list[float], int]:
    """Run ``cfg.meta_iterations`` meta-updates of one candidate from the policy's weights:
    :func:`train_members` with one member.

    ``traced`` chooses how TRPO computes its products: the traced program (True), eagerly
    (False) or by the evaluation's size (None, see ``autometa.meta.backend``); ``compiled``
    compiles the traced program with inductor where it runs. ``reporter`` is
    told the post-adaptation return every :func:`~autometa.meta.reporting.report_interval`
    iterations; when its ``should_stop()`` says True (it is not asked after the last
    iteration), training ends there and the curves are as long as the iterations run.

    Returns:
        ``(meta_params, post_curve, pre_curve, env_steps)``: the curves hold the mean return
        after and before adaptation of each meta-iteration's training tasks.

    Raises:
        EvaluationError: on NaN or Inf (checked once per iteration).
    """
    meta = stack_members([init_meta_params(policy, cfg)])
    training = train_members(
        [Cohort(policy, 1)], family, [meta], [Member(int(seed), cfg)],
        traced=traced, compiled=compiled, reporters=[reporter],
    )  # fmt: skip
    if 0 in training.errors:
        raise training.errors[0]
    return (
        training.member_meta(0),
        training.post_curve[0],
        training.pre_curve[0],
        training.env_steps[0],
    )


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


def adapt_members(
    cohorts: list[Cohort],
    family: TaskFamily,
    task_params: dict[str, torch.Tensor],
    steps: int,
    metas: list[Params],
    members: list[Member],
    *,
    seed: int,
    episodes: int | None = None,
) -> tuple[torch.Tensor, list[Params], int]:
    """Adapt every member of a program (``metas``: each cohort's ``(P_c, ...)``) to the same
    tasks with the inner loop of meta-training.

    Every step rolls out ``episodes`` fresh episodes per task (default the first member's
    ``test_episodes``), fits the baseline and takes one policy-gradient step of the
    meta-learner's inner loss: each member's ``fast_lr`` for the first, times
    ``test_lr_scale`` after (the paper's test-time schedule); Meta-SGD step sizes in ``metas``
    (``"alpha.<name>"``) are used when present. Every member draws the same reset and action
    noise (from ``seed``), as if evaluated alone.

    Returns:
        ``(returns, params, env_steps)``: mean episode return per member, step and task,
        ``(P, steps + 1, T)``; each cohort's adapted parameters (``(P_c, T, ...)`` after at
        least one step); the transitions stepped per member.
    """
    cfg = members[0].config
    count = len(members)
    loop = sample_inner_loop(
        cohorts,
        metas,
        family,
        cat_tasks([task_params] * count),
        cfg,
        steps,
        fast_lr=member_knobs(members, family.device)["fast_lr"],
        episodes=episodes if episodes is not None else cfg.test_episodes,
        generators=[
            torch.Generator(device=family.device).manual_seed(derive_seed(seed, 3))
            for _ in range(count)
        ],
        seeds=[[derive_seed(seed, 4, k)] * count for k in range(steps + 1)],
        scales=[1.0] + [cfg.test_lr_scale] * max(steps - 1, 0),
    )
    returns = torch.stack([b.episode_returns().mean(2) for b in loop.batches], dim=1)
    env_steps = sum(b.env_steps for b in loop.batches) // count
    return returns, loop.params, env_steps


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
    """Adapt ``policy`` to each task in ``task_params``: :func:`adapt_members` for one member.

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
    returns, adapted, env_steps = adapt_members(
        [Cohort(policy, 1)], family, task_params, steps, [stack_members([params])],
        [Member(int(seed), cfg)], seed=seed, episodes=episodes,
    )  # fmt: skip
    return Adaptation({n: v[0] for n, v in adapted[0].items()}, returns[0], env_steps)
