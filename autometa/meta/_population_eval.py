"""Scoring many (candidate, seed) pairs at once: grouping, population programs, results.

:func:`evaluate_population` is what ``MAMLEvaluator.evaluate_population`` and
``MAMLEvaluator.evaluate_seeds`` run. Pairs batch into one program
(``autometa.meta.population``) when they have the same architecture (equal graphs once the
hyperparameters are set aside, and equal parameter shapes once built) and the same
configuration apart from the per-member step sizes. Grouping by equal structure keeps every
member's numbers those of its own evaluation; a masked super-architecture would batch more
candidates together, but its padded widths change the kernels' summation order and it pays
for the largest member in every slot. A group is split into populations that fit the
device's memory, and a population that still runs out of memory is halved and retried. What
cannot batch (a one-pair group, a non-TRPO outer step, a gymnasium-backed family) is
evaluated alone, as ``MAMLEvaluator.__call__`` does.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import traceback
from typing import Any

import networkx as nx
import torch

from autometa.evaluation import EvalResult, failed_result
from autometa.graph import to_json
from autometa.meta._kernel_size import last_level_cache, members_per_kernel
from autometa.meta._scoring import pruned_result, scored_result
from autometa.meta._training import adapt_to_tasks
from autometa.meta.maml import init_meta_params
from autometa.meta.population import (
    Member,
    adapt_population,
    meta_train_population,
    population_key,
    stack_members,
    widest_layer,
)
from autometa.meta.result import Trained, is_out_of_memory
from autometa.policy import build_policy

__all__ = ["evaluate_population", "memory_limited_size", "structure_key"]

log = logging.getLogger("autometa.meta")

#: Share of the free device memory (CPU: available RAM) a population may plan to use.
MEMORY_SHARE = 0.6


def structure_key(graph: nx.DiGraph) -> str:
    """The graph as JSON without its hyperparameters: equal keys build equal policies."""
    data = to_json(graph)
    data["graph"] = {k: v for k, v in data.get("graph", {}).items() if k != "hyperparameters"}
    return json.dumps(data, sort_keys=True, default=str)


def _free_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def memory_limited_size(per_member: int, device: torch.device, limit: int | None = None) -> int:
    """Members that fit in :data:`MEMORY_SHARE` of the free memory (at least 1, at most
    ``limit``), given one member's estimated peak ``per_member`` bytes."""
    fits = max(1, int(_free_memory(device) * MEMORY_SHARE) // max(int(per_member), 1))
    return fits if limit is None else max(1, min(fits, int(limit)))


def evaluate_population(
    evaluator: Any,
    pairs: list[tuple[nx.DiGraph, int]],
    *,
    device: str | torch.device | None = None,
    meta_iterations: int | None = None,
    max_members: int | None = None,
    reporters: list[Any] | None = None,
) -> list[EvalResult]:
    """Score every ``(graph, seed)`` pair; the results are in the order of ``pairs``.

    ``reporters`` (one or None per pair) are the pairs' ``reporter=`` (see
    ``MAMLEvaluator.__call__``); a population member told to stop stops alone.

    Raises:
        ConfigurationError: as ``MAMLEvaluator.__call__`` does (a bad hyperparameter name);
            nothing has run then.
    """
    family = evaluator.family(device)
    reporters = list(reporters) if reporters is not None else [None] * len(pairs)
    results: list[EvalResult | None] = [None] * len(pairs)
    groups: dict[tuple, list[tuple[int, Member]]] = {}
    for i, (graph, seed) in enumerate(pairs):
        cfg = evaluator.config_for_graph(graph, meta_iterations)
        key = population_key(cfg)
        if key is None or not family.native:
            continue
        groups.setdefault((structure_key(graph), key), []).append((i, Member(int(seed), cfg)))
    for group in groups.values():
        if len(group) < 2:
            continue
        graph = pairs[group[0][0]][0]
        size = memory_limited_size(
            evaluator.estimate_memory(graph, meta_iterations), family.device, max_members
        )
        for start in range(0, len(group), size):
            _run(evaluator, family, pairs, group[start : start + size], results, reporters)
    for i, (graph, seed) in enumerate(pairs):  # what did not batch, or failed to build
        if results[i] is None:
            kwargs: dict[str, Any] = {}
            if meta_iterations is not None:
                kwargs["meta_iterations"] = meta_iterations
            if reporters[i] is not None:
                kwargs["reporter"] = reporters[i]
            results[i] = evaluator(graph, seed=int(seed), device=device, **kwargs)
    return [r for r in results if r is not None]


def _run(evaluator: Any, family, pairs, group, results, reporters, smallest: int = 2) -> None:
    """One population; halved and retried when it runs out of memory.

    A population of fewer than ``smallest`` members is left to the one-by-one path."""
    built = []
    for i, member in group:
        try:
            policy = build_policy(
                pairs[i][0],
                family.single_observation_space,
                family.single_action_space,
                seed=member.seed,
                init_std=member.config.init_std,
                device=family.device,
            )
        except Exception:  # noqa: BLE001 - left for the one-pair path, which records why
            continue
        built.append((i, member, policy))
    shapes = {tuple((n, tuple(p.shape)) for n, p in b[2].named_parameters()) for b in built}
    if len(built) < smallest or len(shapes) != 1:
        return  # nothing to batch: evaluated one by one
    try:
        _population(evaluator, family, built, results, reporters)
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        if family.device.type == "cuda":
            torch.cuda.empty_cache()
        for i, _, _ in built:
            results[i] = None
        if len(built) > 2:
            half = len(built) // 2
            log.warning("a population of %d ran out of memory; halving it", len(built))
            for part in (built[:half], built[half:]):
                _run(evaluator, family, pairs, [(i, m) for i, m, _ in part], results, reporters)


def _population(evaluator: Any, family, built, results, reporters) -> None:
    start = time.perf_counter()
    policy = built[0][2]
    members = [m for _, m, _ in built]
    cfg = members[0].config
    meta = stack_members([init_meta_params(p, m.config) for _, m, p in built])
    training = meta_train_population(
        policy, meta, family, members, traced=evaluator.traced,
        reporters=[reporters[i] for i, _, _ in built],
    )  # fmt: skip
    skipped = {**training.errors, **training.stopped}  # no held-out test for these
    by_step, test_steps, test_kernel = _held_out_test(
        policy, family, cfg, training.meta, members, skipped
    )
    program = {
        "members": len(members),
        "trpo_per_kernel": training.per_kernel,
        "test_per_kernel": test_kernel,
    }
    _log_program(family.device, policy, program)
    wall = time.perf_counter() - start
    count = len(built)
    for p, (i, member, member_policy) in enumerate(built):
        info = {
            "seed": member.seed,
            "device": str(family.device),
            "population": count,
            "population_wall_time": wall,
        }
        error = training.errors.get(p)
        if p in training.stopped:
            trained = Trained(
                {},
                training.post_curve[p],
                training.pre_curve[p],
                training.env_steps
                * training.stopped[p]
                // max(len(c) for c in training.post_curve),
                0,
            )
            results[i] = pruned_result(
                member_policy, family, member.config, member.seed, trained,
                time.perf_counter() - wall / count, population=count, population_wall_time=wall,
            )  # fmt: skip
            continue
        if error is None:
            trained = Trained(
                {n: v[p] for n, v in training.meta.items()},
                training.post_curve[p],
                training.pre_curve[p],
                training.env_steps,
                test_steps,
            )
            try:
                result = scored_result(
                    member_policy,
                    family,
                    member.config,
                    member.seed,
                    trained,
                    by_step[p],
                    time.perf_counter() - wall / count,
                    evaluator.keep_state_dict,
                    population=count,
                    population_wall_time=wall,
                    program=program,
                )
                results[i] = result
                continue
            except Exception as exc:  # noqa: BLE001 - EvaluationError: this member's failure
                error = exc
        info["wall_time"] = wall / count
        info["traceback"] = "".join(traceback.format_exception(error))
        result = failed_result(f"{type(error).__name__}: {error}", **info)
        result.fidelity = member.config.meta_iterations
        results[i] = result


def run_population(
    evaluator: Any, pairs: list[tuple[nx.DiGraph, int]], device: str | torch.device | None = None
) -> list[EvalResult | None]:
    """All ``pairs`` (one architecture) as one population program, even a population of one.

    What :func:`evaluate_population` runs for a group it batches; the benchmarks and the
    calibration call it to time the population path itself. A pair that could not join
    (it failed to build) is None.
    """
    family = evaluator.family(device)
    group = [(i, Member(int(s), evaluator.config_for_graph(g))) for i, (g, s) in enumerate(pairs)]
    results: list[EvalResult | None] = [None] * len(pairs)
    _run(evaluator, family, pairs, group, results, [None] * len(pairs), smallest=1)
    return results


def _held_out_test(policy, family, cfg, meta, members, failed) -> tuple[list[list[float]], int]:
    """Every member's mean held-out return by adaptation step, and the transitions each
    stepped; ``members_per_kernel`` members at a time: a population of them, or one member's
    own :func:`adapt_to_tasks` (none for a member that ``failed`` in training)."""
    tasks = family.test_tasks(cfg.test_tasks, cfg.test_seed)
    steps = max(cfg.test_steps, cfg.report_steps)
    transitions = cfg.test_tasks * cfg.test_episodes * family.horizon
    size = members_per_kernel(family.device, len(members), transitions, widest_layer(policy))
    by_step: list[list[float]] = []
    env_steps = 0
    for start in range(0, len(members), size):
        chunk = members[start : start + size]
        if len(chunk) == 1 and start in failed:
            by_step.append([math.nan] * (steps + 1))
            continue
        if len(chunk) == 1:
            one = {n: v[start] for n, v in meta.items()}
            adapted = adapt_to_tasks(
                policy, family, tasks, steps, params=one, config=chunk[0].config,
                seed=cfg.test_seed,
            )  # fmt: skip
            by_step.append(adapted.returns.mean(1).tolist())
            env_steps = adapted.env_steps
            continue
        part = {n: v[start : start + size] for n, v in meta.items()}
        returns, env_steps = adapt_population(
            policy, family, tasks, steps, part, chunk, seed=cfg.test_seed
        )
        by_step.extend(returns.mean(2).tolist())
    return by_step, env_steps, size


_logged: set[tuple] = set()


def _log_program(device: torch.device, policy, program: dict[str, int]) -> None:
    """Say once per device, parameter shapes and choice how a population was run."""
    shapes = tuple(tuple(p.shape) for p in policy.parameters())
    key = (str(device), shapes, tuple(program.values()))
    if key in _logged:
        return
    _logged.add(key)
    log.info(
        "population of %d members on %s: TRPO step %d member(s) at a time, held-out test %d "
        "at a time (last-level cache %d MiB)",
        program["members"],
        device,
        program["trpo_per_kernel"],
        program["test_per_kernel"],
        last_level_cache() // (1024 * 1024),
    )
