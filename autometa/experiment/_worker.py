"""What every executor runs for one job: call the evaluator, never let it raise.

The job and outcome types live in :mod:`autometa.experiment._jobs`; they are named here too,
for executors that import everything they run from one module.
"""

from __future__ import annotations

import math
import time
import traceback
from typing import Any, cast

from autometa.errors import ConfigurationError
from autometa.evaluation import (
    Abilities,
    EvalResult,
    Evaluator,
    PopulationEvaluator,
    SeedsEvaluator,
    abilities,
    failed_result,
)
from autometa.experiment._jobs import FINAL, TRIAL, Job, JobKey, Outcome, batch_job
from autometa.experiment._pruning import JobReporting
from autometa.experiment._seed_states import join_seed_states, split_seed_states
from autometa.graph import from_json

__all__ = [
    "OUT_OF_MEMORY",
    "FINAL",
    "TRIAL",
    "Job",
    "JobKey",
    "Outcome",
    "combine_seeds",
    "describe_exitcode",
    "out_of_memory_reason",
    "batch_job",
    "run_job",
    "run_jobs",
]


#: Lower-case fragments of the messages an allocation failure carries: CUDA's and torch's
#: ``OutOfMemoryError``, torch's CPU allocator (``can't allocate memory``), the C library's
#: ``ENOMEM`` text and Python's ``MemoryError``.
_OOM_MARKS = (
    "out of memory",
    "outofmemoryerror",
    "can't allocate memory",
    "cannot allocate memory",
    "not enough memory",
    "memoryerror",
)

#: The prefix of every out-of-memory failure reason.
OUT_OF_MEMORY = "out of memory: "


def out_of_memory_reason(error: str) -> str:
    """``error`` prefixed with ``"out of memory: "`` when it reports an allocation failure."""
    if error.startswith(OUT_OF_MEMORY) or not any(m in error.lower() for m in _OOM_MARKS):
        return error
    return OUT_OF_MEMORY + error


def _error_text(exc: BaseException) -> str:
    """A one-line reason plus the innermost frame, so a failed trial says where it broke."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, MemoryError):
        text = OUT_OF_MEMORY + text
    text = out_of_memory_reason(text)
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        text += f" (at {last.filename}:{last.lineno} in {last.name})"
    return text


def combine_seeds(seeds: list[int], results: list[EvalResult]) -> EvalResult:
    """One result for a candidate scored on several seeds: the mean score, and per seed.

    ``metrics`` keeps the first seed's metrics (curves, sizes, versions) and adds ``seeds``,
    ``seed_scores`` and ``score_sem`` (the standard error of the mean, ``std / sqrt(S)``);
    the weights are the first seed's, and the training state, when every seed kept one, is
    all of theirs (:func:`~autometa.experiment._seed_states.join_seed_states`). A candidate
    fails when any of its seeds fails, with that seed's reason.
    """
    for seed, result in zip(seeds, results):
        if not result.ok:
            reason = result.error or (
                f"score is {result.score} (not finite)"
                if result.status == "ok"
                else f"evaluation ended with status {result.status!r}"
            )
            error = f"seed {seed}: {reason}" if len(seeds) > 1 else reason
            return failed_result(error, **result.metrics)
    if len(results) == 1:
        return results[0]
    scores = [float(r.score) for r in results]
    mean = sum(scores) / len(scores)
    var = sum((x - mean) ** 2 for x in scores) / (len(scores) - 1)
    first = results[0]
    metrics = dict(first.metrics)
    metrics.update(
        score=mean,
        seeds=[int(s) for s in seeds],
        seed_scores=scores,
        score_sem=math.sqrt(var / len(scores)),
        seed_wall_times=[float(r.metrics.get("wall_time") or 0.0) for r in results],
    )
    states = [r.training_state for r in results]
    return EvalResult(
        status="ok",
        score=mean,
        objectives=dict(first.objectives),
        metrics=metrics,
        state_dict=first.state_dict,
        fidelity=first.fidelity,
        step_sizes=first.step_sizes,
        training_state=join_seed_states(states) if all(states) else None,
    )


def _state_kwargs(can: Abilities, job: Job, state: dict[str, Any] | None) -> dict[str, Any]:
    """The training-state arguments of one seed's call that the evaluator names (a wrapper
    taking ``**kwargs`` may pass them to an evaluator that does not take them)."""
    out: dict[str, Any] = {}
    if state is not None and can.resume_from:
        out["resume_from"] = state
    if job.keep_state and can.keep_training_state:
        out["keep_training_state"] = True
    return out


def _seed_states(job: Job, count: int) -> list[dict[str, Any] | None]:
    """The state each of the job's ``count`` seeds continues (None each without one)."""
    if job.resume is None:
        return [None] * count
    return list(split_seed_states(job.resume, count))


