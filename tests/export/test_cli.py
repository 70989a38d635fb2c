"""``autometa export`` and ``autometa plot`` on a small real SQLite study."""

import csv
import re

import pytest
import torch

from autometa.cli._main import main
from autometa.experiment.storage import SQLiteStorage
from autometa.export import load, pareto_front, plot, read_export


@pytest.mark.parametrize("command", ["export", "plot"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: autometa {command}" in capsys.readouterr().out


def test_export_the_best_trial_and_load_it(study, tmp_path, capsys):
    out = tmp_path / "best"
    code = main(["export", str(study), str(out), "--task-family", "navigation2d", "--no-onnx"])
    assert code == 0
    storage = SQLiteStorage(study)
    best = storage.get_best_trial()
    printed = capsys.readouterr().out
    assert printed.startswith(f"exported trial {best.number} (score {best.score:.6g}, ")
    model = read_export(out)
    assert model["score"] == best.score
    assert model["source"]["trial"]["number"] == best.number
    assert model["source"]["study"]["strategy"] == "random"
    assert model["source"]["study"]["space_name"] == "dag-cell"
    card = (out / "card.md").read_text()
    assert "- strategy: random" in card and "- space: dag-cell" in card
    policy = load(out)
    weights = storage.load_weights(best.number)
    storage.close()
    for name, tensor in policy.state_dict().items():
        assert torch.equal(tensor, weights[name])


def test_export_a_chosen_trial_and_the_errors(study, tmp_path, capsys):
    storage = SQLiteStorage(study)
    trials = storage.get_all_trials()
    storage.close()
    done = next(t for t in trials if t.state.name == "DONE")
    failed = next(t for t in trials if t.state.name == "FAILED")
    args = ["--task-family", "navigation2d", "--no-onnx", "--no-torchscript"]
    assert (
        main(["export", str(study), "--trial", str(done.number), str(tmp_path / "a"), *args]) == 0
    )
    assert read_export(tmp_path / "a")["source"]["trial"]["number"] == done.number
    capsys.readouterr()
    cases = [
        (
            ["--trial", str(failed.number)],
            f"trial {failed.number} is FAILED, only DONE trials can be exported",
        ),
        (["--trial", "999"], f"{study}: no trial 999 (the study has trials 0..{len(trials) - 1})"),
        (
            [],
            f"{tmp_path / 'a'}: folder is not empty (pass overwrite=True, or --overwrite, to "
            "replace it)",
        ),
    ]
    for extra, message in cases:
        code = main(["export", str(study), *extra, str(tmp_path / "a"), *args])
        assert code == 2
        assert capsys.readouterr().err == f"autometa export: error: {message}\n"
    missing = tmp_path / "nope.db"
    assert main(["export", str(missing), str(tmp_path / "b")]) == 2
    assert (
        capsys.readouterr().err == f"autometa export: error: {missing}: no such study database\n"
    )
    assert not missing.exists()
    assert main(["plot", str(missing)]) == 2


def test_without_a_recorded_family_the_spaces_are_asked_for(study, tmp_path, capsys):
    assert main(["export", str(study), str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(r"autometa export: error: the policy's spaces are unknown: .*\n", err)


def test_plot_writes_the_pictures_and_the_table(study, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "plots"
    assert main(["plot", str(study), "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "best_graph.dot",
        "best_graph.png",
        "pareto.png",
        "progress.png",
        "trials.csv",
    ]
    for name in ("best_graph.png", "pareto.png", "progress.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader(open(out / "trials.csv")))
    assert len(rows) == 40 and {r["state"] for r in rows} == {"DONE", "FAILED"}
    default = study.with_name("study-plots")
    assert main(["plot", str(study)]) == 0 and (default / "pareto.png").is_file()
    assert plot(study, tmp_path / "again")[0] == tmp_path / "again" / "trials.csv"


def test_pareto_front_keeps_what_nothing_beats():
    points = [
        (100, 0.5, 0),
        (50, 0.2, 1),
        (200, 0.9, 2),
        (150, 0.4, 3),
        (50, 0.3, 4),
        (300, 0.9, 5),
    ]
    assert pareto_front(points) == [(50, 0.3, 4), (100, 0.5, 0), (200, 0.9, 2)]
