"""Shared helpers of the MAML evaluator tests: small float64 policies and synthetic batches.

A plain module (not ``conftest``): test folders each have a conftest, and importing one by
name picks whichever was imported first.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from helpers import chain_graph

from autometa.meta.baseline import advantages
from autometa.meta.inner import inner_gradients, split_meta
from autometa.meta.maml import MetaBatch, init_meta_params
from autometa.meta.rollout import Batch
from autometa.policy import build_policy

SMALL = dict(
    num_tasks=8,
    episodes_per_task=8,
    test_tasks=10,
    test_episodes=10,
    family_options={"horizon": 20},
)
"""Evaluator options for navigation2d at reduced size (horizon 20): seconds per evaluation."""

OBS = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
ACT = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)


def float64_policy(widths=(8, 8), op="linear_tanh", seed=0, discrete=False):
    act = gym.spaces.Discrete(3) if discrete else ACT
    return build_policy(chain_graph(widths, op), OBS, act, seed=seed).double()


def synthetic_batch(gen, tasks=3, episodes=4, horizon=6, discrete=False) -> Batch:
    """Random episodes; the first episode of every task ends after 4 steps."""
    f64 = torch.float64
    obs = torch.randn(tasks, episodes, horizon, 2, generator=gen, dtype=f64)
    if discrete:
        actions = torch.randint(0, 3, (tasks, episodes, horizon), generator=gen)
    else:
        actions = torch.randn(tasks, episodes, horizon, 2, generator=gen, dtype=f64)
    alive = torch.ones(tasks, episodes, horizon, dtype=f64)
    alive[:, 0, 4:] = 0.0
    rewards = torch.randn(tasks, episodes, horizon, generator=gen, dtype=f64) * alive
    return Batch(obs, actions, rewards, alive, torch.zeros_like(rewards))


def synthetic_meta_batch(policy, cfg, seed=0, discrete=False, **sizes) -> MetaBatch:
    """A meta-batch of random episodes with the inner gradients a sampler would have kept."""
    gen = torch.Generator().manual_seed(seed)
    meta = init_meta_params(policy, cfg)
    params, alpha = split_meta(meta)
    stacked, train, grads = False, [], []
    for _ in range(cfg.inner_steps):
        batch = synthetic_batch(gen, discrete=discrete, **sizes)
        adv = advantages(batch)
        g = inner_gradients(policy, params, stacked, batch, adv)
        lr = alpha if alpha is not None else cfg.fast_lr
        params = {n: params[n] - (lr[n] if isinstance(lr, dict) else lr) * g[n] for n in params}
        stacked = True
        train.append((batch, adv))
        grads.append({n: t.detach() for n, t in g.items()})
    valid = synthetic_batch(gen, discrete=discrete, **sizes)
    return MetaBatch(train, grads, valid, advantages(valid))
