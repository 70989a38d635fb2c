"""``autometa export`` and ``autometa plot`` on small real SQLite studies."""

import csv

import pytest
import torch

import autometa
from autometa.cli._main import main
from autometa.experiment import SQLiteStorage, load_result
from autometa.experiment._best import best_of
from autometa.export import load, pareto_front, plot, read_export


@pytest.mark.parametrize("command", ["export", "plot"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: autometa {command}" in capsys.readouterr().out


def test_export_the_best_trial_load_and_adapt_it(maml_study, tmp_path, capsys):
    out = tmp_path / "best"
    assert main(["export", str(maml_study), str(out), "--no-onnx"]) == 0
    storage = SQLiteStorage(maml_study)
    best = storage.get_best_trial()
    info = best_of(storage)
    weights = storage.load_weights(best.number)
    storage.close()
    printed = capsys.readouterr().out
    assert info.trial.number == best.number
    assert printed.startswith(f"exported trial {best.number} ({info.label} {info.value:.4g}")
    model = read_export(out)
    assert model["score"] == best.score
    assert model["task_family"] == {"name": "navigation2d", "options": {}}
    assert model["adaptation"]["test_tasks"] == 2 and model["adaptation"]["fast_lr"] == 0.1
    assert model["source"]["trial"]["number"] == best.number
    assert model["source"]["study"]["strategy"] == "random"
    card = (out / "card.md").read_text()
    for line in (
        "- strategy: random",
        "- space: tiny",
        "| before adaptation | ",
        "| after 1 step",
    ):
        assert line in card
    # the three lines a user needs, from the export to an adapted policy
    policy = autometa.load(out)
    adapted, returns = autometa.adapt(policy, "navigation2d", task=0, steps=1, episodes=2)
    assert len(returns) == 2
    for name, tensor in policy.state_dict().items():
        assert torch.equal(tensor, weights[name])
        assert not torch.equal(adapted.state_dict()[name], tensor)


def test_export_from_a_search_result(maml_study, tmp_path):
    result = load_result(maml_study)
    folder = autometa.export(result, tmp_path / "r", onnx=False, torchscript=False)
    assert read_export(folder)["source"]["trial"]["number"] == result.best.number
    again = autometa.export(result.best, tmp_path / "s", storage=result.storage, onnx=False)
    alone = autometa.export(result.best, tmp_path / "t", onnx=False, torchscript=False)
    result.storage.close()
    for a, b, c in zip(
        load(folder).parameters(), load(again).parameters(), load(alone).parameters(), strict=True
    ):
        assert torch.equal(a, b) and torch.equal(a, c)


def test_export_errors_exit_2_with_a_message(study, maml_study, tmp_path, capsys):
    storage = SQLiteStorage(study)
    trials = storage.get_all_trials()
    storage.close()
    failed = next(t for t in trials if t.state.name == "FAILED")
    done = next(t for t in trials if t.state.name == "DONE")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    missing = tmp_path / "nope.db"
    cases = [
        (study, ["--trial", str(failed.number)],
         f"trial {failed.number} is FAILED, only DONE trials can be exported"),
        (study, ["--trial", "999"], f"{study}: no trial 999 (the study has trials 0..39)"),
        (study, ["--trial", str(done.number)],
         f"trial {done.number} has no stored weights (the evaluator did not return a "
         "state_dict, or the search did not keep weights)"),
        (maml_study, [], f"{tmp_path / 'full'}: folder is not empty (pass overwrite=True, or "
         "--overwrite, to replace it)"),
        (missing, [], f"{missing}: no such study database"),
    ]  # fmt: skip
    for db, extra, message in cases:
        out = tmp_path / "full" if db == maml_study else tmp_path / "out"
        assert main(["export", str(db), *extra, str(out), "--no-onnx"]) == 2
        assert capsys.readouterr().err == f"autometa export: error: {message}\n"
    assert not missing.exists() and not (tmp_path / "out").exists()
    assert main(["plot", str(missing)]) == 2
    assert capsys.readouterr().err == f"autometa plot: error: {missing}: no such study database\n"


def test_plot_writes_the_pictures_and_the_table(study, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "plots"
    assert main(["plot", str(study), "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "best_graph.dot", "best_graph.png", "pareto.png", "progress.png", "trials.csv",
    ]  # fmt: skip
    for name in ("best_graph.png", "pareto.png", "progress.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(out / "trials.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 40 and {r["state"] for r in rows} == {"DONE", "FAILED"}
    assert all(float(r["params"]) > 0 for r in rows if r["state"] == "DONE")
    assert main(["plot", str(study)]) == 0
    assert (study.with_name("study-plots") / "pareto.png").is_file()
    assert plot(study, tmp_path / "again")[0] == tmp_path / "again" / "trials.csv"


def test_pareto_front_keeps_what_nothing_beats():
    points = [(100, 0.5, 0), (50, 0.2, 1), (200, 0.9, 2), (150, 0.4, 3), (50, 0.3, 4),
              (300, 0.9, 5)]  # fmt: skip
    assert pareto_front(points) == [(50, 0.3, 4), (100, 0.5, 0), (200, 0.9, 2)]
