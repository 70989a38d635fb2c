"""MAML for RL (Finn et al. 2017, Algorithm 3), batched over tasks with ``torch.func``.

Read top to bottom, one meta-iteration is:

1. sample a meta-batch of T tasks;
2. roll out E episodes per task with the initial parameters theta (one tensor program);
3. fit a linear baseline per task and compute advantages;
4. inner step: theta'_i = theta - alpha * grad L_i(theta), vmapped over tasks (REINFORCE for
   MAML, the meta-learner's inner loss in general: ``autometa.meta.inner``);
5. roll out E fresh episodes per task with theta'_i;
6. outer loss: the importance-weighted surrogate of the post-adaptation episodes, as a
   differentiable function of theta *through* the inner step (second order);
7. outer step: TRPO (``autometa.meta.trpo``) or Adam.

Meta-parameters are a flat dict: the policy's parameters, plus ``"alpha.<name>"`` per-parameter
step sizes when Meta-SGD is on. Every tensor carries a leading *member* axis P: the algorithm
runs P (candidate, seed) pairs of one architecture side by side, each member's computation
written once for one member and run under ``vmap`` over them (``autometa.meta.members``); a
candidate evaluated alone is a population of one. Host synchronisation per iteration: one read
of the members' finiteness flags (NaN/Inf ends a member's evaluation), plus TRPO's
line-search decisions.

Where each step lives: 1-5 :func:`sample_meta_batch` (``autometa.meta.rollout``,
``autometa.meta.baseline``, ``autometa.meta.inner``); 6 :class:`MetaObjective`; 7
``autometa.meta.outer`` (the registered outer steps; TRPO's direction in
``autometa.meta.backend``); the loop over meta-iterations and the held-out test in
``autometa.meta._training``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.func import functional_call, grad, vjp, vmap
from torch.utils._pytree import tree_flatten, tree_unflatten

from autometa._maml_config import MAMLConfig
from autometa.meta.inner import (
    ALPHA,
    replay_inner_steps,
    sample_inner_loop,
)
from autometa.meta.members import Cohort, cohort_slices, members_of
from autometa.meta.rollout import Batch, Outputs, Params, kl_divergence, log_prob
from autometa.policy import GraphPolicy

__all__ = [
    "MetaBatch",
    "MetaObjective",
    "adapted_params",
    "derive_seed",
    "flatten_objective",
    "init_meta_params",
    "loss_and_grad",
    "sample_meta_batch",
    "unflatten_objective",
]


def derive_seed(*keys: int) -> int:
    """A 63-bit seed from integer keys (evaluation seed, iteration, stream), collision-free."""
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def init_meta_params(policy: GraphPolicy, cfg: MAMLConfig) -> Params:
    """Detached copies of the policy's parameters, plus Meta-SGD step sizes when enabled."""
    meta = {name: p.detach().clone() for name, p in policy.named_parameters()}
    if cfg.meta_sgd:
        meta.update({ALPHA + n: torch.full_like(p, cfg.fast_lr) for n, p in list(meta.items())})
    return meta


# -- inner loop: autometa.meta.inner (REINFORCE for MAML), differentiable in meta -------------


def adapted_params(
    meta: Params,
    policy: GraphPolicy,
    train: list[tuple[Batch, torch.Tensor]],
    cfg: MAMLConfig,
    fixed_grads: list[Params] | None = None,
    lr: float | torch.Tensor | None = None,
) -> tuple[Params, bool]:
    """theta'_i after ``len(train)`` inner steps on the stored batches; differentiable in ``meta``.

    The last of :func:`~autometa.meta.inner.replay_inner_steps` (same arguments): stacked
    per-task parameters, or theta itself (not stacked) when there is no inner step, as
    ``(params, stacked)``.
    """
    return replay_inner_steps(meta, policy, train, cfg, fixed_grads, lr)[-1]


# -- sampling: pre-adaptation episodes, inner steps, post-adaptation episodes -----------------


@dataclass
class MetaBatch:
    """Everything sampled in one meta-iteration (data only; no autograd graph): every
    member's, with the member axis first, or one member's slice (what
    :class:`MetaObjective` reads under ``vmap``).

    Attributes:
        train: ``(batch, advantages)`` for each inner step.
        grads: the inner gradients computed while sampling (reused by first-order MAML).
        valid: the post-adaptation episodes the outer loss is computed on.
        valid_adv: their advantages.
    """

    train: list[tuple[Batch, torch.Tensor]]
    grads: list[Params]
    valid: Batch
    valid_adv: torch.Tensor

    @property
    def env_steps(self) -> int:
        """Transitions stepped for this meta-batch (by every member it holds)."""
        return sum(b.env_steps for b, _ in self.train) + self.valid.env_steps


