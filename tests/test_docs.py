"""The user guide builds with mkdocs in strict mode (no broken nav entries, links or docstrings).

The API reference is generated from the docstrings by mkdocstrings, so a docstring that the
strict build rejects fails here. The tutorial's family is checked against the example's.
"""

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import autometa

ROOT = Path(__file__).parents[1]
PACKAGES = [
    "space",
    "graph",
    "ops",
    "policy",
    "tasks",
    "evaluation",
    "meta",
    "strategies",
    "experiment",
    "export",
]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    out = tmp_path_factory.mktemp("docs") / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return out


def test_docs_build_strict(site):
    assert (site / "spaces" / "index.html").exists()
    assert (site / "references" / "index.html").exists()
    assert (site / "tutorial" / "index.html").exists()


@pytest.mark.parametrize("package", PACKAGES)
def test_api_page_documents_every_public_name(site, package):
    module = importlib.import_module(f"autometa.{package}")
    html = (site / "api" / package / "index.html").read_text()
    documented = set(re.findall(rf'id="autometa\.{package}\.(?:\w+\.)*?(\w+)"', html))
    missing = [name for name in module.__all__ if name not in documented]
    assert missing == []


def test_api_overview_lists_the_top_level_names(site):
    html = (site / "api" / "index.html").read_text()
    for name in autometa.__all__:
        if name != "__version__":
            assert f"<code>{name}</code>" in html, name


def test_the_tutorial_defines_the_family_as_the_example_does():
    """The environment and the family's registration are the example's own code; the rest
    of the tutorial is a top-level sequence that tests/test_docs_run.py runs."""
    page = (ROOT / "docs" / "tutorial.md").read_text()
    example = (ROOT / "examples" / "custom_task_family.py").read_text()
    blocks = re.findall(r"```python\n(.*?)\n```", page, flags=re.S)
    shared = [b for b in blocks if b.startswith(("class PointReacher1D", "def sample_tasks"))]
    assert len(shared) == 2
    for block in shared:
        assert block in example, block[:200]
    for block in blocks:  # pasteable: nothing indented at the top level of a block
        assert not block.startswith((" ", "\t")), block[:200]
    for step in range(1, 8):
        assert f"## {step}. " in page


def test_the_docs_cite_nothing_outside_the_repository():
    texts = [
        p for d in ("autometa", "docs", "examples", "benchmarks") for p in (ROOT / d).rglob("*")
    ]
    texts += [ROOT / "README.md", ROOT / "CONTRIBUTING.md"]
    pattern = re.compile(r"shared/|the issue|maml-rl\.md")
    hits = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in texts
        if p.suffix in {".py", ".md", ".yaml", ".yml"}
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert hits == []
