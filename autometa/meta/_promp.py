"""ProMP (Rothfuss et al. 2019, "ProMP"): the LVC inner loss and the proximal outer steps.

ProMP keeps MAML's sampler, baseline, batched inner loop and test phase, and changes two
pieces, registered here under the names the ``"promp"`` meta-learner gives them
(``MAMLConfig(meta_learner="promp")``; the learner is registered by name in
``autometa._meta_learners``, so that a configuration is checked without torch):

- **inner loss** ``"lvc"`` (ProMP §4, the low-variance curvature objective):
  ``J^LVC = mean over valid steps of pi_theta(a|s) / pi_o(a|s) * A``, with ``pi_o`` the policy
  that sampled the episodes. At the sampling parameters its value is 1 x the mean advantage
  and its gradient is REINFORCE's, so sampling and test-time adaptation take the same steps as
  MAML. Its Hessian, which the meta-gradient differentiates through, is REINFORCE's plus
  ``mean_t (grad log pi_t)(grad log pi_t)^T A_t``: it adds the curvature of the sampling
  distribution that MAML's REINFORCE Hessian leaves out, but only each step's own term, not
  the products across time steps of the unbiased (DiCE) Hessian, whose variance grows with
  the horizon. Against the sampler's ``pi_o`` rather than ``stop_grad(pi_theta)``, as in the ProMP
  code (``_adapt_objective_sym``), the later outer steps on the same episodes importance-weight
  the inner gradient.
- **outer step** ``"promp"`` (ProMP §5, Algorithm 1): ``promp_steps`` Adam steps on the same
  meta-batch, each on
  ``-mean_i mean_t min(r A, clip(r, 1 - eps, 1 + eps) A) + eta x mean_k D_KL(pi_o,k || pi_k)``,
  where ``r = pi_theta'(a|s) / pi_o'(a|s)`` is the post-adaptation ratio against the adapted
  policy that sampled, and the penalty is the mean KL between the pre-update policies that
  sampled step ``k``'s episodes and the current ones (zero at the start of the steps). The
  adapted parameters are recomputed through the LVC inner steps at every outer step (second
  order, or with the sampled inner gradients as constants when ``first_order``).

Settings (``MAMLConfig.promp_*``) default to the ProMP code's run scripts.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch.func import functional_call, grad

from autometa._maml_config import MAMLConfig
from autometa.meta.inner import INNER_LOSSES, replay_inner_steps
from autometa.meta.maml import MetaBatch
from autometa.meta.members import map_members
from autometa.meta.outer import OUTER_STEPS, OuterInputs, OuterStep, finite_members
from autometa.meta.rollout import Batch, Outputs, Params, kl_divergence, log_prob, policy_outputs
from autometa.policy import GraphPolicy

__all__ = ["ProMPObjective", "adapt_kl_coeff", "lvc_loss", "promp_init", "promp_step"]


def lvc_loss(theta: Params, policy: GraphPolicy, batch: Batch, adv: torch.Tensor) -> torch.Tensor:
    """One task's LVC inner loss: ``-mean over valid steps of pi_theta(a|s) / pi_o(a|s) * A``.

    ``pi_o`` is the sampling policy (``batch.log_probs``). Minimising it is ascending ProMP's
    ``J^LVC``; at the sampling parameters its gradient equals :func:`~autometa.meta.inner.
    inner_loss`'s (REINFORCE).
    """
    logp = log_prob(functional_call(policy, theta, (batch.obs,)), batch.actions)
    ratio = torch.exp(logp - batch.log_probs)
    return -(ratio * adv).sum() / batch.alive.sum().clamp_min(1.0)


def _task_mean(per_step: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
    """Mean over tasks of the mean over each task's valid steps, for ``(T, E, H)`` values."""
    return ((per_step * alive).sum((1, 2)) / alive.sum((1, 2)).clamp_min(1.0)).mean()


