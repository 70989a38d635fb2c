"""A program of P members for the benchmark scripts, built as ``autometa.meta._evaluate`` builds
one: one policy module per architecture, each member's initial weights from its own seed, its
own action-noise generator and its per-member settings as ``(P,)`` tensors."""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import torch

from autometa._maml_config import MAMLConfig
from autometa.meta.maml import MetaBatch, derive_seed, init_meta_params, sample_meta_batch
from autometa.meta.members import Cohort, Member, member_knobs, stack_members
from autometa.meta.rollout import Params, cat_tasks
from autometa.policy import GraphPolicy, build_policy


@dataclass
class Program:
    """What the algorithm's functions take for P members of one architecture."""

    policy: GraphPolicy
    family: object
    cfg: MAMLConfig
    members: list[Member]
    meta: Params
    knobs: dict[str, torch.Tensor]
    generators: list[torch.Generator]

    @property
    def seeds(self) -> list[int]:
        """The members' seeds, in order."""
        return [m.seed for m in self.members]

    @property
    def active(self) -> torch.Tensor:
        """Every member training, ``(P,)``."""
        return torch.ones(len(self.members), dtype=torch.bool, device=self.family.device)

    def meta_batch(self, iteration: int = 0) -> MetaBatch:
        """Every member's meta-batch of ``iteration``, sampled as ``meta_iteration`` samples it."""
        tasks = cat_tasks(
            [
                self.family.sample_tasks(self.cfg.num_tasks, derive_seed(s, iteration, 1))
                for s in self.seeds
            ]
        )
        (batch,) = sample_meta_batch(
            [Cohort(self.policy, len(self.members))],
            [self.meta],
            self.family,
            tasks,
            self.cfg,
            self.knobs["fast_lr"],
            self.generators,
            [derive_seed(s, iteration, 2) for s in self.seeds],
        )
        return batch


def build_program(graph: nx.DiGraph, family, cfg: MAMLConfig, seeds: list[int]) -> Program:
    """P = ``len(seeds)`` members of ``graph`` with ``cfg``, on ``family``'s device."""
    policies = [
        build_policy(
            graph,
            family.single_observation_space,
            family.single_action_space,
            seed=s,
            init_std=cfg.init_std,
            device=family.device,
        )
        for s in seeds
    ]
    members = [Member(int(s), cfg) for s in seeds]
    return Program(
        policy=policies[0],
        family=family,
        cfg=cfg,
        members=members,
        meta=stack_members([init_meta_params(p, cfg) for p in policies]),
        knobs=member_knobs(members, family.device),
        generators=[
            torch.Generator(device=family.device).manual_seed(derive_seed(s, 0)) for s in seeds
        ],
    )
