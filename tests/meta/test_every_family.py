"""The MAML evaluator scores a small policy on every registered task family."""

import math

import pytest

from autometa.graph import mlp_graph
from autometa.meta import MAMLEvaluator
from autometa.tasks import TASKS

MUJOCO = {"halfcheetah-vel", "halfcheetah-dir", "ant-vel", "ant-dir"}


@pytest.mark.parametrize("family", TASKS.names())
def test_one_tiny_evaluation_per_family(family):
    if family in MUJOCO:
        pytest.importorskip("mujoco")
    evaluator = MAMLEvaluator(
        family, meta_iterations=1, num_tasks=2, episodes_per_task=2, test_tasks=2,
        test_episodes=2, report_steps=1,
    )  # fmt: skip
    result = evaluator(mlp_graph((8,)), seed=0)
    assert result.status == "ok", result.error
    assert math.isfinite(result.score)
    assert result.metrics["env_steps"] > 0
    assert result.fidelity == 1
