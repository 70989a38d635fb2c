"""Meta-learners by name: which inner loss the inner loop differentiates, and which outer step.

Every meta-learner shares the sampler, the baseline, the batched inner loop
(:mod:`autometa.meta.inner`) and the test phase; it differs in two registered pieces:

- its *inner loss*, a name in :data:`autometa.meta.inner.INNER_LOSSES`: the per-task loss
  whose gradient is the inner step (``"reinforce"`` for MAML, ``"lvc"`` for ProMP);
- its *outer step*, a name in :data:`autometa.meta.outer.OUTER_STEPS`, or None to take
  ``MAMLConfig.outer`` (MAML's TRPO or Adam).

``MAMLConfig.meta_learner`` names an entry of :data:`META_LEARNERS`. Users (and a plugin
that registers a meta-learner) import both names from :mod:`autometa.meta`; they live here,
below the configuration and free of torch, so that an unknown name is refused when the
configuration is made and a space's ``meta_learner`` choices are checked without importing
the evaluator. The built-in learners are registered here by the names of their pieces
(ProMP's pieces are registered by ``autometa.meta._promp``).
"""

from __future__ import annotations

from dataclasses import dataclass

from autometa.registry import Registry

__all__ = ["META_LEARNERS", "MetaLearner"]


@dataclass(frozen=True)
class MetaLearner:
    """A registered meta-learning algorithm, as the names of its two pieces.

    Attributes:
        inner_loss: a name in ``autometa.meta.inner.INNER_LOSSES``.
        outer: a name in ``autometa.meta.outer.OUTER_STEPS``; None takes ``MAMLConfig.outer``.
        summary: one line for the documentation and ``repr``.
    """

    inner_loss: str
    outer: str | None = None
    summary: str = ""

    def outer_step(self, configured: str) -> str:
        """The outer step's name: this learner's own, or ``configured`` (``MAMLConfig.outer``)."""
        return self.outer if self.outer is not None else configured


META_LEARNERS: Registry[MetaLearner] = Registry("meta-learner")
"""Meta-learners by name (``"maml"``, ``"promp"``); ``MAMLConfig.meta_learner`` picks one."""

META_LEARNERS.register(
    "maml",
    MetaLearner(
        "reinforce",
        None,
        "MAML (Finn et al. 2017): REINFORCE inner steps, TRPO or Adam through them",
    ),
)
META_LEARNERS.register(
    "promp",
    MetaLearner(
        "lvc",
        "promp",
        "ProMP (Rothfuss et al. 2019): LVC inner steps, clipped surrogate with an inner-KL "
        "penalty, Adam steps",
    ),
)
