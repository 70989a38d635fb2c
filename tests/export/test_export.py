"""Export -> load round trips, the TorchScript/ONNX copies, and refusal of changed folders."""

import json
import re
import shutil

import gymnasium as gym
import networkx as nx
import numpy as np
import pytest
import torch
from helpers import chain_graph, diamond_graph
from safetensors.torch import load_file, save_file

from autometa.errors import ExportError
from autometa.export import export, load, read_export
from autometa.export._files import file_sha256, seal
from autometa.meta import EvalResult
from autometa.policy import OPS, build_policy, register_op

OBS = gym.spaces.Box(-1.0, 1.0, (3,))
BOX = gym.spaces.Box(-2.0, 2.0, (2,))
DISCRETE = gym.spaces.Discrete(4)


def dag_graph() -> nx.DiGraph:
    """A cell with concat, sum, residual and an identity node."""
    graph = nx.DiGraph(hyperparameters={"fast_lr": 0.3, "inner_steps": 2}, space="test")
    graph.add_node("input", op="input")
    graph.add_node("a", op="linear_tanh", width=7, merge="sum", residual=False)
    graph.add_node("b", op="layernorm_relu", width=4, merge="sum", residual=True)
    graph.add_node("i", op="identity", width=None, merge="concat", residual=False)
    graph.add_node("c", op="linear_gelu", width=5, merge="sum", residual=True)
    graph.add_node("output", op="output", merge="concat")
    graph.add_edge("input", "a", order=0)
    graph.add_edge("input", "b", order=0)
    graph.add_edge("a", "i", order=0)
    graph.add_edge("b", "i", order=1)
    graph.add_edge("i", "c", order=0)
    graph.add_edge("a", "c", order=1)
    graph.add_edge("c", "output", order=0)
    graph.add_edge("b", "output", order=1)
    return graph


def trained(graph, action_space, seed=0):
    """A policy with non-trivial weights (a learned log-std too)."""
    policy = build_policy(graph, OBS, action_space, seed=seed)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(seed)))
    return policy