def _evaluate(
    evaluator: Evaluator,
    can: Abilities,
    job: Job,
    graph: Any,
    seeds: list[int],
    kwargs: dict[str, Any],
    reporting: JobReporting | None = None,
) -> Any:
    """Every seed's result: one batched call when the evaluator offers ``evaluate_seeds``
    (with each seed's training state when it takes them, else the seeds start from scratch).

    With ``reporting``, each seed's reporter goes with it to an evaluator that takes one
    (``reporters=`` / ``reporter=``); seeds evaluated one by one stop at the first that the
    candidate's hook stopped."""
    states = _seed_states(job, len(seeds))
    if len(seeds) > 1 and can.seeds:
        extra: dict[str, Any] = {}
        if reporting is not None and can.seeds_reporters:
            extra["reporters"] = reporting.reporters()
        if can.seeds_states and (job.resume is not None or job.keep_state):
            extra["resume_from"] = states
            extra["keep_training_state"] = job.keep_state
        batched = cast(SeedsEvaluator, evaluator)
        return list(batched.evaluate_seeds(graph, seeds=seeds, **kwargs, **extra))
    reporters = None
    if reporting is not None and can.reporter:
        reporters = reporting.reporters()
    out = []
    for k, seed in enumerate(seeds):
        extra = {"reporter": reporters[k]} if reporters is not None else {}
        extra.update(_state_kwargs(can, job, states[k]))
        out.append(evaluator(graph, seed=seed, **kwargs, **extra))
        if reporting is not None and reporting.hook.stopped:
            break
    return out


def _checked(result: Any) -> EvalResult:
    """``result`` as a recordable :class:`EvalResult`: not-finite scores and unnamed failures
    get their reason, a result of another type becomes a failure."""
    if not isinstance(result, EvalResult):
        return failed_result(f"evaluator returned {type(result).__name__}, expected EvalResult")
    if result.status == "ok" and not math.isfinite(result.score):
        return failed_result(f"score is {result.score} (not finite)", **result.metrics)
    if result.status != "ok" and not result.error:
        result.error = f"evaluation ended with status {result.status!r}"
    elif result.status != "ok":  # an evaluator that caught its own allocation failure
        result.error = out_of_memory_reason(str(result.error))
    for name in ("state_dict", "step_sizes", "training_state"):  # they travel on the CPU
        tensors = getattr(result, name)
        if tensors is not None:
            try:
                setattr(result, name, {k: v.detach().cpu() for k, v in tensors.items()})
            except AttributeError:
                setattr(result, name, None)
    return result


def _combined(seeds: list[int], results: list[Any]) -> Any:
    bad = next((r for r in results if not isinstance(r, EvalResult)), None)
    return combine_seeds(seeds, results) if bad is None and len(results) == len(seeds) else bad


def _finished(seeds: list[int], results: list[Any], reporting: JobReporting | None) -> EvalResult:
    """One candidate's recordable result: pruned when its hook stopped it, else its seeds
    combined and checked (with the values it reported)."""
    if reporting is not None and reporting.hook.stopped:
        return reporting.finish(results, None)
    result = _checked(_combined(seeds, results))
    return reporting.finish(results, result) if reporting is not None else result


def _kwargs(job: Job, device: str | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"device": device}
    if job.meta_iterations is not None:
        kwargs["meta_iterations"] = job.meta_iterations
    return kwargs


def _crashed(exc: BaseException) -> EvalResult:
    if isinstance(exc, KeyboardInterrupt):
        raise exc
    return failed_result(_error_text(exc), traceback="".join(traceback.format_exception(exc)))


def run_job(
    evaluator: Evaluator, job: Job, device: str | None, can: Abilities | None = None
) -> Outcome:
    """Evaluate one job; exceptions, NaN / infinite scores and OOM become failed results.

    The evaluator's contract is never to raise for a bad candidate, but a search must survive
    one that does, so this is the last line of defence in every executor; the traceback is
    kept in ``metrics["traceback"]``. A :class:`ConfigurationError` is no candidate's fault:
    the outcome is marked ``fatal`` and the search stops. ``can`` is the evaluator's
    :func:`~autometa.evaluation.abilities`, read here when not given.
    """
    started = time.time()
    start = time.perf_counter()
    seeds = list(job.seeds) or [job.seed]
    reporting = JobReporting(job.pruning, len(seeds)) if job.pruning is not None else None
    try:
        graph = from_json(job.graph_json)
        can = abilities(evaluator) if can is None else can
        results = _evaluate(evaluator, can, job, graph, seeds, _kwargs(job, device), reporting)
        result = _finished(seeds, results, reporting)
    except ConfigurationError as exc:
        return Outcome(job.key, failed_result(str(exc)), time.perf_counter() - start, device,
                       started=started, fatal=True)  # fmt: skip
    except BaseException as exc:  # noqa: BLE001 - a KeyboardInterrupt here is the worker's own
        result = _crashed(exc)
    return Outcome(job.key, result, time.perf_counter() - start, device, started=started)


