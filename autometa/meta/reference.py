"""The plain way, for checking and timing: a Python loop over tasks with ``torch.autograd``.

This is how most public MAML-RL code is written (one task at a time, the inner step with
``torch.autograd.grad(create_graph=True)``, Hessian-vector products by double backprop). The
tests compare the batched ``torch.func`` code against :func:`loop_meta_gradient` and
:func:`loop_kl_hvp`; ``benchmarks/bench_maml_speed.py`` times :class:`LoopMAML`, which also
samples the plain way, from a gymnasium ``SyncVectorEnv`` per task.
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import torch
from torch.func import functional_call

from autometa._maml_config import MAMLConfig
from autometa.meta.baseline import advantages
from autometa.meta.maml import MetaBatch
from autometa.meta.rollout import Batch, Params, kl_divergence, log_prob
from autometa.policy import GraphPolicy

__all__ = ["LoopMAML", "loop_kl_hvp", "loop_meta_gradient", "loop_meta_loss"]


def _task(batch: Batch, i: int) -> Batch:
    return Batch(*(x[i] for x in batch))


def _adapt_one(
    policy: GraphPolicy, theta: Params, mb: MetaBatch, i: int, cfg: MAMLConfig
) -> Params:
    """theta'_i for task ``i``: the inner steps, one ``autograd.grad`` each."""
    params = {
        n: p if p.requires_grad else p.detach().requires_grad_(True) for n, p in theta.items()
    }
    for batch, adv in mb.train:
        b, a = _task(batch, i), adv[i]
        logp = log_prob(functional_call(policy, params, (b.obs,)), b.actions)
        loss = -(logp * a).sum() / b.alive.sum().clamp_min(1.0)
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=not cfg.first_order)
        params = {n: p - cfg.fast_lr * g for (n, p), g in zip(params.items(), grads)}
    return params


def _post_outputs(policy: GraphPolicy, theta: Params, mb: MetaBatch, cfg: MAMLConfig) -> list:
    return [
        functional_call(policy, _adapt_one(policy, theta, mb, i, cfg), (mb.valid.obs[i],))
        for i in range(mb.valid.obs.shape[0])
    ]


def loop_meta_loss(
    policy: GraphPolicy,
    theta: Params,
    mb: MetaBatch,
    cfg: MAMLConfig,
    kind: str = "loss",
    olds: list | None = None,
) -> torch.Tensor:
    """The surrogate loss (``kind="loss"``) or the KL (``"kl"``) at ``theta``, task by task.

    ``olds`` are the old policy's outputs per task; by default the adapted policy at ``theta``
    itself (ratio 1 and KL 0 there, the point where TRPO linearises).
    """
    loss, kl = _loss_and_kl(policy, theta, mb, cfg, olds)
    return kl if kind == "kl" else loss


def _loss_and_kl(
    policy: GraphPolicy, theta: Params, mb: MetaBatch, cfg: MAMLConfig, olds: list | None
) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.enable_grad():
        outs = _post_outputs(policy, theta, mb, cfg)
    loss, kl = 0.0, 0.0
    for i, out in enumerate(outs):
        old = tuple(o.detach() for o in (out if olds is None else olds[i]))
        b, alive = _task(mb.valid, i), mb.valid.alive[i]
        count = alive.sum().clamp_min(1.0)
        ratio = torch.exp(log_prob(out, b.actions) - log_prob(old, b.actions))
        loss = loss + (-ratio * mb.valid_adv[i] * alive).sum() / count
        kl = kl + (kl_divergence(old, out) * alive).sum() / count
    return loss / len(outs), kl / len(outs)


def loop_meta_gradient(
    policy: GraphPolicy, theta: Params, mb: MetaBatch, cfg: MAMLConfig
) -> Params:
    """The meta-gradient with a Python loop over tasks and ``create_graph=True``."""
    leaves = {n: p.detach().clone().requires_grad_(True) for n, p in theta.items()}
    loss = loop_meta_loss(policy, leaves, mb, cfg)
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return dict(zip(leaves, grads))


def loop_kl_hvp(
    policy: GraphPolicy, theta: Params, mb: MetaBatch, cfg: MAMLConfig, vector: Params
) -> Params:
    """The exact Hessian-vector product of the KL by double backprop (pytorch-maml-rl's way)."""
    leaves = {n: p.detach().clone().requires_grad_(True) for n, p in theta.items()}
    kl = loop_meta_loss(policy, leaves, mb, cfg, kind="kl")
    grads = torch.autograd.grad(kl, list(leaves.values()), create_graph=True)
    dot = sum((g * vector[n]).sum() for g, n in zip(grads, leaves))
    hvp = torch.autograd.grad(dot, list(leaves.values()))
    return dict(zip(leaves, hvp))


