"""``autometa validate`` and ``autometa sample`` run as a user runs them."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from autometa.cli import main

ROOT = Path(__file__).parents[2]


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "autometa.cli._main", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_validate_a_shipped_space_in_a_subprocess():
    proc = run("validate", "search_spaces/dag_cell.yaml")
    assert proc.returncode == 0, proc.stderr
    assert "space 'dag-cell': dag" in proc.stdout
    assert "OK: search_spaces/dag_cell.yaml" in proc.stdout


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
    assert (
        main(
            ["sample", "search_spaces/tiny.yaml", "-n", "2", "--seed", "5", "--out", str(tmp_path)]
        )
        == 0
    )
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
    main(["sample", "search_spaces/chain_mlp.yaml", "-n", "2", "--json"])
    first = capsys.readouterr().out.splitlines()
    main(["sample", "search_spaces/chain_mlp.yaml", "-n", "2", "--json"])
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
    from autometa.meta.config import settable_fields

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
