"""Real allocation failures are recorded with the documented ``out of memory: ...`` reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from autometa.errors import SearchFailedError
from autometa.evaluation import failed_result
from autometa.experiment import Budget, InMemoryStorage, TrialState, search
from autometa.space import shipped_spaces

DAG = str(shipped_spaces()["dag_cell"])
HUGE = 1 << 50  # bytes: more than any machine has, so the allocator refuses it at once


class _Allocating:
    """Asks torch or Python for more memory than exists, in one of three ways."""

    def __init__(self, how: str) -> None:
        self.how = how

    def __call__(self, graph, *, seed, device=None, meta_iterations=None):
        if self.how == "torch":
            torch.empty(HUGE, dtype=torch.uint8)
        if self.how == "python":
            bytearray(HUGE)
        try:  # "caught": an evaluator that reports its own failure, as MAMLEvaluator does
            torch.empty(HUGE, dtype=torch.uint8)
        except RuntimeError as exc:
            return failed_result(f"{type(exc).__name__}: {exc}")
        raise AssertionError("the allocation succeeded")


def _error(how: str) -> str:
    with pytest.raises(SearchFailedError, match="out of memory") as failed:
        search(DAG, evaluator=_Allocating(how), budget=Budget(trials=1), workers=0,
               storage=InMemoryStorage(), progress=False, final=False)  # fmt: skip
    (trial,) = failed.value.result.trials
    assert trial.state == TrialState.FAILED
    return trial.error


def test_torch_allocator_failure_is_out_of_memory():
    error = _error("torch")
    assert error.startswith("out of memory: RuntimeError: [enforce fail at ")
    assert f"can't allocate memory: you tried to allocate {HUGE} bytes" in error
    assert error.endswith(f"(at {__file__}:{_line('torch.empty(HUGE')} in __call__)")


def test_python_memory_error_is_out_of_memory():
    assert _error("python") == (
        f"out of memory: MemoryError:  (at {__file__}:{_line('bytearray(HUGE)')} in __call__)"
    )


def test_a_failure_the_evaluator_caught_is_out_of_memory_too():
    error = _error("caught")
    assert error.startswith("out of memory: RuntimeError: [enforce fail at ")
    assert error.endswith("(Cannot allocate memory)")


def _line(code: str) -> int:
    """The first line of this file holding ``code``."""
    lines = Path(__file__).read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if code in line)
