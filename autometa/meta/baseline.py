"""Advantages for the policy gradient: a linear feature baseline fitted per task, then GAE.

The baseline is rllab's ``LinearFeatureBaseline`` (Duan et al. 2016), which the paper and
both reference implementations use: features ``[obs, obs^2, t/100, (t/100)^2, (t/100)^3, 1]``
of every valid step, a ridge least-squares fit to the discounted returns-to-go, refitted for
every task of every batch (paper §5.3). All tasks are solved at once as ``(T, F, F)`` systems.
"""

from __future__ import annotations

import torch

from autometa.meta.rollout import Batch

__all__ = ["advantages", "baseline_features", "discount_matrix", "fit_baseline"]

RIDGE_RETRIES = 5
"""rllab multiplies the ridge by 10 up to 5 times while the solution is not finite."""


def discount_matrix(horizon: int, factor: float, like: torch.Tensor) -> torch.Tensor:
    """``D[t, s] = factor**(s - t)`` for ``s >= t`` else 0, so ``x @ D.T`` sums discounted futures.

    A matmul instead of a reverse Python loop over time: one kernel on any device.
    """
    t = torch.arange(horizon, device=like.device, dtype=torch.float64)
    lag = t[None, :] - t[:, None]
    weights = torch.where(lag >= 0, factor ** lag.clamp_min(0), torch.zeros_like(lag))
    return weights.to(like.dtype)


def baseline_features(obs: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
    """rllab's features per step, zero on steps after the episode ended: ``(T, E, H, F)``.

    Observations are clipped to [-10, 10] as in the original code.
    """
    horizon = obs.shape[-2]
    obs = obs.clamp(-10.0, 10.0)
    t = (torch.arange(horizon, device=obs.device, dtype=obs.dtype) / 100.0).expand(obs.shape[:-1])[
        ..., None
    ]
    ones = torch.ones_like(t)
    feats = torch.cat([obs, obs.square(), t, t.square(), t**3, ones], dim=-1)
    return feats * alive[..., None]


def fit_baseline(
    features: torch.Tensor, targets: torch.Tensor, ridge: float = 1e-5
) -> torch.Tensor:
    """Ridge least squares per task; returns the fitted values, shaped like ``targets``.

    Solves ``(X^T X + ridge * I) w = X^T y`` for every task at once in float64. rllab's retry
    (ridge x10 while the solution has NaNs, up to 5 tries) is done without a host decision:
    all five ridges are solved together and each task keeps the first finite solution.

    Args:
        features: ``(T, E, H, F)``, zero rows on invalid steps.
        targets: ``(T, E, H)`` discounted returns-to-go (zero on invalid steps).
        ridge: the first ridge coefficient.
    """
    tasks, num_features = features.shape[0], features.shape[-1]
    x = features.reshape(tasks, -1, num_features).to(torch.float64)
    y = targets.reshape(tasks, -1, 1).to(torch.float64)
    gram, rhs = x.transpose(1, 2) @ x, x.transpose(1, 2) @ y  # (T, F, F), (T, F, 1)
    eye = torch.eye(num_features, dtype=torch.float64, device=x.device)
    ridges = ridge * 10.0 ** torch.arange(RIDGE_RETRIES, dtype=torch.float64, device=x.device)
    systems = gram + ridges[:, None, None, None] * eye  # (R, T, F, F)
    solutions, _ = torch.linalg.solve_ex(systems, rhs.expand(RIDGE_RETRIES, -1, -1, -1))
    finite = torch.isfinite(solutions).all(dim=(-2, -1))  # (R, T)
    first = torch.argmax(finite.to(torch.int64), dim=0)  # first finite try (0 if none)
    weights = solutions[first, torch.arange(tasks, device=x.device)]  # (T, F, 1)
    return (x @ weights).reshape(targets.shape).to(targets.dtype)


def advantages(
    batch: Batch,
    gamma: float = 0.99,
    gae_lambda: float = 1.0,
    normalize: bool = True,
    ridge: float = 1e-5,
) -> torch.Tensor:
    """GAE advantages of every step, ``(T, E, H)``, zero on invalid steps; no gradient.

    ``A_t = sum_k (gamma * lambda)^k delta_{t+k}``, ``delta_t = r_t + gamma V(s_{t+1}) - V(s_t)``
    with ``V`` the per-task linear baseline and ``V = 0`` past the end of an episode. With
    ``normalize`` the advantages are centred and scaled per task over valid steps.
    """
    with torch.no_grad():
        rewards, alive = batch.rewards * batch.alive, batch.alive
        horizon = rewards.shape[-1]
        returns = rewards @ discount_matrix(horizon, gamma, rewards).T
        values = fit_baseline(baseline_features(batch.obs, alive), returns, ridge) * alive
        next_values = torch.nn.functional.pad(values[..., 1:], (0, 1))
        deltas = (rewards + gamma * next_values - values) * alive
        adv = deltas @ discount_matrix(horizon, gamma * gae_lambda, deltas).T
        if normalize:
            dims = (1, 2)
            count = alive.sum(dims, keepdim=True).clamp_min(1.0)
            mean = (adv * alive).sum(dims, keepdim=True) / count
            var = ((adv - mean).square() * alive).sum(dims, keepdim=True) / count
            adv = (adv - mean) / (var.sqrt() + 1e-8)
        return adv * alive