def sample_meta_batch(
    cohorts: Sequence[Cohort],
    metas: Sequence[Params],
    family,
    tasks: dict[str, torch.Tensor],
    cfg: MAMLConfig,
    fast_lr: torch.Tensor,
    generators: list[torch.Generator],
    seeds: list[int],
) -> list[MetaBatch]:
    """Every member's meta-batch: roll out, fit baselines and take the inner steps (no
    gradient kept), then roll out again; one :class:`MetaBatch` per cohort, ``(P_c, ...)``.

    The inner steps use fresh episodes after every step, as pytorch-maml-rl's sampler does
    (:func:`autometa.meta.inner.sample_inner_loop`, with ``cfg.meta_learner``'s inner loss);
    member ``p``'s rollout ``k`` is reset with seed ``seeds[p] + k``.
    """
    loop = sample_inner_loop(
        cohorts,
        metas,
        family,
        tasks,
        cfg,
        cfg.inner_steps,
        fast_lr=fast_lr,
        episodes=cfg.episodes_per_task,
        generators=generators,
        seeds=[[s + k for s in seeds] for k in range(cfg.inner_steps + 1)],
        last_advantages=True,
    )
    return [
        MetaBatch(
            [(members_of(b, sl), a[sl]) for b, a in zip(loop.batches, loop.advantages[:-1])],
            [grads[c] for grads in loop.grads],
            members_of(loop.batches[-1], sl),
            loop.advantages[-1][sl],
        )
        for c, sl in enumerate(cohort_slices(cohorts))
    ]


# -- outer loss: surrogate and KL of the post-adaptation policy, as functions of meta --------


class MetaObjective:
    """The meta-objective of one member's meta-batch as functions of its meta-parameters
    (the outer steps run it under ``vmap`` over the members).

    ``outputs(meta)`` adapts (differentiably, or first-order) and evaluates the adapted
    policies on the post-adaptation episodes; the surrogate loss and the KL are cheap functions
    of those outputs, so TRPO can reuse one ``vjp`` of ``outputs`` for the gradient and every
    Fisher-vector product.
    """

    def __init__(
        self,
        policy: GraphPolicy,
        mb: MetaBatch,
        cfg: MAMLConfig,
        lr: float | torch.Tensor | None = None,
    ) -> None:
        self.policy, self.mb, self.cfg, self.lr = policy, mb, cfg, lr
        self.fixed_grads = mb.grads if cfg.first_order else None
        self.count = mb.valid.alive.sum((1, 2)).clamp_min(1.0)  # valid steps per task

    def outputs(self, meta: Params) -> Outputs:
        """Post-adaptation distribution parameters on the valid episodes, ``(T, E, H, ...)``."""
        params, stacked = adapted_params(
            meta, self.policy, self.mb.train, self.cfg, self.fixed_grads, self.lr
        )
        obs = self.mb.valid.obs
        if not stacked:
            return functional_call(self.policy, params, (obs,))
        return vmap(lambda p, o: functional_call(self.policy, p, (o,)))(params, obs)

    def _task_mean(self, per_step: torch.Tensor) -> torch.Tensor:
        return ((per_step * self.mb.valid.alive).sum((1, 2)) / self.count).mean()

    def loss(self, out: Outputs, old: Outputs) -> torch.Tensor:
        """``-mean_i mean_t ratio * A``, ``ratio = pi'(a|s) / pi'_old(a|s)`` (pytorch-maml-rl)."""
        actions = self.mb.valid.actions
        ratio = torch.exp(log_prob(out, actions) - log_prob(old, actions))
        return -self._task_mean(ratio * self.mb.valid_adv)

    def kl(self, out: Outputs, old: Outputs) -> torch.Tensor:
        """Mean over tasks and valid steps of ``KL(pi_old || pi)`` (the original code's order)."""
        return self._task_mean(kl_divergence(old, out))

    def loss_and_kl(self, meta: Params, old: Outputs) -> tuple[torch.Tensor, torch.Tensor]:
        """Surrogate loss and mean KL at ``meta``: what one line-search test measures."""
        out = self.outputs(meta)
        return self.loss(out, old), self.kl(out, old)


def flatten_objective(meta: Params, mb: MetaBatch, *extra: object) -> tuple[list, object]:
    """``(meta, the meta-batch, *extra)`` as flat tensors and their structure.

    The inputs of a function of the meta-objective that is traced (``autometa.meta.traced``)
    or replayed as a CUDA graph: every data tensor is an argument, none is baked in.
    """
    return tree_flatten((meta, mb.train, mb.grads, mb.valid, mb.valid_adv, extra))


def unflatten_objective(
    policy: GraphPolicy, cfg: MAMLConfig, flat: list, spec: object
) -> tuple[MetaObjective, Params, tuple]:
    """Inverse of :func:`flatten_objective`: ``(objective, meta, extra)``."""
    meta, train, grads, valid, valid_adv, extra = tree_unflatten(list(flat), spec)
    mb = MetaBatch(list(train), list(grads), valid, valid_adv)
    return MetaObjective(policy, mb, cfg), meta, tuple(extra)


def loss_and_grad(
    obj: MetaObjective, meta: Params
) -> tuple[torch.Tensor, Params, Outputs, Callable]:
    """Meta-loss at ``meta``, its gradient, the (detached) outputs and the stored ``vjp``."""
    out, vjp_fn = vjp(obj.outputs, meta)
    old = tuple(o.detach() for o in out)
    dloss_dout = grad(lambda o: obj.loss(o, old))(old)
    (g,) = vjp_fn(dloss_dout)
    return obj.loss(old, old), g, old, vjp_fn
