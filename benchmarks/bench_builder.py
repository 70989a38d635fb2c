"""Per-call overhead of a compiled GraphPolicy against a hand-written nn.Sequential.

Usage: python benchmarks/bench_builder.py [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gymnasium as gym
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved_times, print_table, save  # noqa: E402

from autometa.graph import mlp_graph  # noqa: E402
from autometa.policy import build_policy  # noqa: E402


class SequentialPolicy(nn.Module):
    """The same policy written by hand: Sequential body, Gaussian head with a learned log-std."""

    def __init__(self, obs_dim: int, widths: tuple[int, ...], act_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        last = obs_dim
        for width in widths:
            layers += [nn.Linear(last, width), nn.Tanh()]
            last = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(last, act_dim)
        self.log_std = nn.Parameter(torch.zeros(act_dim))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.head(self.body(obs))
        return mean, self.log_std.expand_as(mean)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    obs_dim, act_dim = 2, 2
    rows, records = [], []
    for widths in [(64, 64), (100, 100), (64, 64, 64, 64)]:
        graph = mlp_graph(widths)
        policy = build_policy(
            graph, gym.spaces.Box(-1, 1, (obs_dim,)), gym.spaces.Box(-1, 1, (act_dim,))
        )
        reference = SequentialPolicy(obs_dim, widths, act_dim)
        for batch in [1, 400, 2000]:
            obs = torch.randn(batch, obs_dim)
            with torch.no_grad():
                t_graph, t_seq = interleaved_times(
                    [lambda p=policy, o=obs: p(o), lambda r=reference, o=obs: r(o)], number=200
                )
            over_us = (t_graph - t_seq) * 1e6
            rows.append(
                [
                    "x".join(map(str, widths)),
                    batch,
                    t_seq * 1e6,
                    t_graph * 1e6,
                    over_us,
                    t_graph / t_seq,
                ]
            )
            records.append(
                {
                    "widths": widths,
                    "batch": batch,
                    "sequential_us": t_seq * 1e6,
                    "graph_us": t_graph * 1e6,
                    "overhead_us": over_us,
                    "ratio": t_graph / t_seq,
                }
            )
    print_table(
        ["hidden", "batch", "Sequential us", "GraphPolicy us", "overhead us", "ratio"], rows
    )
    save("bench_builder", {"threads": args.threads, "results": records})


if __name__ == "__main__":
    main()
