"""``overwrite`` replaces only an earlier export: real folders, the CLI and the Python call."""

import re
import shutil
from pathlib import Path

import gymnasium as gym
import pytest
from helpers import chain_graph

from autometa.cli import main
from autometa.errors import ExportError
from autometa.export import export, load, read_export
from autometa.policy import build_policy

OBS = gym.spaces.Box(-1.0, 1.0, (3,))
BOX = gym.spaces.Box(-2.0, 2.0, (2,))
FAST = {"observation_space": OBS, "action_space": BOX, "torchscript": False, "onnx": False,
        "drawing": False}  # fmt: skip
ONLY = "overwrite replaces only an earlier autometa export, so move this folder away or choose "
ONLY += "another one"


def _source(widths=(4,)):
    graph = chain_graph(widths)
    return graph, build_policy(graph, OBS, BOX, seed=0).state_dict()


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _refused(out, message, **options):
    with pytest.raises(ExportError, match=f"^{re.escape(message)}$"):
        export(_source(), out, overwrite=True, **FAST, **options)


def test_an_earlier_export_is_replaced(tmp_path):
    out = tmp_path / "model"
    export(_source((4,)), out, **FAST)
    assert export(_source((6, 3)), out, overwrite=True, **FAST) == out
    assert load(out).num_params == build_policy(chain_graph((6, 3)), OBS, BOX).num_params
    assert read_export(out)["graph"]["nodes"][1]["width"] == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # nothing left aside
    (tmp_path / "link").symlink_to(out)
    _refused(tmp_path / "link", f"{tmp_path / 'link'}: is a symbolic link; give the folder itself")


def test_an_empty_folder_is_used(tmp_path):
    (tmp_path / "empty").mkdir()
    export(_source(), tmp_path / "empty", **FAST)
    assert (tmp_path / "empty" / "model.json").is_file()


def test_a_folder_with_other_files_is_kept(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    _refused(out, f"{out}: is not an autometa export (no model.json); {ONLY}")
    export(_source(), tmp_path / "model", **FAST)
    (tmp_path / "model" / "notes.txt").write_text("my notes")
    (tmp_path / "model" / "runs").mkdir()
    message = (
        f"{tmp_path / 'model'}: holds files the earlier export did not write (notes.txt, runs)"
    )
    _refused(tmp_path / "model", f"{message}; {ONLY}")
    assert (tmp_path / "model" / "notes.txt").read_text() == "my notes"
    assert (out / "notes.txt").read_text() == "my notes"


def test_a_changed_or_foreign_export_is_kept(tmp_path):
    out = tmp_path / "model"
    export(_source(), out, **FAST)
    with open(out / "card.md", "a") as handle:
        handle.write("my edit\n")
    _refused(out, f"{out}: card.md was changed after the earlier export; {ONLY}")
    assert (out / "card.md").read_text().endswith("my edit\n")
    (out / "model.json").write_text('{"format": "something else"}')
    before = _snapshot(out)
    message = (
        f"{out}: is not an autometa export (model.json does not check: format must be "
        f"'autometa.export/1', got 'something else'); {ONLY}"
    )
    _refused(out, message)
    assert _snapshot(out) == before


def test_the_current_folder_and_its_parents_are_never_replaced(tmp_path, monkeypatch):
    here = tmp_path / "project" / "work"
    here.mkdir(parents=True)
    monkeypatch.chdir(here)
    _refused(Path("."), ".: is the current folder; export to a new folder (e.g. export)")
    _refused(here, f"{here}: is the current folder; export to a new folder (e.g. {here}/export)")
    _refused(Path(".."), "..: is a parent of the current folder; export to a new folder")
    assert here.is_dir() and sorted(tmp_path.iterdir()) == [tmp_path / "project"]
    export(_source(), "export", **FAST)
    assert (here / "export" / "model.json").is_file()


def test_the_folder_of_the_study_is_never_replaced(maml_study, tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    db = shutil.copy(maml_study, folder / "study.db")
    message = f"{folder}: holds the study database {db}; export to another folder"
    assert main(["export", str(db), str(folder), "--overwrite", "--no-onnx"]) == 2
    assert main(["export", str(db), str(tmp_path), "--overwrite", "--no-onnx"]) == 2
    assert db.is_file()
    with pytest.raises(ExportError, match=f"^{re.escape(message)}$"):
        export(_source(), folder, overwrite=True, storage=db, **FAST)


def test_cli_export_to_dot_with_overwrite_deletes_nothing(
    maml_study, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    shutil.copy(maml_study, tmp_path / "study.db")
    (tmp_path / "notes.txt").write_text("keep me")
    assert main(["export", "study.db", ".", "--overwrite", "--no-onnx"]) == 2
    assert capsys.readouterr().err == (
        "autometa export: error: .: is the current folder; export to a new folder (e.g. export)\n"
    )
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "study.db"]
    assert main(["export", "study.db", "best", "--no-onnx"]) == 0
    assert main(["export", "study.db", "best", "--no-onnx", "--overwrite"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best", "notes.txt", "study.db"]
    (tmp_path / "best" / "stray").write_text("x")
    assert main(["export", "study.db", "best", "--no-onnx", "--overwrite"]) == 2
    assert capsys.readouterr().err.endswith(
        f"error: best: holds files the earlier export did not write (stray); {ONLY}\n"
    )
    assert (tmp_path / "best" / "stray").is_file() and (tmp_path / "best" / "model.json").is_file()
