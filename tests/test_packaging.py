"""Packaging: the package list of ``pyproject.toml`` and where the shipped spaces are found.

The shipped spaces' single source is the top-level ``search_spaces/`` folder; a wheel carries
it as the package ``autometa.search_spaces``. ``.ci/check_wheel`` builds and installs a real
wheel; these tests check the configuration and the installed layout quickly.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autometa._optional import OPTIONAL_BACKENDS

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[1]


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_under_autometa_is_listed_and_the_spaces_are_mapped():
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "autometa").rglob("__init__.py")
    }
    config = _setuptools()
    assert set(config["packages"]) == on_disk | {"autometa.search_spaces"}
    assert config["package-dir"] == {"autometa.search_spaces": "search_spaces"}
    assert config["package-data"]["autometa.search_spaces"] == ["*.yaml"]
    assert sorted(p.name for p in (ROOT / "search_spaces").iterdir()) == [
        "chain_mlp.yaml", "dag_cell.yaml", "explicit_two_tower.yaml", "tiny.yaml",
    ]  # fmt: skip
    assert not (ROOT / "autometa" / "space" / "shipped").exists()


def test_an_installed_layout_finds_the_spaces_inside_the_package(tmp_path):
    site = tmp_path / "site"
    shutil.copytree(
        ROOT / "autometa", site / "autometa", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(ROOT / "search_spaces", site / "autometa" / "search_spaces")
    (tmp_path / "empty").mkdir()
    code = (
        "import autometa, autometa._shipped as s\n"
        "print(autometa.__file__)\n"
        "print(s.shipped_folder())\n"
        "print(' '.join(s.shipped_spaces()))\n"
        "print(autometa.load_space('tiny').name)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path / "empty",
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        str(site / "autometa" / "__init__.py"),
        str(site / "autometa" / "search_spaces"),
        "chain_mlp dag_cell explicit_two_tower tiny",
        "tiny",
    ]


def test_an_installation_without_the_spaces_says_so_in_one_line(tmp_path):
    site = tmp_path / "site"
    shutil.copytree(
        ROOT / "autometa", site / "autometa", ignore=shutil.ignore_patterns("__pycache__")
    )
    code = "import autometa\nautometa.load_space('tiny')\n"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == (
        "autometa.errors.SpaceValidationError: autometa.search_spaces: the shipped search spaces "
        "are missing from this installation (expected the package autometa.search_spaces or the "
        f"folder {site / 'search_spaces'}); reinstall autometa"
    )


def test_the_distribution_name_is_free_of_the_unrelated_pypi_autometa_and_every_extra_is_listed():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "autometa-nas"
    assert project["scripts"] == {"autometa": "autometa.cli:main"}
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Optional extras") : readme.index("## License")]
    listed = set(re.findall(r"^- `autometa-nas\[(\w+)\]`", section, flags=re.M))
    assert listed == set(project["optional-dependencies"])
    assert "autometa[" not in readme
    extras = {v[len("autometa-nas[") : -1] for v in OPTIONAL_BACKENDS.values() if "[" in v}
    assert extras <= set(project["optional-dependencies"])
    assert all(v.startswith("autometa-nas[") for v in OPTIONAL_BACKENDS.values() if "[" in v)
