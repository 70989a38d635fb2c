"""A population of MAML evaluations as one batched program: P members, one set of kernels.

A *member* is one (candidate, seed) pair of one architecture: its own meta-parameters, its own
random streams (tasks, reset noise, action noise) and its own step sizes. Meta-training P
members one after the other launches the same small kernels P times; here every tensor of the
algorithm gets a leading population dimension P and each kernel runs once for all members:

- rollouts: the members' tasks are concatenated into one ``(P*T, E)`` batch of the family, so
  the environment steps once per time step for everyone; the policy is evaluated with
  ``vmap`` over the members' parameters (``vmap`` over tasks inside it once adapted);
- advantages: one batched baseline fit over the ``P*T`` tasks;
- the inner step, the meta-loss, its gradient, the KL Hessian-vector products and the
  conjugate-gradient solve: the one-member functions of ``autometa.meta.maml`` and
  ``autometa.meta.linalg`` under ``vmap`` over the members (``torch.func`` composes), so each
  member gets exactly its own gradient, its own CG solve and its own trust-region step;
- the line search: every member tests its own candidate step each round and keeps the first
  it accepts; the loop ends when every member has accepted or failed (one host read a round).

Members are independent: nothing mixes values across the population dimension, and each
member draws its random numbers from the same streams, in the same order, as an evaluation of
that member alone (``autometa.meta._training``). So the numbers are those of P separate
evaluations, up to the rounding of batched kernels (the tests compare them). A member whose
numbers become NaN or Inf fails alone, with the reason an evaluation of it alone gives; the
others go on.

What may differ between members: the seed, the initial weights, and the per-member step sizes
(``PER_MEMBER``: ``fast_lr``, ``max_kl``, ``cg_damping``, ``ls_backtrack``, ``init_std``);
everything else (architecture, sizes, iterations, outer step) is shared, see
:func:`population_key`. Only MAML with the TRPO outer step, on native (pure-torch) task
families, batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.func import vmap

from autometa._maml_config import MAMLConfig
from autometa.evaluation import Reporter
from autometa.meta._kernel_size import members_per_kernel
from autometa.meta._population_rollout import (
    cat_tasks,
    merge_members,
    population_rollout,
    split_members,
)
from autometa.meta._population_step import population_trpo_step
from autometa.meta.inner import batch_advantages, inner_step, split_meta, step_size
from autometa.meta.maml import MetaBatch, derive_seed
from autometa.meta.outer import check_finite
from autometa.meta.reporting import is_report_step, report_members
from autometa.meta.rollout import Batch, Params
from autometa.policy import GraphPolicy

__all__ = [
    "PER_MEMBER",
    "Member",
    "PopulationTraining",
    "adapt_population",
    "meta_train_population",
    "population_key",
    "stack_members",
    "widest_layer",
]

PER_MEMBER = ("fast_lr", "max_kl", "cg_damping", "ls_backtrack", "init_std")
"""Configuration fields that may differ between the members of one population."""


def population_key(cfg: MAMLConfig) -> tuple | None:
    """What members must share to be batched together, or None if ``cfg`` cannot batch.

    Every configuration field except :data:`PER_MEMBER` (sizes, iterations, discount,
    baseline, test protocol...). Only MAML with the TRPO outer step batches.
    """
    if cfg.outer != "trpo" or cfg.meta_learner != "maml":
        return None
    shared = {k: v for k, v in cfg.to_dict().items() if k not in PER_MEMBER}
    return tuple(sorted((k, repr(v)) for k, v in shared.items()))


@dataclass
class Member:
    """One member's settings: its seed and configuration (which fixes its step sizes)."""

    seed: int
    config: MAMLConfig


def stack_members(metas: list[Params]) -> Params:
    """The members' meta-parameters stacked along a new leading population dimension."""
    return {name: torch.stack([m[name] for m in metas]) for name in metas[0]}


def _per_member(members: list[Member], name: str, device: torch.device) -> torch.Tensor:
    values = [float(getattr(m.config, name)) for m in members]
    return torch.tensor(values, dtype=torch.float32, device=device)


def _advantages(batch: Batch, cfg: MAMLConfig) -> torch.Tensor:
    """Advantages of every member's tasks in one batched fit: ``(P, T, E, H)``."""
    flat = Batch(*(merge_members(column) for column in batch))
    return split_members(batch_advantages(flat, cfg), batch.rewards.shape[0])


