"""The CPU allocator setting: applied once per process on glibc, and refused when asked to."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from autometa.meta.allocator import tune_cpu_allocator

_PROBE = "from autometa.meta.allocator import tune_cpu_allocator as t; print(t(), t())"


def _probe(**env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc options")
def test_applied_on_glibc_and_the_answer_is_remembered():
    assert _probe(AUTOMETA_TUNE_MALLOC="1") == "True True"
    assert tune_cpu_allocator() is tune_cpu_allocator()


def test_environment_switch_leaves_malloc_alone():
    assert _probe(AUTOMETA_TUNE_MALLOC="0") == "False False"
