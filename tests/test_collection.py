"""The suite collects every test folder (pytest skips some folder names by default)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent


def test_every_folder_with_tests_is_collected():
    folders = {p.parent for p in TESTS.rglob("test_*.py")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-n",
            "0",
            "-p",
            "no:cacheprovider",
        ],
        cwd=TESTS.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    collected = {
        (TESTS.parent / line.split("::")[0]).parent
        for line in proc.stdout.splitlines()
        if "::" in line
    }
    assert folders <= collected, sorted(str(f.relative_to(TESTS)) for f in folders - collected)
    assert not any(
        part == "build"
        for f in TESTS.parent.joinpath("autometa").rglob("*")
        if f.is_dir()
        for part in f.parts[-1:]
    )
