"""How much memory one MAML evaluation of a candidate needs, estimated before it runs.

A search may propose a candidate far too big for the machine; evaluating it thrashes the
machine for minutes before the kernel kills the worker. :func:`estimate_evaluation_memory`
bounds the evaluation's peak memory from the candidate's graph, the batch sizes and the task
family's horizon, without building the policy's weights, so the search can fail such a
candidate at once with a clear reason.

The estimate is ``BASE_BYTES`` plus the parameters (``PARAM_COPIES`` float copies per task:
each task's adapted parameters, their gradients and the outer step's vectors) plus the
activations of the largest batch of transitions (``num_tasks x episodes_per_task x horizon``
during meta-training, ``test_tasks x test_episodes x horizon`` in
the test phase) times the floats each transition keeps (every node's input and output width
plus observation and action), times ``ACTIVATION_FACTOR`` per inner step plus one: the
second-order graph, the traced program and the conjugate-gradient products keep several
copies of them alive. The factors are fitted to peak-RSS measurements
(``benchmarks/bench_memory_estimate.py``) so the estimate is an upper bound within about 2x.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from autometa._maml_config import MAMLConfig
from autometa.policy import compile_plan, count_params, space_dims

__all__ = [
    "ACTIVATION_FACTOR",
    "BASE_BYTES",
    "BYTES_PER_FLOAT",
    "PARAM_COPIES",
    "estimate_evaluation_memory",
]

#: Bytes of one float32 value.
BYTES_PER_FLOAT = 4
#: Fixed cost of any evaluation over the process after imports and family creation: the traced
#: program, allocator caches, the baseline's features.
BASE_BYTES = 128 * 2**20
#: Float copies of the parameters alive at the peak, per task (each task adapts its own copy,
#: with its gradients and second-order graph).
PARAM_COPIES = 8
#: Copies of each inner step's activations alive at the peak.
ACTIVATION_FACTOR = 4


def estimate_evaluation_memory(graph: nx.DiGraph, family: Any, config: MAMLConfig) -> int:
    """Bytes an evaluation of ``graph`` on ``family`` with ``config`` needs at its peak.

    Args:
        graph: the candidate (validated while its widths are resolved).
        family: the task family (only its spaces and ``horizon`` are read).
        config: the evaluation's settings (the candidate's hyperparameters applied).

    Raises:
        GraphValidationError: the graph is not a valid candidate.
    """
    obs_dim, act_dim, discrete = space_dims(
        family.single_observation_space, family.single_action_space
    )
    params = count_params(graph, obs_dim, act_dim, discrete)
    steps, feature_dim = compile_plan(graph, obs_dim)
    per_transition = obs_dim + act_dim + feature_dim + sum(s.in_width + s.out_width for s in steps)
    horizon = int(family.horizon)
    train = config.num_tasks * config.episodes_per_task * horizon
    test = config.test_tasks * config.test_episodes * horizon
    activations = max(train * (config.inner_steps + 1), test) * per_transition
    return int(
        BASE_BYTES
        + BYTES_PER_FLOAT * params * PARAM_COPIES * max(config.num_tasks, config.test_tasks)
        + BYTES_PER_FLOAT * activations * ACTIVATION_FACTOR
    )