class ProMPObjective:
    """ProMP's outer objective of one member's meta-batch, as a function of its
    meta-parameters (:func:`promp_step` runs it over the members: ``members.map_members``).

    Args:
        policy: the policy module.
        mb: the member's meta-batch (sampled with the LVC inner steps).
        cfg: the configuration (``promp_clip``, ``first_order``, the inner loss).
        lr: the member's ``fast_lr`` (default ``cfg.fast_lr``).
        old: the distribution parameters of the policies that sampled, before each inner step
            and after the last (:meth:`outputs` at the sampling meta-parameters).
    """

    def __init__(
        self,
        policy: GraphPolicy,
        mb: MetaBatch,
        cfg: MAMLConfig,
        lr: torch.Tensor | None = None,
        old: tuple[list[Outputs], Outputs] | None = None,
    ) -> None:
        self.policy, self.mb, self.cfg, self.lr = policy, mb, cfg, lr
        self.fixed_grads = mb.grads if cfg.first_order else None
        if old is not None:
            self.old_pre, self.old_post = old

    @classmethod
    def sampled_at(
        cls, policy: GraphPolicy, mb: MetaBatch, cfg: MAMLConfig, meta: Params, lr=None
    ) -> ProMPObjective:
        """The objective whose old policies are those at ``meta`` (the sampling parameters)."""
        with torch.no_grad():
            detached = {n: p.detach().clone() for n, p in meta.items()}
            old = cls(policy, mb, cfg, lr).outputs(detached)
        return cls(policy, mb, cfg, lr, old)

    def outputs(self, meta: Params) -> tuple[list[Outputs], Outputs]:
        """Distribution parameters before each inner step (on its episodes) and after the last."""
        steps = replay_inner_steps(
            meta, self.policy, self.mb.train, self.cfg, self.fixed_grads, self.lr
        )
        pre = [
            policy_outputs(self.policy, params, batch.obs, stacked)
            for (params, stacked), (batch, _) in zip(steps[:-1], self.mb.train)
        ]
        params, stacked = steps[-1]
        return pre, policy_outputs(self.policy, params, self.mb.valid.obs, stacked)

    def surrogate(self, post: Outputs) -> torch.Tensor:
        """``-mean_i mean_t min(r A, clip(r, 1 - eps, 1 + eps) A)`` on the valid episodes."""
        valid, eps = self.mb.valid, self.cfg.promp_clip
        ratio = torch.exp(log_prob(post, valid.actions) - log_prob(self.old_post, valid.actions))
        adv = self.mb.valid_adv
        clipped = torch.minimum(ratio * adv, torch.clamp(ratio, 1.0 - eps, 1.0 + eps) * adv)
        return -_task_mean(clipped, valid.alive)

    def inner_kls(self, pre: list[Outputs]) -> torch.Tensor:
        """Mean ``KL(pi_o,k || pi_k)`` on each inner step's episodes, ``(inner_steps,)``."""
        kls = [
            _task_mean(kl_divergence(old, new), batch.alive)
            for old, new, (batch, _) in zip(self.old_pre, pre, self.mb.train)
        ]
        if not kls:
            return torch.zeros(0, dtype=self.mb.valid.obs.dtype, device=self.mb.valid.obs.device)
        return torch.stack(kls)

    def loss(
        self, meta: Params, kl_coeff: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``(objective, (objective, inner KLs))`` at ``meta`` (the pair is ``grad``'s aux)."""
        pre, post = self.outputs(meta)
        kls = self.inner_kls(pre)
        value = self.surrogate(post)
        if kls.numel():
            value = value + (kl_coeff * kls).mean()
        return value, (value.detach(), kls.detach())


def _old_outputs(policy, cfg, meta, data, lr):
    """One member's sampling distributions (what :class:`ProMPObjective` compares with)."""
    return ProMPObjective(policy, MetaBatch(*data), cfg, lr).outputs(meta)


def _member_loss(policy, cfg, meta, data, lr, old, kl_coeff):
    return ProMPObjective(policy, MetaBatch(*data), cfg, lr, old).loss(meta, kl_coeff)


def adapt_kl_coeff(coeff: torch.Tensor, kls: torch.Tensor, target: float) -> torch.Tensor:
    """ProMP code's ``_adapt_kl_coeff`` per inner step: halve below target/1.5, double above
    1.5 x target (on the device, no host read)."""
    halved = torch.where(kls < target / 1.5, coeff / 2, coeff)
    return torch.where(kls > target * 1.5, coeff * 2, halved)


def promp_init(meta: Params, cfg: MAMLConfig) -> dict[str, Any]:
    """State kept across meta-iterations: Adam over the members' meta-parameters and each
    member's KL weights, ``(P, inner_steps)``."""
    first = next(iter(meta.values()))
    return {
        "optimizer": torch.optim.Adam(list(meta.values()), lr=cfg.promp_lr),
        "kl_coeff": torch.full(
            (first.shape[0], cfg.inner_steps),
            cfg.promp_kl_coeff,
            dtype=first.dtype,
            device=first.device,
        ),
    }


def promp_step(
    inputs: OuterInputs, meta: Params, state: dict[str, Any]
) -> tuple[Params, torch.Tensor, torch.Tensor]:
    """``promp_steps`` Adam steps of every member on its :class:`ProMPObjective`;
    ``(meta, loss_before, finite)``, ``meta``'s tensors updated in place (they are the
    optimiser's leaves). TRPO's backend choice does not apply."""
    policy, cfg, data, lr = inputs.policy, inputs.cfg, inputs.data, inputs.knobs["fast_lr"]
    optimizer, coeff = state["optimizer"], state["kl_coeff"]
    device = inputs.active.device
    with torch.no_grad():
        sampling = {n: p.detach().clone() for n, p in meta.items()}
        old = map_members(partial(_old_outputs, policy, cfg), sampling, data, lr, device=device)
    loss_grad = partial(
        map_members, grad(partial(_member_loss, policy, cfg), has_aux=True), device=device
    )
    first, finite = None, torch.ones_like(inputs.active)
    for _ in range(cfg.promp_steps):
        g, (loss, _) = loss_grad(meta, data, lr, old, coeff)
        finite = finite & finite_members(g) & torch.isfinite(loss)
        first = loss if first is None else first
        for name, p in meta.items():
            p.grad = g[name]
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if cfg.promp_adaptive_kl and cfg.inner_steps > 0:
        with torch.no_grad():
            _, (_, kls) = map_members(
                partial(_member_loss, policy, cfg), meta, data, lr, old, coeff, device=device
            )
        state["kl_coeff"] = adapt_kl_coeff(coeff, kls, cfg.promp_target_kl)
    return meta, first, finite


INNER_LOSSES.register("lvc", lvc_loss)
OUTER_STEPS.register("promp", OuterStep(promp_step, promp_init))
