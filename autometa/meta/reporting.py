"""Intermediate values: how an evaluation reports its learning curve while it runs.

An evaluation that takes a ``reporter=`` (``MAMLEvaluator`` does, and a custom evaluator may)
calls ``reporter.report(step, value)`` every few steps with a value to maximise and then asks
``reporter.should_stop()``; when that says True, the evaluation ends early and returns what it
has (the search records the trial ``PRUNED``, see ``docs/pruning.md``). The search passes a
reporter only when a pruner is set, so an evaluation without one runs exactly as before.

MAML reports the mean post-adaptation return of the meta-iteration's training tasks (already
read every iteration, so reporting costs nothing) every :func:`report_interval` iterations;
the step is the number of meta-iterations done. The :class:`Reporter` protocol is part of the
evaluator contract (:mod:`autometa.evaluation`) and imported from there.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from autometa.evaluation import Reporter

__all__ = ["is_report_step", "report_interval", "report_members"]


def report_interval(total_steps: int) -> int:
    """Steps between two reports: ``max(1, total_steps // 10)``, about ten reports a run.

    Ten points are enough to cut a poor curve early while keeping the decisions few (each is
    a comparison against the finished trials' values at the same step).
    """
    return max(1, int(total_steps) // 10)


def is_report_step(step: int, total_steps: int) -> bool:
    """Whether an evaluation of ``total_steps`` reports after ``step`` steps (counted from 1)."""
    return step > 0 and step % report_interval(total_steps) == 0


def report_members(
    reporters: Sequence[Reporter | None],
    values: Sequence[float],
    out: Collection[int],
    step: int,
    total_steps: int,
) -> dict[int, int]:
    """Report ``values[p]`` to every member ``p`` of a population not ``out`` (failed or
    stopped), then ask each whether to stop (not after the last step: nothing is left to
    save). Every member reports before any is asked, so reporters that decide together (the
    seeds of one candidate) see all their values. Returns the members that stop, with
    ``step``."""
    live = [p for p, r in enumerate(reporters) if r is not None and p not in out]
    for p in live:
        reporters[p].report(step, float(values[p]))
    if step >= total_steps:
        return {}
    return {p: step for p in live if reporters[p].should_stop()}
