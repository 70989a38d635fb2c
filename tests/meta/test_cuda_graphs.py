"""The CUDA-graph switch: off on the CPU, on for CUDA unless the environment says no."""

from __future__ import annotations

import pytest
import torch

from autometa.meta import cuda_graphs


def test_enabled_only_for_cuda_and_the_environment_switch_turns_it_off(monkeypatch):
    monkeypatch.delenv("AUTOMETA_CUDA_GRAPHS", raising=False)
    assert cuda_graphs.enabled(torch.device("cuda"))
    assert not cuda_graphs.enabled(torch.device("cpu"))
    monkeypatch.setenv("AUTOMETA_CUDA_GRAPHS", "0")
    assert not cuda_graphs.enabled(torch.device("cuda"))


def test_cpu_inputs_are_left_to_the_caller_and_nothing_is_cached():
    owner = torch.nn.Linear(2, 2)
    calls = []

    def fn(x):
        calls.append(x)
        return [x * 2]

    assert cuda_graphs.captured(owner, "double", fn, [torch.ones(3)]) is None
    assert calls == [] and cuda_graphs.graphs_of(owner) == []


@pytest.mark.parametrize(
    "a, b, same",
    [
        ((torch.zeros(2, 3),), (torch.ones(2, 3),), True),
        ((torch.zeros(2, 3),), (torch.zeros(3, 2),), False),
        ((torch.zeros(2, 3),), (torch.zeros(2, 3, dtype=torch.float64),), False),
    ],
)
def test_a_graph_is_specialised_to_shapes_and_dtypes_not_values(a, b, same):
    assert (cuda_graphs.signature(a) == cuda_graphs.signature(b)) is same
