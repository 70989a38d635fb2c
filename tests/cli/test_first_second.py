"""The first second of a new user: light commands start without torch, pipes close quietly.

``autometa --help``, ``--version`` and ``autometa spaces`` must not import torch (it takes
seconds); a reader that closes the output early (``| head -1``) ends a command without a
traceback; ``show --csv -`` writes the CSV to standard output.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autometa.cli import main
from autometa.cli._main import COMMANDS, EXIT_BROKEN_PIPE, build_parser
from autometa.space import shipped_spaces

ROOT = Path(__file__).parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
QUICK = ["--objective", "synthetic", "--workers", "0", "--no-progress"]

# Runs the command in this interpreter, then prints which heavy modules it imported.
PROBE = (
    "import runpy, sys\n"
    "sys.argv = ['autometa', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('autometa', run_name='__main__')\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    "heavy = [m for m in ('torch', 'numpy', 'networkx', 'autometa.space') if m in sys.modules]\n"
    "print('exit', code, 'heavy', heavy)\n"
)


@pytest.mark.parametrize(
    "argv", [["--help"], ["--version"], ["spaces"], ["spaces", "--help"], ["-v", "spaces"]]
)
def test_light_commands_import_no_torch(argv, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True, text=True, cwd=tmp_path, env=ENV, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "exit 0 heavy []"


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", "tiny", "--task", "navigation2d"],
        ["validate", "explicit_two_tower", "--task", "ant-dir"],
        ["sample", "dag_cell", "-n", "2"],
    ],
)
def test_checking_and_sampling_a_space_import_no_torch(argv, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True, text=True, cwd=tmp_path, env=ENV, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.splitlines()[-1]
    assert last.startswith("exit 0 heavy [") and "'torch'" not in last, last
    if argv[0] == "validate":
        assert f"OK: {argv[1]}" in proc.stdout


def test_a_space_the_evaluator_refuses_is_refused_without_torch(tmp_path):
    space = tmp_path / "bad.yaml"
    tiny = Path(shipped_spaces()["tiny"]).read_text()
    space.write_text(tiny.replace("fast_lr: 0.1", "fast_lr: {choice: [0.1, -1]}"))
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, "validate", str(space), "--task", "navigation3d"],
        capture_output=True, text=True, cwd=tmp_path, env=ENV, timeout=60,
    )  # fmt: skip
    assert proc.stderr == (
        "autometa validate: error: unknown task family 'navigation3d'. Did you mean "
        "'navigation2d'? Valid names: ant-dir, ant-vel, bandit, cartpole, halfcheetah-dir, "
        "halfcheetah-vel, navigation2d, navigation2d-sparse, pendulum, tabular-mdp\n"
    )
    assert proc.stdout.splitlines()[-1].startswith("exit 2 heavy [")
    assert "'torch'" not in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, "validate", str(space)],
        capture_output=True, text=True, cwd=tmp_path, env=ENV, timeout=60,
    )  # fmt: skip
    assert proc.stderr == (
        f"autometa validate: error: space 'tiny' ({space}): hyperparameter values "
        "MAMLEvaluator cannot use: fast_lr: expected a finite number > 0, got -1\n"
    )
    assert "'torch'" not in proc.stdout.splitlines()[-1]


def test_python_m_autometa_help_lists_every_command_without_importing_torch(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "autometa", "--help"],
        capture_output=True, text=True, cwd=tmp_path, env=ENV, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
    assert "autometa.cli._main" in imported
    assert not {m for m in imported if m == "torch" or m.startswith("torch.")}
    for name, (help_line, _) in COMMANDS.items():
        assert help_line in " ".join(proc.stdout.split()), name


def test_the_command_table_matches_each_commands_own_parser():
    parser = build_parser()  # every command's full parser
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {c.dest: c.help for c in sub._choices_actions} == {
        name: help_line for name, (help_line, _) in COMMANDS.items()
    }


def test_an_unknown_command_is_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    assert capsys.readouterr().err == (
        "autometa: error: argument COMMAND: invalid choice: 'frobnicate' (choose from "
        + ", ".join(repr(name) for name in COMMANDS)
        + ")\n"
    )


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A finished study of 6 synthetic trials."""
    db = tmp_path_factory.mktemp("first") / "study.db"
    dag = str(shipped_spaces()["dag_cell"])
    assert main(["search", dag, *QUICK, "--trials", "6", "--storage", str(db)]) == 0
    return db


def _closed_reader(*argv: str) -> subprocess.CompletedProcess:
    """Run ``autometa ARGV`` with its standard output a pipe whose reader has gone."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "autometa", *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
    )  # fmt: skip
    proc.stdout.close()  # before the command writes: its first write meets a closed pipe
    err = proc.stderr.read().decode()
    return subprocess.CompletedProcess(argv, proc.wait(timeout=120), None, err)


@pytest.mark.parametrize("argv", [["spaces"], ["show", "STUDY"], ["show", "STUDY", "--csv", "-"]])
def test_a_closed_pipe_ends_quietly(argv, study):
    proc = _closed_reader(*(str(study) if a == "STUDY" else a for a in argv))
    assert (proc.returncode, proc.stderr) == (EXIT_BROKEN_PIPE, "")


def test_show_csv_dash_writes_the_csv_to_standard_output(study, tmp_path, capsys):
    capsys.readouterr()
    assert main(["show", str(study), "--csv", "-"]) == 0
    out = capsys.readouterr().out
    path = tmp_path / "trials.csv"
    assert main(["show", str(study), "--csv", str(path)]) == 0
    assert capsys.readouterr().out == f"wrote 6 trial(s) to {path}\n"
    assert out == path.read_bytes().decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(out, newline="")))
    assert [int(r["number"]) for r in rows] == list(range(6))
    assert not (Path.cwd() / "-").exists()