def _inner_step(
    policy: GraphPolicy,
    params: Params,
    stacked: bool,
    batch: Batch,
    adv: torch.Tensor,
    lr: torch.Tensor | Params,
) -> tuple[Params, Params]:
    """Every member's inner policy-gradient step: ``(gradients, adapted parameters)``."""

    def one(p: Params, b: Batch, a: torch.Tensor, step: torch.Tensor | Params):
        return inner_step(policy, p, stacked, b, a, step)

    with torch.no_grad():
        return vmap(one)(params, batch, adv, lr)


def sample_population_batch(
    policy: GraphPolicy,
    meta: Params,
    family,
    tasks: dict[str, torch.Tensor],
    cfg: MAMLConfig,
    fast_lr: torch.Tensor,
    generators: list[torch.Generator],
    seeds: list[int],
) -> MetaBatch:
    """:func:`~autometa.meta.maml.sample_meta_batch` for every member; tensors ``(P, ...)``."""
    meta = {n: p.detach() for n, p in meta.items()}
    theta, alpha = split_meta(meta)
    lr = step_size(fast_lr, alpha)
    params, stacked = theta, False
    train, grads = [], []
    for k in range(cfg.inner_steps + 1):
        batch = population_rollout(
            policy,
            params,
            stacked,
            family,
            tasks,
            cfg.episodes_per_task,
            generators,
            [s + k for s in seeds],
        )
        adv = _advantages(batch, cfg)
        if k == cfg.inner_steps:
            return MetaBatch(train, grads, batch, adv)
        g, params = _inner_step(policy, params, stacked, batch, adv, lr)
        stacked = True
        train.append((batch, adv))
        grads.append(g)
    raise AssertionError("unreachable")


@dataclass
class PopulationTraining:
    """What :func:`meta_train_population` produced, per member.

    Attributes:
        meta: the meta-learned parameters, stacked ``(P, ...)``.
        post_curve: mean post-adaptation return of each meta-iteration, per member.
        pre_curve: the same before adaptation.
        env_steps: transitions stepped per member.
        errors: member index -> the :class:`~autometa.errors.EvaluationError` that ended it.
        per_kernel: members the TRPO step took at a time.
        stopped: member index -> the meta-iterations it ran before its reporter stopped it.
    """

    meta: Params
    post_curve: list[list[float]]
    pre_curve: list[list[float]]
    env_steps: int
    errors: dict[int, Exception]
    per_kernel: int = 1
    stopped: dict[int, int] = field(default_factory=dict)


def widest_layer(policy: GraphPolicy) -> int:
    """The largest dimension of any parameter: the width that sizes activation tensors."""
    return max((max(p.shape) for p in policy.parameters() if p.dim() > 0), default=1)


def member_knobs(members: list[Member], device: torch.device) -> dict[str, torch.Tensor]:
    """The per-member settings as ``(P,)`` tensors on ``device``."""
    return {name: _per_member(members, name, device) for name in PER_MEMBER}


