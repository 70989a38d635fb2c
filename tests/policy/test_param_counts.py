"""Parameter counts come from each op's declared shapes, without torch, and equal the
counts of the torch modules a policy builds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from torch import nn

from autometa.graph import count_params, mlp_graph
from autometa.ops import OPS, register_op
from autometa.policy import GraphPolicy
from autometa.space import load_space, shipped_spaces

ROOT = Path(__file__).resolve().parents[2]


def torch_count(module) -> int:
    return sum(p.numel() for p in module.parameters())


BUILT_IN = [name for name in OPS.names() if isinstance(OPS.get(name).make, str)]
"""The ops autometa registers (their modules named by ``"module:attr"``): other test modules
register test ops of their own without a declared count, and collection may see them."""


@pytest.mark.parametrize("name", BUILT_IN)
def test_each_ops_declared_count_equals_its_modules(name):
    spec = OPS.get(name)
    for in_width, width in ((1, 1), (3, 7), (16, 5)):
        assert spec.params is not None, name
        assert spec.param_count(in_width, width) == torch_count(spec.build(in_width, width))


@pytest.mark.parametrize("space_name", sorted(shipped_spaces()))
@pytest.mark.parametrize("discrete", [False, True])
def test_sampled_graphs_count_as_their_policies(space_name, discrete):
    space = load_space(shipped_spaces()[space_name])
    obs_dim, act_dim = space.io["obs_dim"], space.io["act_dim"]
    for seed in range(8):
        graph = space.sample(seed)
        policy = GraphPolicy(graph, obs_dim, act_dim, discrete)
        assert count_params(graph, obs_dim, act_dim, discrete) == policy.num_params


def test_an_op_without_a_declared_count_is_counted_on_its_module():
    register_op("count_test_bilinear", lambda i, o: nn.Bilinear(i, i, o), overwrite=True)
    try:
        graph = mlp_graph([4], op="count_test_bilinear")
        policy = GraphPolicy(graph, 3, 2, False)
        assert count_params(graph, 3, 2) == policy.num_params == (3 * 3 * 4 + 4) + 4 * 2 + 2 + 2
    finally:
        OPS.unregister("count_test_bilinear")


def test_reading_checking_and_counting_a_space_imports_no_torch(tmp_path):
    code = (
        "import sys\n"
        "from autometa.space import load_space, shipped_spaces\n"
        "space = load_space(shipped_spaces()['chain_mlp'])\n"
        "g = space.sample(0); space.validate(g)\n"
        "from autometa.graph import count_params\n"
        "print(count_params(g, 2, 2), 'torch' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "False"
