"""What every executor runs for one trial: call the evaluator, never let it raise."""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass
from typing import Any

from autometa.graph import from_json
from autometa.meta.result import EvalResult, failed_result

__all__ = ["Job", "Outcome", "run_job", "describe_exitcode"]


@dataclass(frozen=True)
class Job:
    """One evaluation to run: plain data, cheap to send to another process or machine.

    Attributes:
        number: the trial number.
        graph_json: the candidate as node-link JSON.
        seed: the evaluation seed.
        meta_iterations: the fidelity to evaluate at; None lets the evaluator use its default.
    """

    number: int
    graph_json: dict[str, Any]
    seed: int
    meta_iterations: int | None = None


@dataclass
class Outcome:
    """What came back for a :class:`Job`.

    Attributes:
        number: the trial number.
        result: the evaluation result (failed ones carry the reason in ``error``).
        wall_time: seconds the evaluation took (as measured where it ran).
        device: where it ran.
        lost: True when the worker died before answering; the search may retry the trial.
        started: wall-clock time (seconds since the epoch) when the evaluation started.
    """

    number: int
    result: EvalResult
    wall_time: float = 0.0
    device: str | None = None
    lost: bool = False
    started: float | None = None


def _error_text(exc: BaseException) -> str:
    """A one-line reason plus the innermost frame, so a failed trial says where it broke."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        text = f"out of memory: {text}"
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        text += f" (at {last.filename}:{last.lineno} in {last.name})"
    return text


def run_job(evaluator: Any, job: Job, device: str | None) -> Outcome:
    """Evaluate one job; exceptions, NaN / infinite scores and OOM become failed results.

    The evaluator's contract is never to raise for a bad candidate, but a search must survive
    one that does, so this is the last line of defence in every executor.
    """
    started = time.time()
    start = time.perf_counter()
    kwargs: dict[str, Any] = {"seed": job.seed, "device": device}
    if job.meta_iterations is not None:
        kwargs["meta_iterations"] = job.meta_iterations
    try:
        result = evaluator(from_json(job.graph_json), **kwargs)
        if not isinstance(result, EvalResult):
            result = failed_result(
                f"evaluator returned {type(result).__name__}, expected EvalResult"
            )
        elif result.status == "ok" and not math.isfinite(result.score):
            result = failed_result(f"score is {result.score} (not finite)", **result.metrics)
        elif result.status != "ok" and not result.error:
            result.error = f"evaluation ended with status {result.status!r}"
    except BaseException as exc:  # noqa: BLE001 - a KeyboardInterrupt here is the worker's own
        if isinstance(exc, KeyboardInterrupt):
            raise
        result = failed_result(_error_text(exc))
    if result.state_dict is not None:
        try:
            result.state_dict = {k: v.detach().cpu() for k, v in result.state_dict.items()}
        except AttributeError:
            result.state_dict = None
    return Outcome(job.number, result, time.perf_counter() - start, device, started=started)


def describe_exitcode(exitcode: int | None) -> str:
    """``"signal 9"`` for a process killed by SIGKILL, ``"exit code 1"`` otherwise."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        return f"signal {-exitcode}"
    return f"exit code {exitcode}"
