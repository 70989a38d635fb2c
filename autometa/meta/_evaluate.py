"""Scoring (candidate, seed) pairs as programs of members; a candidate alone is a program of one.

:func:`evaluate_pairs` is what ``MAMLEvaluator.__call__`` (one pair), ``evaluate_population``
and ``evaluate_seeds`` run. Pairs share a program (``autometa.meta._training``, every tensor
with a leading member axis) when they share the configuration apart from the per-member step
sizes (``autometa.meta.members``). Within a program, pairs of one architecture (equal graphs
once the hyperparameters are set aside, and equal parameter shapes once built) form a cohort,
whose members run in the same ``vmap`` kernels off the CPU (member by member on a CPU, see
``autometa.meta._kernel_size.one_member_at_a_time``); different architectures are different
cohorts of the same program: their environments step together, each cohort's policy and
updates run in its own kernels.

Why cohorts and not one padded super-architecture: padding every member to the widest
candidate would let all of them share kernels, but the padded widths change the order of each
member's sums (its numbers would no longer be those of its evaluation alone) and every slot
pays for the largest member. With cohorts a member's numbers do not depend on what it runs
with (bitwise on the CPU; ``docs/evaluator.md`` says when), and on CUDA one captured graph
replays every cohort's rollout.

A group is split into programs that fit the device's memory (the estimate of its largest
architecture per member); a program that still runs out of memory is halved and retried, and
one that fails for another candidate reason runs its members alone, so that each failure is
its own. Gymnasium-backed families (whose simulators hold one reset at a time) run alone.
Pairs that continue a stored training state share a program with the pairs that continue from
the same meta-iteration (a multi-fidelity rung's promotions do); a state that does not fit its
pair fails that pair alone, before the program starts.
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

from autometa.evaluation import EvalResult, Reporter, failed_result
from autometa.graph import to_json
from autometa.meta._kernel_size import last_level_cache, members_per_kernel
from autometa.meta._scoring import pruned_result, scored_result
from autometa.meta._training import Training, adapt_members, check_resume, train_members
from autometa.meta.backend import compiled_steps
from autometa.meta.maml import init_meta_params
from autometa.meta.members import (
    Cohort,
    Member,
    population_key,
    select_members,
    stack_members,
    widest_layer,
)
from autometa.meta.result import Trained, is_candidate_error, is_out_of_memory
from autometa.meta.training_state import TrainingState
from autometa.policy import build_policy

__all__ = ["evaluate_pairs", "memory_limited_size", "structure_key"]

log = logging.getLogger("autometa.meta")

#: Share of the free device memory (CPU: available RAM) a program may plan to use.
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


class _Pair:
    """One pair's inputs and bookkeeping: where its result goes, its member settings."""

    def __init__(self, index, graph, member, reporter, resume) -> None:
        self.index, self.graph, self.member = index, graph, member
        self.reporter, self.resume = reporter, resume
        self.policy = None


def evaluate_pairs(
    evaluator: Any,
    pairs: list[tuple[nx.DiGraph, int]],
    *,
    device: str | torch.device | None = None,
    meta_iterations: int | None = None,
    max_members: int | None = None,
    reporters: list[Reporter | None] | None = None,
    resume_from: list[TrainingState | dict[str, torch.Tensor] | None] | None = None,
    keep_state: bool = False,
    bad_state_fails: bool = False,
) -> list[EvalResult]:
    """Score every ``(graph, seed)`` pair; the results are in the order of ``pairs``.

    ``reporters`` (one or None per pair) are the pairs' ``reporter=`` (see
    ``MAMLEvaluator.__call__``); a member told to stop stops alone. ``resume_from`` (one or
    None per pair: a :class:`TrainingState` or its tensors) continues a pair's training; the
    pairs continuing from one meta-iteration share programs. With ``keep_state`` each result
    carries its training state. With ``bad_state_fails`` a state that does not fit its pair
    makes that pair's result a failure with the reason (the others run); otherwise it raises.

    Raises:
        ConfigurationError: as ``MAMLEvaluator.__call__`` does (a bad hyperparameter name);
            nothing has run then.
        ValueError: without ``bad_state_fails``, a state that does not fit its pair.
    """
    family = evaluator.family(device)
    reporters = list(reporters) if reporters is not None else [None] * len(pairs)
    resumes = list(resume_from) if resume_from is not None else [None] * len(pairs)
    results: list[EvalResult | None] = [None] * len(pairs)
    groups: dict[tuple, list[_Pair]] = {}
    for i, (graph, seed) in enumerate(pairs):
        cfg = evaluator.config_for_graph(graph, meta_iterations)
        pair = _Pair(i, graph, Member(int(seed), cfg), reporters[i], None)
        try:
            pair.resume = TrainingState.of(resumes[i])
        except ValueError as exc:
            if not bad_state_fails:
                raise
            results[i] = _with_device(_failed(pair, exc, time.perf_counter(), 0), family)
            continue
        at = pair.resume.iteration if pair.resume is not None else None
        key = ("alone", i) if not family.native else (population_key(cfg), at)
        groups.setdefault(key, []).append(pair)
    for group in groups.values():
        size = 1
        if len(group) > 1:
            graphs = {structure_key(pair.graph): pair.graph for pair in group}
            peak = max(evaluator.estimate_memory(g, meta_iterations) for g in graphs.values())
            size = memory_limited_size(peak, family.device, max_members)
        for start in range(0, len(group), size):
            part = group[start : start + size]
            _run(evaluator, family, part, results, keep_state, bad_state_fails)
    return [r for r in results if r is not None]


