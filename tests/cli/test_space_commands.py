"""``autometa validate`` and ``autometa sample`` run as a user runs them."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autometa.cli import main
from autometa.space import load_space, shipped_spaces

ROOT = Path(__file__).parents[2]


def run(*args, cwd=ROOT):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout, from any folder
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from autometa.cli import main; sys.exit(main())",
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def test_validate_a_shipped_space_by_name_in_a_subprocess(tmp_path):
    proc = run("validate", "dag_cell", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "space 'dag-cell': dag" in proc.stdout
    assert f"source: {shipped_spaces()['dag_cell']}" in proc.stdout
    assert "OK: dag_cell" in proc.stdout


def test_validate_a_space_file_by_path(tmp_path, capsys):
    path = tmp_path / "mine.yaml"
    shutil.copy(shipped_spaces()["tiny"], path)
    assert main(["validate", str(path), "--samples", "2"]) == 0
    assert f"OK: {path}" in capsys.readouterr().out


def test_an_unknown_space_name_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "dag_cel"]) == 2
    assert capsys.readouterr() == (
        "",
        "autometa validate: error: dag_cel: not a file and not a shipped search space. "
        "Did you mean 'dag_cell'? "
        "Shipped spaces: chain_mlp, dag_cell, explicit_two_tower, tiny\n",
    )


def test_spaces_lists_every_shipped_space_with_its_description(capsys):
    assert main(["spaces"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(shipped_spaces())
    assert lines[-1] == (
        "tiny                MLP policies of 1-2 layers of 16 or 32 units with tanh or relu."
    )
    for line, name in zip(lines, shipped_spaces()):
        assert line.split(maxsplit=1)[1] == load_space(name).description


@pytest.mark.parametrize("command", ["validate", "sample", "search"])
def test_help_of_a_space_argument_lists_the_shipped_names(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "a shipped space's name (one of: " + ", ".join(shipped_spaces()) in text


def test_validate_a_malformed_space_exits_2_without_traceback(tmp_path):
    bad = tmp_path / "dag.yaml"
    bad.write_text(
        "name: bad\ngraph:\n  kind: dag\n  nodes: {int: [2, 3]}\n"
        "  node:\n    op: linear\n    width: {choice: big}\n"
    )
    proc = run("validate", str(bad))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "graph.node.width" in proc.stderr and "dag.yaml" in proc.stderr


def test_missing_file_and_bad_command_exit_2(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


def test_sample_writes_every_format(tmp_path, capsys):
    assert main(["sample", "tiny", "-n", "2", "--seed", "5", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("# candidate seed=") == 2
    for seed in (5, 6):
        folder = tmp_path / f"candidate-{seed}"
        graph = json.loads((folder / "architecture.json").read_text())
        assert {n["id"] for n in graph["nodes"]} >= {"input", "output"}
        assert (folder / "architecture.graphml").read_text().startswith("<?xml")
        assert (folder / "architecture.dot").read_text().startswith("digraph")
        assert (folder / "architecture.png").read_bytes()[:4] == b"\x89PNG"


def test_sample_json_lines_are_seeded(capsys):
    main(["sample", "chain_mlp", "-n", "2", "--json"])
    first = capsys.readouterr().out.splitlines()
    main(["sample", "chain_mlp", "-n", "2", "--json"])
    assert capsys.readouterr().out.splitlines() == first
    assert [json.loads(line)["seed"] for line in first] == [0, 1]


TYPO = """name: typo
graph:
  kind: chain
  layers: {int: [1, 2]}
  layer: {width: 16, activation: tanh}
hyperparameters:
  fast_lrr: 0.1
"""


def cli(*args):
    """The console script's entry point in a fresh interpreter, as a user runs it."""
    code = "import sys; from autometa.cli import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


def test_validate_checks_hyperparameters_against_the_tasks_evaluator(tmp_path):
    from autometa._maml_config import settable_fields

    space = tmp_path / "typo.yaml"
    space.write_text(TYPO)
    proc = cli("validate", str(space), "--task", "navigation2d")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (
        f"autometa validate: error: space 'typo' ({space}): hyperparameter 'fast_lrr' is not a "
        "setting of MAMLEvaluator. Did you mean 'fast_lr'? Valid names: "
        f"{', '.join(settable_fields())}\n"
    )


def test_validate_refuses_an_unknown_task_and_names_the_checking_evaluator(tmp_path, capsys):
    from autometa.tasks import TASKS

    space = tmp_path / "ok.yaml"
    space.write_text(TYPO.replace("fast_lrr", "fast_lr"))
    assert main(["validate", str(space), "--task", "navigation2"]) == 2
    assert capsys.readouterr().err == (
        "autometa validate: error: unknown task family 'navigation2'. Did you mean "
        f"'navigation2d'? Valid names: {', '.join(TASKS.names())}\n"
    )
    assert main(["validate", str(space), "--task", "halfcheetah-vel", "--samples", "2"]) == 0
    out = capsys.readouterr().out
    assert out.endswith(
        f"hyperparameters are settings of MAMLEvaluator('halfcheetah-vel')\nOK: {space}\n"
    )