def run_jobs(evaluator: Evaluator, job: Job, device: str | None) -> list[Outcome]:
    """Evaluate a job or a batch (:func:`batch_job`): one :class:`Outcome` per key.

    A batch's (candidate, seed) pairs go to ``evaluator.evaluate_population`` in one call
    when the evaluator has it (one at a time otherwise); each member's seeds are combined as
    :func:`run_job` does, and its wall time is its share of the batch's. Members of different
    fidelities (an ASHA promotion beside a new candidate) run as one population per fidelity,
    each at its own meta-iterations. A member that continues a stored state goes with its
    state when ``evaluate_population`` takes states (``Abilities.population_states``), and
    runs alone otherwise.
    """
    can = abilities(evaluator)
    if not job.members:
        return [run_job(evaluator, job, device, can)]
    if not can.population:
        return [run_job(evaluator, member, device, can) for member in job.members]
    fidelities = list(dict.fromkeys(m.meta_iterations for m in job.members))
    if len(fidelities) > 1:  # one program runs one length: a population per fidelity
        done = {
            o.key: o
            for f in fidelities
            for o in run_jobs(
                evaluator, batch_job([m for m in job.members if m.meta_iterations == f]), device
            )
        }
        return [done[m.key] for m in job.members]
    if any(m.resume is not None for m in job.members) and not can.population_states:
        alone = [m for m in job.members if m.resume is not None]
        together = [m for m in job.members if m.resume is None]
        done = {o.key: o for m in alone for o in [run_job(evaluator, m, device, can)]}
        if together:
            done.update((o.key, o) for o in run_jobs(evaluator, batch_job(together), device))
        return [done[m.key] for m in job.members]
    started = time.time()
    start = time.perf_counter()
    seeds = [list(m.seeds) or [m.seed] for m in job.members]
    pairs = [(from_json(m.graph_json), s) for m, ss in zip(job.members, seeds) for s in ss]
    reporting = [
        JobReporting(m.pruning, len(ss)) if m.pruning is not None else None
        for m, ss in zip(job.members, seeds)
    ]
    kwargs = _kwargs(job, device)
    if any(reporting) and can.population_reporters:
        kwargs["reporters"] = [
            r for rep, ss in zip(reporting, seeds)
            for r in (rep.reporters() if rep is not None else [None] * len(ss))
        ]  # fmt: skip
    if can.population_states and any(m.resume is not None or m.keep_state for m in job.members):
        kwargs["resume_from"] = [
            state for m, ss in zip(job.members, seeds) for state in _seed_states(m, len(ss))
        ]
        kwargs["keep_training_state"] = any(m.keep_state for m in job.members)
    try:
        flat = list(cast(PopulationEvaluator, evaluator).evaluate_population(pairs, **kwargs))
        results, at = [], 0
        for member_seeds, rep in zip(seeds, reporting):
            part = flat[at : at + len(member_seeds)]
            results.append(_finished(member_seeds, part, rep))
            at += len(member_seeds)
        for member, result in zip(job.members, results):
            if not member.keep_state:  # kept for a batch-mate's next rung, not for this one
                result.training_state = None
        fatal = False
    except ConfigurationError as exc:
        results, fatal = [failed_result(str(exc)) for _ in job.members], True
    except BaseException as exc:  # noqa: BLE001 - every member fails with the batch's reason
        crash = _crashed(exc)
        results, fatal = [failed_result(crash.error or "", **crash.metrics) for _ in seeds], False
    share = (time.perf_counter() - start) / len(job.members)
    return [
        Outcome(m.key, r, share, device, started=started, fatal=fatal)
        for m, r in zip(job.members, results)
    ]


def describe_exitcode(exitcode: int | None) -> str:
    """``"signal 9"`` for a process killed by SIGKILL, ``"exit code 1"`` otherwise."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        return f"signal {-exitcode}"
    return f"exit code {exitcode}"
