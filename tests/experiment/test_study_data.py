"""A study file is data: names are looked up in registries, nothing it names is imported."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autometa.cli import main
from autometa.errors import StorageError
from autometa.experiment import EVALUATORS, Budget, check_study, register_evaluator, search
from autometa.meta import SyntheticObjective
from autometa.space import load_space, shipped_spaces
from autometa.strategies import STRATEGIES
from autometa.tasks import TASKS

ROOT = Path(__file__).resolve().parents[2]
DAG = str(shipped_spaces()["dag_cell"])
TINY = Path(shipped_spaces()["tiny"])
CLI = [sys.executable, "-c", "import sys; from autometa.cli import main; sys.exit(main())"]

# A module that leaves a marker file when it is imported and when its objects are called.
EVIL = """
import pathlib
pathlib.Path(__file__).with_name("MARKER").write_text("imported")

def make(*args, **kwargs):
    pathlib.Path(__file__).with_name("MARKER").write_text("called")

Thing = make
"""

HINT = "Pass the module that registers it with --import MODULE_OR_FILE, or install its plugin"
ATTACKS = {
    "evaluator-target-os-system": (
        {"evaluator": {"target": "os:system", "config": {"command": "touch MARKER"}}},
        "evaluator",
        "os:system",
    ),
    "evaluator-name-subprocess": (
        {"evaluator": {"name": "subprocess:run", "config": {"args": ["touch", "MARKER"]}}},
        "evaluator",
        "subprocess:run",
    ),
    "evaluator-module-side-effect": (
        {"evaluator": {"target": "evil_marker_mod:Thing", "config": {}}},
        "evaluator",
        "evil_marker_mod:Thing",
    ),
    "strategy-builtin": (
        {"strategy": "builtins:exec", "strategy_options": {"source": "open('MARKER', 'w')"}},
        "strategy",
        "builtins:exec",
    ),
    "strategy-module": ({"strategy": "evil_marker_mod:make"}, "strategy", "evil_marker_mod:make"),
    "task-family": (
        {"evaluator": {"name": "maml", "config": {"task_family": "evil_marker_mod:make"}}},
        "task family",
        "evil_marker_mod:make",
    ),
    "stored-command-line": (
        {"settings": {"cli": {"objective": "evil_marker_mod:Thing", "strategy": "random"}}},
        "evaluator",
        "evil_marker_mod:Thing",
    ),
}
REGISTRIES = {"evaluator": EVALUATORS, "strategy": STRATEGIES, "task family": TASKS}


# The study's other tables, empty (a study without them is damaged, and refused as such).
OTHER_TABLES = """
CREATE TABLE trials (number INTEGER PRIMARY KEY, state INTEGER, key TEXT, graph TEXT,
    decision_values TEXT, seed INTEGER, candidate_id TEXT, score REAL, objectives TEXT,
    metrics TEXT, error TEXT, device TEXT, fidelity INTEGER, rung INTEGER, bracket INTEGER,
    attempts INTEGER, duplicate_of INTEGER, created REAL, started REAL, finished REAL,
    wall_time REAL);
CREATE TABLE strategy_state (id INTEGER PRIMARY KEY, state TEXT, updated REAL);
CREATE TABLE weights (number INTEGER PRIMARY KEY, format TEXT, data BLOB);
CREATE TABLE final_runs (id INTEGER PRIMARY KEY, state INTEGER, data TEXT);
CREATE TABLE sessions (id INTEGER PRIMARY KEY AUTOINCREMENT, pid INTEGER, started REAL,
    updated REAL, ended REAL, host TEXT, heartbeat REAL);