def meta_train_population(
    policy: GraphPolicy,
    meta: Params,
    family,
    members: list[Member],
    *,
    traced: bool | None = None,
    reporters: list[Reporter | None] | None = None,
) -> PopulationTraining:
    """Meta-train every member from its stacked initial ``meta`` (see the module docstring).

    Member ``p`` draws its tasks, reset noise and action noise from ``members[p].seed``
    exactly as :func:`~autometa.meta._training.meta_train` does, so its curves and weights are
    those of an evaluation of it alone. Host reads: one ``(P,)`` finiteness flag per
    iteration, plus one boolean per line-search round. The TRPO step takes the members
    :func:`~autometa.meta._kernel_size.members_per_kernel` at a time (``traced`` as in
    :func:`~autometa.meta.trpo.trpo_step` for a member stepped alone).

    ``reporters`` (one or None per member) are told each member's post-adaptation return as
    :func:`~autometa.meta._training.meta_train` tells its reporter; every member reports
    before any is asked ``should_stop()``. A member told to stop stops alone: its parameters
    are frozen like a failed member's and its curves end there; it keeps its slot in the
    batched kernels (its rollouts and gradients are still computed, then discarded) until
    the population ends, or every member has stopped or failed.
    """
    cfg = members[0].config
    device = family.device
    seeds = [m.seed for m in members]
    knobs = member_knobs(members, device)
    generators = [torch.Generator(device=device).manual_seed(derive_seed(s, 0)) for s in seeds]
    active = torch.ones(len(members), dtype=torch.bool, device=device)
    errors: dict[int, Exception] = {}
    stopped: dict[int, int] = {}
    post, pre, env_steps, per_kernel = [], [], 0, len(members)
    for it in range(cfg.meta_iterations):
        if len(errors) + len(stopped) == len(members):
            break  # nobody left to train
        tasks = cat_tasks(
            [family.sample_tasks(cfg.num_tasks, derive_seed(s, it, 1)) for s in seeds]
        )
        mb = sample_population_batch(
            policy,
            meta,
            family,
            tasks,
            cfg,
            knobs["fast_lr"],
            generators,
            [derive_seed(s, it, 2) for s in seeds],
        )
        per_kernel = members_per_kernel(
            device, len(members), mb.valid.rewards[0].numel(), widest_layer(policy)
        )
        meta_next, loss, finite = population_trpo_step(
            policy,
            mb,
            meta,
            cfg,
            knobs,
            active,
            configs=[m.config for m in members],
            per_kernel=per_kernel,
            traced=traced,
        )
        first = mb.train[0][0] if mb.train else mb.valid
        pre_return = first.episode_returns().mean((1, 2))
        post_return = mb.valid.episode_returns().mean((1, 2))
        finite = finite & torch.isfinite(pre_return) & torch.isfinite(post_return)
        stats = torch.stack([pre_return, post_return, loss, finite.to(loss.dtype)]).tolist()
        for p in range(len(members)):  # a failed member keeps its error; the rest go on
            if p in errors:
                continue
            try:
                check_finite({k: torch.tensor(stats[i][p]) for i, k in enumerate(_STATS)}, it)
            except Exception as exc:  # noqa: BLE001 - EvaluationError, kept per member
                errors[p] = exc
        if reporters is not None and is_report_step(it + 1, cfg.meta_iterations):
            stopped.update(report_members(reporters, stats[1], errors.keys() | stopped.keys(),
                                          it + 1, cfg.meta_iterations))  # fmt: skip
        out = errors.keys() | stopped.keys()
        active = torch.tensor([p not in out for p in range(len(members))], device=device)
        meta = {
            n: torch.where(active.view(-1, *([1] * (v.dim() - 1))), v, meta[n])
            for n, v in meta_next.items()
        }
        post.append(stats[1])
        pre.append(stats[0])
        env_steps += mb.env_steps // len(members)
    post_curve = [list(row) for row in zip(*post)] if post else [[] for _ in members]
    pre_curve = [list(row) for row in zip(*pre)] if pre else [[] for _ in members]
    for p, reached in stopped.items():
        post_curve[p], pre_curve[p] = post_curve[p][:reached], pre_curve[p][:reached]
    return PopulationTraining(meta, post_curve, pre_curve, env_steps, errors, per_kernel, stopped)


_STATS = ("pre_return", "post_return", "loss", "finite")


def adapt_population(
    policy: GraphPolicy,
    family,
    task_params: dict[str, torch.Tensor],
    steps: int,
    meta: Params,
    members: list[Member],
    *,
    seed: int,
) -> tuple[torch.Tensor, int]:
    """:func:`~autometa.meta._training.adapt_to_tasks` of every member on the same held-out tasks.

    Returns:
        ``(returns, env_steps)``: mean episode return per member, task and step,
        ``(P, steps + 1, T)``, and the transitions stepped per member.
    """
    cfg = members[0].config
    count = len(members)
    knobs = member_knobs(members, family.device)
    meta = {n: p.detach() for n, p in meta.items()}
    theta, alpha = split_meta(meta)
    tasks = cat_tasks([task_params] * count)
    generators = [
        torch.Generator(device=family.device).manual_seed(derive_seed(seed, 3))
        for _ in range(count)
    ]
    current, stacked, returns, env_steps = theta, False, [], 0
    for k in range(steps + 1):
        batch = population_rollout(
            policy,
            current,
            stacked,
            family,
            tasks,
            cfg.test_episodes,
            generators,
            [derive_seed(seed, 4, k)] * count,
        )
        returns.append(batch.episode_returns().mean(2))
        env_steps += batch.env_steps // count
        if k == steps:
            break
        adv = _advantages(batch, cfg)
        lr = step_size(knobs["fast_lr"], alpha, 1.0 if k == 0 else cfg.test_lr_scale)
        _, current = _inner_step(policy, current, stacked, batch, adv, lr)
        stacked = True
    return torch.stack(returns, dim=1), env_steps