def assert_same_outputs(a, b, obs_dim=3):
    obs = torch.randn(11, obs_dim, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        for x, y in zip(a(obs), b(obs), strict=True):
            assert torch.equal(x, y)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One full export (TorchScript and ONNX) of a DAG with a Gaussian head."""
    policy = trained(dag_graph(), BOX)
    result = EvalResult(
        status="ok",
        score=-12.5,
        metrics={
            "pre_return": -30.0,
            "post_return": -12.5,
            "returns_by_step": [-30.0, -12.5, -10.0],
            "task_family": "navigation2d",
        },
        state_dict=policy.state_dict(),
    )
    folder = export(
        (dag_graph(), result),
        tmp_path_factory.mktemp("exp") / "best",
        observation_space=OBS,
        action_space=BOX,
    )
    return policy, folder


@pytest.fixture
def copy(exported, tmp_path):
    return shutil.copytree(exported[1], tmp_path / "copy")


@pytest.mark.parametrize(
    "graph",
    [
        chain_graph((8, 4)),
        diamond_graph("concat"),
        diamond_graph("sum", residual=True),
        dag_graph(),
    ],
    ids=["chain", "concat", "sum-residual", "dag-identity"],
)
@pytest.mark.parametrize("action_space", [BOX, DISCRETE], ids=["box", "discrete"])
def test_round_trip_gives_the_same_outputs(graph, action_space, tmp_path):
    policy = trained(graph, action_space, seed=3)
    folder = export(
        (graph, policy.state_dict()),
        tmp_path / "out",
        observation_space=OBS,
        action_space=action_space,
        onnx=False,
        drawing=False,
    )
    loaded = load(folder)
    assert_same_outputs(policy, loaded)
    assert loaded.discrete == (action_space is DISCRETE)
    assert loaded.num_params == policy.num_params and loaded.macs == policy.macs
    assert not loaded.training
    info = loaded.export_info
    assert info["head"] == ("categorical" if action_space is DISCRETE else "gaussian")
    assert info["checks"]["torchscript"]["max_abs_error"] <= 1e-5
    traced = torch.jit.load(str(folder / "policy.torchscript.pt"))
    obs = torch.randn(9, 3)
    for x, y in zip(traced(obs), policy(obs), strict=True):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-5)


def test_full_export_writes_every_file(exported):
    _, folder = exported
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "architecture.dot",
        "architecture.graphml",
        "architecture.json",
        "architecture.png",
        "architecture.svg",
        "card.md",
        "model.json",
        "model.safetensors",
        "policy.onnx",
        "policy.torchscript.pt",
    ]
    model = read_export(folder)
    assert sorted(model["files"]) == [n for n in names if n != "model.json"]
    assert model["adaptation"]["fast_lr"] == 0.3 and model["adaptation"]["inner_steps"] == 2
    assert model["task_family"] == {"name": "navigation2d", "options": {}}
    assert model["observation_space"] == {
        "type": "Box",
        "shape": [3],
        "dtype": "float32",
        "low": [-1.0] * 3,
        "high": [1.0] * 3,
    }
    assert model["num_params"] == trained(dag_graph(), BOX).num_params
    card = (folder / "card.md").read_text()
    assert "score: **-12.5**" in card
    assert "| before adaptation | -30 |\n| after 1 step | -12.5 |\n| after 2 steps | -10 |" in card
    assert "![architecture](architecture.svg)" in card


def test_onnx_matches_the_policy_with_onnxruntime(exported):
    ort = pytest.importorskip("onnxruntime")
    policy, folder = exported
    check = read_export(folder)["checks"]["onnx"]
    assert check["max_abs_error"] <= 1e-5 and check["runtime"].startswith("onnxruntime")
    session = ort.InferenceSession(str(folder / "policy.onnx"), providers=["CPUExecutionProvider"])
    for batch in (1, 3, 64):
        obs = torch.randn(batch, 3)
        mean, log_std = session.run(["mean", "log_std"], {"obs": obs.numpy()})
        want = policy(obs)
        torch.testing.assert_close(torch.from_numpy(mean), want[0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(torch.from_numpy(log_std), want[1], rtol=1e-5, atol=1e-5)


def test_onnx_of_a_categorical_head(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    policy = trained(diamond_graph("sum", residual=True), DISCRETE)
    folder = export(
        (diamond_graph("sum", residual=True), policy.state_dict()),
        tmp_path / "d",
        observation_space=OBS,
        action_space=DISCRETE,
        drawing=False,
    )
    session = ort.InferenceSession(str(folder / "policy.onnx"), providers=["CPUExecutionProvider"])
    obs = torch.randn(6, 3)
    (logits,) = session.run(["logits"], {"obs": obs.numpy()})
    torch.testing.assert_close(torch.from_numpy(logits), policy(obs)[0], rtol=1e-5, atol=1e-5)


def _hash_message(path, expected):
    return (
        f"{path}: sha256 {file_sha256(path)[:12]}... does not match the sha256 {expected[:12]}... "
        "recorded in model.json (the file was changed after export)"
    )


@pytest.mark.parametrize("name", ["model.safetensors", "architecture.json", "policy.onnx"])
def test_a_changed_file_is_refused(copy, name):
    expected = json.loads((copy / "model.json").read_text())["files"][name]
    path = copy / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ExportError, match=f"^{re.escape(_hash_message(path, expected))}$"):
        load(copy)


def test_a_changed_model_json_is_refused(copy):
    path = copy / "model.json"
    model = json.loads(path.read_text())
    recorded = model["sha256"]
    model["graph"]["nodes"][1]["width"] = 9
    path.write_text(json.dumps(model))
    body = {k: v for k, v in model.items() if k != "sha256"}
    import hashlib

    actual = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    message = (
        f"{path}: content sha256 {actual} does not match the sha256 {recorded} recorded in it "
        "(the file was changed after export)"
    )
    with pytest.raises(ExportError, match=f"^{re.escape(message)}$"):
        load(copy)


def test_a_missing_file_is_refused(copy):
    (copy / "model.safetensors").unlink()
    message = f"{copy / 'model.safetensors'}: missing (listed in model.json)"
    with pytest.raises(ExportError, match=f"^{re.escape(message)}$"):
        load(copy)
    shutil.rmtree(copy)
    copy.mkdir()
    message = f"{copy / 'model.json'}: missing (every export has a model.json)"
    with pytest.raises(ExportError, match=f"^{re.escape(message)}$"):
        load(copy)


def _reseal(folder):
    """Recompute the manifest, as someone replacing files on purpose would."""
    model = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps(seal(model, folder)))


def test_weights_of_another_shape_are_refused_even_with_a_rewritten_manifest(copy):
    path = copy / "model.safetensors"
    weights = load_file(str(path))
    weights["head.weight"] = torch.zeros(2, 3)
    save_file(weights, str(path))
    _reseal(copy)
    message = f"{path}: 'head.weight' has shape (2, 3), the graph in model.json needs (2, 9)"
    with pytest.raises(ExportError, match=f"^{re.escape(message)}$"):
        load(copy)
    del weights["head.weight"]
    weights["extra"] = torch.zeros(1)
    save_file(weights, str(path))
    _reseal(copy)
    message = (
        f"{path}: missing keys ['head.weight']; unexpected keys ['extra'] for the graph in "
        "model.json"
    )
    with pytest.raises(ExportError, match=f"^{re.escape(message)}$"):
        load(copy)


def test_architecture_json_must_hold_the_same_graph(copy):
    path = copy / "architecture.json"
    data = json.loads(path.read_text())
    data["nodes"][1]["op"] = "linear_relu"
    path.write_text(json.dumps(data))
    _reseal(copy)
    message = f"{path}: the graph differs from the one in model.json"
    with pytest.raises(ExportError, match=f"^{re.escape(message)}$"):
        load(copy)


def test_export_refuses_bad_sources(tmp_path):
    graph = chain_graph((4,))
    policy = build_policy(graph, OBS, BOX)
    weights = policy.state_dict()
    weights["head.bias"] = torch.zeros(3)
    message = (
        "the weights to export: 'head.bias' has shape (3,), the graph in model.json needs (2,)"
    )
    with pytest.raises(ExportError, match=f"^{re.escape(message)}$"):
        export((graph, weights), tmp_path / "x", observation_space=OBS, action_space=BOX)
    message = (
        "the policy's spaces are unknown: no task family is recorded with this source; pass "
        "task_family= (a name or a TaskFamily) or observation_space= and action_space="
    )
    with pytest.raises(ExportError, match=f"^{re.escape(message)}$"):
        export((graph, policy.state_dict()), tmp_path / "x")
    failed = EvalResult(status="failed", error="nan in loss")
    message = "the evaluation failed (nan in loss); there is nothing to export"
    with pytest.raises(ExportError, match=f"^{re.escape(message)}$"):
        export((graph, failed), tmp_path / "x", observation_space=OBS, action_space=BOX)
    assert not (tmp_path / "x").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    message = (
        f"{tmp_path / 'full'}: folder is not empty (pass overwrite=True, or --overwrite, to "
        "replace it)"
    )
    with pytest.raises(ExportError, match=f"^{re.escape(message)}$"):
        export(
            (graph, policy.state_dict()),
            tmp_path / "full",
            observation_space=OBS,
            action_space=BOX,
        )


def test_spaces_come_from_the_recorded_task_family(tmp_path):
    graph = chain_graph((6,))
    nav = gym.spaces.Box(-1.0, 1.0, (2,))
    policy = build_policy(graph, nav, gym.spaces.Box(-1.0, 1.0, (2,)), seed=0)
    result = EvalResult(
        status="ok",
        score=1.0,
        metrics={"task_family": "navigation2d"},
        state_dict=policy.state_dict(),
    )
    folder = export(
        (result, graph), tmp_path / "nav", torchscript=False, onnx=False, drawing=False
    )
    loaded = load(folder)
    assert loaded.obs_dim == 2 and loaded.act_dim == 2
    assert loaded.export_info["action_space"]["high"] == [1.0, 1.0]
    assert_same_outputs(policy, loaded, obs_dim=2)


class _NumpyTanh(torch.nn.Module):
    """An op computed outside torch: a trace freezes its result as a constant."""

    def __init__(self, in_features, width):
        super().__init__()
        self.linear = torch.nn.Linear(in_features, width)

    def forward(self, x):
        y = self.linear(x)
        return y + torch.from_numpy(np.tanh(y.detach().numpy()))


@pytest.fixture
def numpy_op():
    register_op("linear_numpy_tanh", _NumpyTanh)
    yield "linear_numpy_tanh"
    OPS.unregister("linear_numpy_tanh")


def test_a_copy_that_does_not_match_is_left_out_with_the_reason(numpy_op, tmp_path):
    graph = chain_graph((4,), op=numpy_op)
    policy = build_policy(graph, OBS, BOX, seed=0)
    folder = export((graph, policy.state_dict()), tmp_path / "np", observation_space=OBS,
                    action_space=BOX, onnx=False, drawing=False)  # fmt: skip
    why = (
        "the traced module fails on check inputs: RuntimeError: The size of tensor a (5) must "
        "match the size of tensor b (2) at non-singleton dimension 0"
    )
    model = read_export(folder)
    assert model["checks"] == {"torchscript": {"skipped": why}}
    assert not (folder / "policy.torchscript.pt").exists()
    assert "policy.torchscript.pt" not in model["files"]
    assert f"| torchscript | not written: {why} |" in (folder / "card.md").read_text()
    assert_same_outputs(policy, load(folder))


def test_meta_sgd_step_sizes_are_exported_checked_and_loaded(tmp_path):
    graph = chain_graph((4,))
    policy = build_policy(graph, OBS, BOX, seed=0)
    named = list(policy.named_parameters())
    steps = {n: torch.full_like(p, 0.01 * (i + 1)) for i, (n, p) in enumerate(named)}
    result = EvalResult(status="ok", score=1.0, state_dict=policy.state_dict(), step_sizes=steps)
    options = dict(observation_space=OBS, action_space=BOX, torchscript=False, onnx=False)
    folder = export((graph, result), tmp_path / "sgd", drawing=False, **options)
    loaded = load(folder)
    assert sorted(loaded.step_sizes) == sorted(steps)
    assert all(torch.equal(loaded.step_sizes[n], steps[n]) for n in steps)
    entry = loaded.export_info["step_sizes"]
    assert entry["file"] == "step_sizes.safetensors"
    assert entry["tensors"]["head.weight"] == {"shape": [2, 4], "dtype": "float32"}
    plain = export((graph, policy.state_dict()), tmp_path / "plain", drawing=False, **options)
    assert load(plain).step_sizes is None and read_export(plain)["step_sizes"] is None

    path = folder / "step_sizes.safetensors"
    save_file({**steps, "head.bias": torch.zeros(3)}, str(path))
    _reseal(folder)
    message = f"{path}: 'head.bias' has shape (3,), the graph in model.json needs (2,)"
    with pytest.raises(ExportError, match=f"^{re.escape(message)}$"):
        load(folder)
    del steps["log_std"]
    result.step_sizes = steps
    message = (
        "the Meta-SGD step sizes to export: missing keys ['log_std'] for the graph in model.json"
    )
    with pytest.raises(ExportError, match=f"^{re.escape(message)}$"):
        export((graph, result), tmp_path / "bad", drawing=False, **options)
