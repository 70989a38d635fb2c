"""Every ```python block of README.md and docs/*.md runs, so pasted code works.

A page's blocks run in order in one fresh interpreter (``python -c``, as if pasted into
``python``; later blocks use the names of earlier ones), in an empty folder. A block that cannot
run here says why in an HTML comment right before it, ``<!-- norun: needs a GPU -->``; the
reason is required. The blocks are written at a tiny size already (the prose says what a real
run uses), so the pages together run in well under two minutes on two cores.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)
NORUN = re.compile(r"<!-- norun: (.*?) -->\s*\Z", re.S)


def blocks(page: Path) -> list[tuple[int, str, str | None]]:
    """``(line, code, norun reason or None)`` of each ```python block of ``page``."""
    text = page.read_text()
    out = []
    for match in BLOCK.finditer(text):
        before = text[: match.start()].rstrip("\n")
        last = before.splitlines()[-1] if before else ""
        norun = NORUN.search(last)
        out.append((text.count("\n", 0, match.start()) + 1, match.group(1), norun and norun[1]))
    return out


RUNNABLE = [page for page in PAGES if any(reason is None for _, _, reason in blocks(page))]


def test_every_norun_mark_gives_a_reason_and_sits_on_a_python_block():
    for page in PAGES:
        text = page.read_text()
        for match in re.finditer(r"<!-- norun:(.*?)-->", text, re.S):
            assert match[1].strip(), f"{page.name}: a norun mark without a reason"
            after = text[match.end() :].lstrip("\n")
            assert after.startswith("```python\n"), f"{page.name}: {match[0]} is not on a block"


def test_the_tutorial_and_the_guide_pages_have_runnable_blocks():
    names = {page.name for page in RUNNABLE}
    assert {"tutorial.md", "experiments.md", "spaces.md", "strategies.md", "tasks.md"} <= names


@pytest.mark.parametrize("page", RUNNABLE, ids=lambda p: p.name)
def test_the_blocks_of_a_page_run_in_order(page, tmp_path):
    parts = []
    for line, code, reason in blocks(page):
        if reason is None:
            parts.append(f"# --- {page.name}, line {line}\n{code}")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CI", None)
    proc = subprocess.run(
        # ``-c``: like code pasted into ``python``, the main module has no file to re-import
        [sys.executable, "-c", "\n".join(parts)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"{page.name}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
