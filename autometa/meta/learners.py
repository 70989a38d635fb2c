"""Meta-learners by name: which inner loss the inner loop differentiates, and which outer step.

The registry lives in :mod:`autometa._meta_learners`, below the configuration and free of
torch (see there); this module is its public home.
"""

from autometa._meta_learners import META_LEARNERS, MetaLearner

__all__ = ["META_LEARNERS", "MetaLearner"]