"""


def craft(path: Path, **changes) -> Path:
    """A study database written by hand with the sqlite3 module (no autometa code)."""
    data = {
        "space_name": "tiny",
        "space_hash": "0" * 64,
        "space_spec": load_space(TINY).to_dict(),
        "strategy": "random",
        "seed": 0,
        "evaluator": {"name": "synthetic", "target": "x:Y", "config": {}},
        "settings": {"budget": {"trials": 3}},
    }
    data.update(changes)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE study (id INTEGER PRIMARY KEY, space_name TEXT, space_hash TEXT, "
            "strategy TEXT, seed INTEGER, created REAL, data TEXT)"
        )
        conn.executescript(OTHER_TABLES)
        conn.execute(
            "INSERT INTO study VALUES (1, 'tiny', ?, ?, 0, 0.0, ?)",
            (data["space_hash"], data["strategy"], json.dumps(data)),
        )
    conn.close()
    return path


def command(name: str, db: Path, out: Path) -> list[str]:
    return {
        "resume": ["resume", str(db), "--workers", "0", "--no-progress"],
        "show": ["show", str(db)],
        "export": ["export", str(db), str(out)],
        "plot": ["plot", str(db), "--out", str(out)],
    }[name]


@pytest.fixture
def evil(tmp_path, monkeypatch):
    """``evil_marker_mod`` importable from the working folder; returns the marker path."""
    (tmp_path / "evil_marker_mod.py").write_text(EVIL)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "MARKER"


@pytest.mark.parametrize("attack", sorted(ATTACKS))
@pytest.mark.parametrize("name", ["resume", "show", "export", "plot"])
def test_crafted_names_are_refused_and_never_imported(name, attack, evil, tmp_path, capsys):
    changes, kind, target = ATTACKS[attack]
    db = craft(tmp_path / "crafted.db", **changes)
    out = tmp_path / "out"
    assert main(command(name, db, out)) == 2
    unknown = REGISTRIES[kind].unknown_message(target)
    assert capsys.readouterr().err == (
        f"autometa {name}: error: {db}: the study names an {unknown}. {HINT}\n"
    )
    assert not evil.exists() and "evil_marker_mod" not in sys.modules
    assert not out.exists()


def test_crafted_study_in_a_real_process(tmp_path):
    """The four commands in a fresh interpreter with the marker module on PYTHONPATH."""
    (tmp_path / "evil_marker_mod.py").write_text(EVIL)
    db = craft(tmp_path / "crafted.db", evaluator={"target": "evil_marker_mod:Thing"})
    names = ["resume", "show", "export", "plot"]
    script = (
        "import sys\n"
        "from autometa.cli import main\n"
        f"codes = [main(args) for args in {[command(n, db, tmp_path / 'out') for n in names]!r}]\n"
        "print(codes, 'evil_marker_mod' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=300)  # fmt: skip
    assert proc.stdout == "[2, 2, 2, 2] False\n", proc.stderr
    unknown = EVALUATORS.unknown_message("evil_marker_mod:Thing")
    assert proc.stderr == "".join(
        f"autometa {name}: error: {db}: the study names an {unknown}. {HINT}\n" for name in names
    )
    assert not (tmp_path / "MARKER").exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "table study, row 1, field 'data': not JSON (Expecting property name "
         "enclosed in double quotes: line 1 column 2 (char 1))"),
        ("[1, 2]", "the study record is list, not a dict"),
        (json.dumps({"space_name": "x", "space_spec": {}, "strategy": "random"}),
         "the study record lacks 'space_hash'"),
        (json.dumps({"space_name": "x", "space_hash": "0", "space_spec": {}, "strategy": 3}),
         "the study record's 'strategy' must be str, got int"),
        (json.dumps({"space_name": "x", "space_hash": "0", "space_spec": {}, "strategy": "r",
                     "imports": ["a", 1]}),
         "the study record's 'imports' must list strings"),
    ],
)  # fmt: skip
def test_a_malformed_study_record_is_one_line(data, message, tmp_path, capsys):
    db = craft(tmp_path / "bad.db")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE study SET data = ?", (data,))
    conn.close()
    assert main(["show", str(db)]) == 2
    assert capsys.readouterr().err == f"autometa show: error: {db}: {message}\n"


def test_a_study_written_before_names_refers_to_built_ins_by_class_path(tmp_path, capsys):
    legacy = {"target": "autometa.meta.synthetic:SyntheticObjective", "config": {"noise": 0.0}}
    db = craft(tmp_path / "old.db", evaluator=legacy)
    assert main(["show", str(db)]) == 0
    assert "  evaluator 'synthetic' (autometa.meta.synthetic:SyntheticObjective)" in (
        capsys.readouterr().out
    )


SHIFTED = '''
"""A user evaluator registered by name, for ``--import``."""
from autometa.experiment import register_evaluator
from autometa.meta import SyntheticObjective


@register_evaluator("shifted")
class ShiftedObjective(SyntheticObjective):
    """The synthetic score plus 1000, so its trials are recognisable."""

    def __call__(self, graph, **kwargs):
        result = super().__call__(graph, **kwargs)
        result.score += 1000.0
        return result
'''


def test_a_user_evaluator_from_a_file_searches_and_resumes(tmp_path):
    plugin = tmp_path / "user code" / "shifted_objective.py"
    plugin.parent.mkdir()
    plugin.write_text(textwrap.dedent(SHIFTED))
    db = tmp_path / "user.db"
    imported = ["--import", str(plugin)]
    first = subprocess.run(
        [*CLI, "search", DAG, *imported, "--objective", "shifted", "--trials", "2", "--workers",
         "1", "--storage", str(db), "--no-progress"],
        capture_output=True, text=True, cwd=tmp_path, timeout=180,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr

    # without the --import the study names an unknown evaluator; with it, the search resumes
    resume = ["resume", str(db), "--trials", "3", "--workers", "0", "--no-progress"]
    script = (
        "import sys\n"
        "from autometa.cli import main\n"
        f"print(main({resume!r}), main({[*resume, *imported]!r}))\n"
    )
    resumed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             cwd=tmp_path, timeout=180)  # fmt: skip
    assert resumed.stdout.splitlines()[-1] == "2 0"
    assert resumed.stderr == (
        f"autometa resume: error: {db}: the study names an unknown evaluator 'shifted'. "
        f"Valid names: maml, synthetic. The study was created with --import '{plugin}': "
        "pass the same\n"
    )
    assert "  trials: 3 done\n" in resumed.stdout
    with sqlite3.connect(db) as conn:
        scores = [row[0] for row in conn.execute("SELECT score FROM trials")]
        study = json.loads(conn.execute("SELECT data FROM study").fetchone()[0])
    conn.close()
    assert len(scores) == 3 and min(scores) > 900
    assert study["evaluator"]["name"] == "shifted" and study["imports"] == [str(plugin)]


class _Scaled(SyntheticObjective):
    """A registered user evaluator defined in this test module."""


@pytest.fixture
def scaled():
    register_evaluator("scaled-for-test", _Scaled)
    yield
    EVALUATORS.unregister("scaled-for-test")


def test_the_python_api_records_the_registered_name_and_its_module(scaled, tmp_path):
    result = search(DAG, evaluator=_Scaled(), budget=Budget(trials=1), storage=tmp_path / "p.db",
                    workers=0, progress=False)  # fmt: skip
    study = result.study
    result.storage.close()
    assert study.evaluator["name"] == "scaled-for-test" and study.unregistered == []
    assert study.imports == [__name__]
    check_study(study, "p.db", resume=True)
    EVALUATORS.unregister("scaled-for-test")
    try:
        with pytest.raises(StorageError) as info:
            check_study(study, "p.db")
        assert str(info.value) == (
            "p.db: the study names an unknown evaluator 'scaled-for-test'. Valid names: maml, "
            f"synthetic. The study was created with --import {__name__}: pass the same"
        )
    finally:
        register_evaluator("scaled-for-test", _Scaled)


def test_register_evaluator_needs_from_config():
    class Plain:
        def __call__(self, graph, **kwargs): ...

    with pytest.raises(TypeError) as info:
        register_evaluator("plain-for-test", Plain)
    assert str(info.value) == (
        "evaluator 'plain-for-test': 'test_register_evaluator_needs_from_config.<locals>.Plain' "
        "has no from_config(config) classmethod, so a study could not rebuild it"
    )
    assert "plain-for-test" not in EVALUATORS


def test_installed_plugins_register_through_the_entry_point_group(tmp_path):
    (tmp_path / "autometa_demo_plugin.py").write_text(
        "from autometa.experiment import register_evaluator\n"
        "from autometa.meta import SyntheticObjective\n"
        "register_evaluator('demo-plugin', SyntheticObjective)\n"
    )
    info = tmp_path / "autometa_demo_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: autometa-demo-plugin\n"
                                   "Version: 0.1\n")  # fmt: skip
    (info / "entry_points.txt").write_text(
        "[autometa.plugins]\ndemo = autometa_demo_plugin\nbroken = no_such_module_for_test\n"
    )
    code = "from autometa.experiment import EVALUATORS; print('demo-plugin' in EVALUATORS)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "True\n"
    assert proc.stderr == (
        "autometa plugin 'broken' (no_such_module_for_test) could not be loaded: "
        "No module named 'no_such_module_for_test'\n"
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module_for_test", "--import no_such_module_for_test: no module named "
         "'no_such_module_for_test'"),
        ("missing/file.py", "--import missing/file.py: no such Python file"),
    ],
)  # fmt: skip
def test_a_bad_import_is_one_line(spec, message, tmp_path, capsys):
    assert main(["show", str(tmp_path / "x.db"), "--import", spec]) == 2
    assert capsys.readouterr().err == f"autometa show: error: {message}\n"


def test_an_import_that_raises_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "raising_for_test.py").write_text("raise RuntimeError('no GPU here\\nat all')\n")
    assert main(["show", "x.db", "--import", "raising_for_test.py"]) == 2
    assert capsys.readouterr().err == (
        "autometa show: error: --import raising_for_test.py: importing it raised "
        "RuntimeError: no GPU here\n"
    )


def test_search_refuses_an_objective_that_is_not_registered(tmp_path, capsys):
    db = tmp_path / "x.db"
    args = ["search", DAG, "--objective", "synthetc", "--workers", "0", "--storage", str(db)]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        "autometa search: error: unknown evaluator 'synthetc'. Did you mean 'synthetic'? "
        "Valid names: maml, synthetic\n"
    )
    assert not db.exists()