def _failed(pair: _Pair, exc: BaseException, start: float, reached: int) -> EvalResult:
    info = {
        "seed": pair.member.seed,
        "device": None,
        "wall_time": time.perf_counter() - start,
        "traceback": "".join(traceback.format_exception(exc)),
    }
    result = failed_result(f"{type(exc).__name__}: {exc}", **info)
    result.fidelity = reached
    return result


def _run(
    evaluator: Any, family, group: list[_Pair], results, keep_state: bool, bad_state_fails: bool
) -> None:
    """One program; halved and retried when it runs out of memory, its members run alone
    when it fails for another candidate reason, and a failure of one alone is its result.
    With ``bad_state_fails``, a member whose training state does not fit it fails before the
    program starts."""
    start = time.perf_counter()
    built = []
    for pair in group:
        try:
            pair.policy = build_policy(
                pair.graph,
                family.single_observation_space,
                family.single_action_space,
                seed=pair.member.seed,
                init_std=pair.member.config.init_std,
                device=family.device,
            )
        except Exception as exc:
            if not is_candidate_error(exc):
                raise
            results[pair.index] = _with_device(_failed(pair, exc, start, 0), family)
            continue
        if pair.resume is not None and bad_state_fails:
            own = init_meta_params(pair.policy, pair.member.config)
            try:
                check_resume(own, pair.member, pair.resume, torch.Generator(family.device))
            except ValueError as exc:
                results[pair.index] = _with_device(_failed(pair, exc, start, 0), family)
                continue
        built.append(pair)
    if not built:
        return
    cohorts: dict[tuple, list[_Pair]] = {}  # one per architecture, in order of appearance
    for pair in built:
        shapes = tuple((n, tuple(p.shape)) for n, p in pair.policy.named_parameters())
        cohorts.setdefault((structure_key(pair.graph), shapes), []).append(pair)
    program = [pair for cohort in cohorts.values() for pair in cohort]
    try:
        _program(evaluator, family, list(cohorts.values()), results, keep_state)
    except Exception as exc:
        if not is_candidate_error(exc):
            raise
        if is_out_of_memory(exc) and family.device.type == "cuda":
            torch.cuda.empty_cache()
        if len(program) == 1:
            reached = program[0].member.config.meta_iterations
            results[program[0].index] = _with_device(
                _failed(program[0], exc, start, reached), family
            )
            return
        parts = [program[: len(program) // 2], program[len(program) // 2 :]]
        if not is_out_of_memory(exc):
            parts = [[pair] for pair in program]
        else:
            log.warning("a program of %d members ran out of memory; halving it", len(program))
        for part in parts:
            _run(evaluator, family, part, results, keep_state, bad_state_fails)


def _with_device(result: EvalResult, family) -> EvalResult:
    result.metrics["device"] = str(family.device)
    return result


def _program(evaluator: Any, family, groups: list[list[_Pair]], results, keep_state: bool) -> None:
    """Meta-train and test the members of a program (``groups``: its cohorts' pairs)
    together, then score each."""
    start = time.perf_counter()
    program = [pair for group in groups for pair in group]
    cohorts = [Cohort(group[0].policy, len(group)) for group in groups]
    metas = [
        stack_members([init_meta_params(pair.policy, pair.member.config) for pair in group])
        for group in groups
    ]
    members = [pair.member for pair in program]
    cfg = members[0].config
    resumes = [pair.resume for pair in program]
    compiled_before = compiled_steps()
    training = train_members(
        cohorts,
        family,
        metas,
        members,
        traced=evaluator.traced,
        compiled=evaluator.compiled,
        reporters=[pair.reporter for pair in program],
        resume_from=resumes if all(r is not None for r in resumes) else None,
        keep_state=keep_state,
    )
    out = training.errors.keys() | training.stopped.keys()  # no held-out test for these
    by_step, test_steps, test_kernel = _held_out_test(
        cohorts, family, cfg, training.meta, members, out
    )
    count = len(program)
    extra: dict[str, Any] = {}
    if count > 1:
        extra = {
            "population": count,
            "population_wall_time": time.perf_counter() - start,
            "program": {
                "members": count,
                "architectures": len(cohorts),
                "test_per_kernel": test_kernel,
            },
        }
        _log_program(family.device, cohorts, extra["program"])
    if resumes[0] is not None:
        extra["resumed_from"] = resumes[0].iteration
    if compiled_steps() > compiled_before:  # the opt-in compiled TRPO program rounded these
        extra["trpo_compiled"] = True
    for p, pair in enumerate(program):
        results[pair.index] = _member_result(
            evaluator, family, pair, training, p, by_step[p], test_steps, start, count, extra
        )


def _member_result(evaluator, family, pair, training: Training, p, by_step, test_steps, start,
                   count, extra) -> EvalResult:  # fmt: skip
    """Member ``p``'s result: scored, pruned or failed."""
    member, policy = pair.member, pair.policy
    began = time.perf_counter() - (time.perf_counter() - start) / count
    error = training.errors.get(p)
    trained = Trained(
        training.member_meta(p),
        training.post_curve[p],
        training.pre_curve[p],
        training.env_steps[p],
        test_steps,
    )
    if p in training.stopped:
        trained.meta, trained.test_steps = {}, 0
        return pruned_result(policy, family, member.config, member.seed, trained, began, **extra)
    if error is None:
        try:
            result = scored_result(
                policy, family, member.config, member.seed, trained, by_step, began,
                evaluator.keep_state_dict, **extra,
            )  # fmt: skip
            if training.states is not None:
                result.training_state = training.states[p].to_tensors()
            return result
        except Exception as exc:  # noqa: BLE001 - EvaluationError: this member's failure
            if not is_candidate_error(exc):
                raise
            error = exc
    result = _failed(pair, error, began, member.config.meta_iterations)
    result.metrics.update({"device": str(family.device), **extra})
    return result


def _held_out_test(
    cohorts, family, cfg, metas, members, out
) -> tuple[list[list[float]], int, int]:
    """Every member's mean held-out return by adaptation step, the transitions each stepped
    and the members adapted at a time (:func:`members_per_kernel`); NaN for the members
    ``out`` of training (failed or stopped), which are not tested."""
    tasks = family.test_tasks(cfg.test_tasks, cfg.test_seed)
    steps = max(cfg.test_steps, cfg.report_steps)
    transitions = cfg.test_tasks * cfg.test_episodes * family.horizon
    width = max(widest_layer(cohort.policy) for cohort in cohorts)
    size = members_per_kernel(family.device, len(members), transitions, width)
    tested = [p for p in range(len(members)) if p not in out]
    by_step: list[list[float]] = [[math.nan] * (steps + 1) for _ in members]
    env_steps = 0
    for start in range(0, len(tested), size):
        chunk = tested[start : start + size]
        part, part_metas = select_members(cohorts, metas, chunk)
        returns, _, env_steps = adapt_members(
            part, family, tasks, steps, part_metas, [members[p] for p in chunk],
            seed=cfg.test_seed,
        )  # fmt: skip
        for p, row in zip(chunk, returns.mean(2).tolist()):
            by_step[p] = row
    return by_step, env_steps, size


_logged: set[tuple] = set()


def _log_program(device: torch.device, cohorts, program: dict[str, int]) -> None:
    """Say once per device, parameter shapes and choice how a program was run."""
    shapes = tuple(tuple(p.shape) for c in cohorts for p in c.policy.parameters())
    key = (str(device), shapes, tuple(program.values()))
    if key in _logged:
        return
    _logged.add(key)
    log.info(
        "a program of %d members (%d architectures) on %s: held-out test %d at a time "
        "(last-level cache %d MiB)",
        program["members"],
        program["architectures"],
        device,
        program["test_per_kernel"],
        last_level_cache() // (1024 * 1024),
    )