class LoopMAML:
    """One MAML-TRPO meta-iteration written the plain way (the speed benchmark's reference).

    Sampling: for each task, a gymnasium ``SyncVectorEnv`` of ``episodes_per_task`` copies of
    ``family.single_env(task)``, stepped with numpy actions. Optimisation: per-task inner
    steps with ``create_graph=True``; TRPO with double-backprop Hessian-vector products, CG and
    the backtracking line search.

    Args:
        policy: the policy (its parameters are updated in place).
        family: the task family (only ``sample_tasks`` and ``single_env`` are used).
        cfg: the configuration.
        seed: seeds task sampling and the environments.
        make_env: ``make_env(task) -> gym.Env`` for one task (default ``family.single_env``),
            e.g. a plain NumPy implementation of the same dynamics.
    """

    def __init__(
        self, policy: GraphPolicy, family, cfg: MAMLConfig, seed: int = 0, make_env=None
    ) -> None:
        self.policy, self.family, self.cfg, self.seed = policy, family, cfg, seed
        self.make_env = make_env if make_env is not None else family.single_env
        self.env_steps = 0
        self.timings: dict[str, float] = {}
        torch.manual_seed(seed)

    def sample(self, task: dict, params: Params, seed: int) -> Batch:
        """``episodes_per_task`` episodes of one task, one ``SyncVectorEnv`` step at a time."""
        envs = gym.vector.SyncVectorEnv(
            [lambda: self.make_env(task) for _ in range(self.cfg.episodes_per_task)]
        )  # ended episodes autoreset on the next step; the alive mask drops those steps
        obs, _ = envs.reset(seed=seed)
        alive = np.ones(len(obs), np.float32)
        columns: list[list] = [[], [], [], [], []]
        for _ in range(self.family.horizon):
            obs_t = torch.as_tensor(obs)
            with torch.no_grad():
                out = functional_call(self.policy, params, (obs_t,))
                action = out[0] + out[1].exp() * torch.randn_like(out[0])
                logp = log_prob(out, action)
            obs, reward, terminated, _, _ = envs.step(action.numpy())
            for column, value in zip(columns, (obs_t, action, reward, alive.copy(), logp)):
                column.append(torch.as_tensor(value))
            alive = alive * (1.0 - terminated.astype(np.float32))
        envs.close()
        self.env_steps += self.family.horizon * self.cfg.episodes_per_task
        return Batch(*(torch.stack(c, dim=1).float()[None] for c in columns))

    def iteration(self, iteration: int) -> float:
        """Sample, adapt and take one TRPO step; returns the mean post-adaptation return."""
        cfg, policy = self.cfg, self.policy
        start = time.perf_counter()
        tasks = self.family.sample_tasks(cfg.num_tasks, self.seed * 100003 + iteration)
        theta = {n: p.detach() for n, p in policy.named_parameters()}
        trains, valids = [], []
        for i in range(cfg.num_tasks):
            task = {k: v[i] for k, v in tasks.items()}
            batch = self.sample(task, theta, seed=1000 * iteration + 2 * i)
            adv = advantages(batch, cfg.gamma, cfg.gae_lambda, cfg.normalize_advantages)
            one = MetaBatch([(batch, adv)], [], batch, adv)
            adapted = {n: p.detach() for n, p in _adapt_one(policy, theta, one, 0, cfg).items()}
            valid = self.sample(task, adapted, seed=1000 * iteration + 2 * i + 1)
            trains.append((batch, adv))
            valids.append((valid, advantages(valid, cfg.gamma, cfg.gae_lambda)))
        cat = lambda parts: Batch(*(torch.cat(x) for x in zip(*parts)))  # noqa: E731
        mb = MetaBatch(
            [(cat([b for b, _ in trains]), torch.cat([a for _, a in trains]))],
            [],
            cat([b for b, _ in valids]),
            torch.cat([a for _, a in valids]),
        )
        sampled = time.perf_counter()
        self._trpo(theta, mb)
        self.timings = {"sample": sampled - start, "outer": time.perf_counter() - sampled}
        return float(mb.valid.episode_returns().mean())

    def _trpo(self, theta: Params, mb: MetaBatch) -> None:
        cfg, policy = self.cfg, self.policy
        names = list(theta)
        grads = loop_meta_gradient(policy, theta, mb, cfg)
        g = torch.cat([grads[n].reshape(-1) for n in names])
        leaves = {n: p.detach().clone().requires_grad_(True) for n, p in theta.items()}
        kl = loop_meta_loss(policy, leaves, mb, cfg, kind="kl")
        kl_grads = torch.autograd.grad(kl, list(leaves.values()), create_graph=True)
        flat_kl_grad = torch.cat([k.reshape(-1) for k in kl_grads])

        def hvp(v: torch.Tensor) -> torch.Tensor:
            out = torch.autograd.grad(flat_kl_grad @ v, list(leaves.values()), retain_graph=True)
            return torch.cat([o.reshape(-1) for o in out]) + cfg.cg_damping * v

        x = torch.zeros_like(g)
        r, p = g.clone(), g.clone()
        rr = r @ r
        for _ in range(cfg.cg_iters):
            hp = hvp(p)
            alpha = rr / (p @ hp)
            x, r = x + alpha * p, r - alpha * hp
            rr_new = r @ r
            if rr_new < 1e-10:
                break
            p, rr = r + (rr_new / rr) * p, rr_new
        step = x * torch.sqrt(cfg.max_kl / (0.5 * (x @ hvp(x))))
        flat = torch.cat([theta[n].reshape(-1) for n in names])
        olds = [tuple(o.detach() for o in out) for out in _post_outputs(policy, theta, mb, cfg)]
        old_loss = loop_meta_loss(policy, theta, mb, cfg, olds=olds).detach()
        scale = 1.0
        for _ in range(cfg.ls_max_steps):
            new = flat - scale * step
            cand, start = {}, 0
            for n in names:
                cand[n] = new[start : start + theta[n].numel()].view_as(theta[n])
                start += theta[n].numel()
            loss, kl = _loss_and_kl(policy, cand, mb, cfg, olds)
            if loss < old_loss and kl < cfg.max_kl:
                torch.nn.utils.vector_to_parameters(new, policy.parameters())
                return
            scale *= cfg.ls_backtrack
