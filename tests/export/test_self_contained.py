"""An export folder is self-contained: paths out of it, changed files and file modes."""

import json
import logging
import os
import re
import shutil
import stat

import gymnasium as gym
import pytest
import torch
from helpers import chain_graph

from autometa.errors import ExportError
from autometa.export import export, load
from autometa.export._files import file_sha256, seal
from autometa.meta import EvalResult
from autometa.policy import build_policy

OBS = gym.spaces.Box(-1.0, 1.0, (3,))
BOX = gym.spaces.Box(-2.0, 2.0, (2,))
FAST = {"observation_space": OBS, "action_space": BOX, "torchscript": False, "onnx": False,
        "drawing": False}  # fmt: skip
INSIDE = "expected the name of a file inside the export folder (no folder, '..' or absolute path)"


@pytest.fixture
def folder(tmp_path):
    graph = chain_graph((4,))
    policy = build_policy(graph, OBS, BOX, seed=0)
    return export((graph, policy.state_dict()), tmp_path / "export", **FAST)


def _edit(folder, change, *, reseal=True):
    """Change ``model.json`` as a hand edit would, resealing it so only the change is checked."""
    path = folder / "model.json"
    model = json.loads(path.read_text())
    change(model)
    path.write_text(json.dumps(seal(model, folder) if reseal else model))


def _refused(folder, message):
    with pytest.raises(ExportError, match=f"^{re.escape(message)}$"):
        load(folder)


def _name_weights(name):
    def change(model):
        model["weights"]["file"] = name

    return change


def test_an_absolute_weights_path_is_refused(folder, tmp_path):
    outside = shutil.copy(folder / "model.safetensors", tmp_path / "elsewhere.safetensors")
    _edit(folder, _name_weights(str(outside)))
    _refused(folder, f"{folder / 'model.json'}: 'weights.file' names '{outside}'; {INSIDE}")


def test_a_parent_weights_path_is_refused(folder, tmp_path):
    shutil.copy(folder / "model.safetensors", tmp_path / "elsewhere.safetensors")
    _edit(folder, _name_weights("../elsewhere.safetensors"))
    message = f"{folder / 'model.json'}: 'weights.file' names '../elsewhere.safetensors'; {INSIDE}"
    _refused(folder, message)


def test_a_manifest_entry_outside_the_folder_is_refused(folder, tmp_path):
    (tmp_path / "notes.txt").write_text("outside")

    def change(model):
        model["files"]["../notes.txt"] = file_sha256(tmp_path / "notes.txt")

    _edit(folder, change)
    _refused(folder, f"{folder / 'model.json'}: 'files' names '../notes.txt'; {INSIDE}")


def test_a_symbolic_link_out_of_the_folder_is_refused(folder, tmp_path):
    weights = folder / "model.safetensors"
    outside = shutil.move(weights, tmp_path / "elsewhere.safetensors")
    weights.symlink_to(outside)  # the same bytes, so the recorded sha256 still matches
    assert (
        file_sha256(weights)
        == json.loads((folder / "model.json").read_text())["files"]["model.safetensors"]
    )
    message = (
        f"{weights}: is a symbolic link to {outside}, outside the export folder (named by "
        "'files' in model.json); expected a file inside the folder"
    )
    _refused(folder, message)


def test_a_link_inside_the_folder_is_followed(folder):
    weights = folder / "model.safetensors"
    shutil.move(weights, folder / "weights.bin")
    weights.symlink_to("weights.bin")
    _edit(folder, lambda model: model["files"].update({"weights.bin": None}))
    assert load(folder).num_params == build_policy(chain_graph((4,)), OBS, BOX).num_params


def test_weights_not_in_the_manifest_are_refused(folder):
    shutil.copy(folder / "model.safetensors", folder / "other.safetensors")
    _edit(folder, _name_weights("other.safetensors"))
    message = (
        f"{folder / 'other.safetensors'}: named by 'weights.file' in model.json but not listed "
        "in its 'files', so its sha256 cannot be checked"
    )
    _refused(folder, message)


def test_tampered_weights_are_refused_with_both_hash_prefixes(folder):
    weights = folder / "model.safetensors"
    expected = json.loads((folder / "model.json").read_text())["files"]["model.safetensors"]
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    message = (
        f"{weights}: sha256 {file_sha256(weights)[:12]}... does not match the sha256 "
        f"{expected[:12]}... recorded in model.json (the file was changed after export)"
    )
    _refused(folder, message)


def test_an_export_without_hashes_loads_with_one_warning(folder, caplog):
    def strip(model):
        del model["files"], model["sha256"]

    _edit(folder, strip, reseal=False)
    with caplog.at_level(logging.WARNING):
        policy = load(folder)
    assert policy.num_params == build_policy(chain_graph((4,)), OBS, BOX).num_params
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        f"{folder / 'model.json'}: records no sha256 (written before exports recorded hashes), "
        "so its files are read without checking them"
    ]
    _edit(folder, _name_weights("/etc/hostname"), reseal=False)  # paths are still checked
    _refused(folder, f"{folder / 'model.json'}: 'weights.file' names '/etc/hostname'; {INSIDE}")


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_files_get_the_users_umask(tmp_path, umask):
    graph = chain_graph((4,))
    policy = build_policy(graph, OBS, BOX, seed=0)
    steps = {n: torch.full_like(p, 0.01) for n, p in policy.named_parameters()}
    result = EvalResult(status="ok", score=1.0, state_dict=policy.state_dict(), step_sizes=steps)
    options = {**FAST, "torchscript": True}
    old = os.umask(umask)
    try:
        folder = export((graph, result), tmp_path / "export", **options)
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    assert "model.safetensors" in modes and "step_sizes.safetensors" in modes
    assert "policy.torchscript.pt" in modes
    assert modes == dict.fromkeys(modes, 0o666 & ~umask)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~umask


def test_a_model_json_linked_from_outside_is_refused(folder, tmp_path):
    model = folder / "model.json"
    outside = shutil.move(model, tmp_path / "model.json")
    model.symlink_to(outside)
    message = (
        f"{model}: is a symbolic link to {outside}, outside the export folder; expected a file "
        "inside the folder"
    )
    _refused(folder, message)
