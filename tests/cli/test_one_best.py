"""A tiny real search with a final stage: every place that names "the best" names the same
trial with the same number and the same label (show, show --json, export --best, the card,
TensorBoard's event files)."""

from __future__ import annotations

import json

import pytest

from autometa.cli import main
from autometa.experiment import load_result

MAML_TINY = [
    "--task", "navigation2d", "--meta-iterations", "1", "--eval-option", "num_tasks=2",
    "--eval-option", "episodes_per_task=2", "--eval-option", "test_tasks=2",
    "--eval-option", "test_episodes=2", "--eval-option", "family_options={horizon: 10}",
]  # fmt: skip


def test_every_view_names_the_same_best(tmp_path, capsys):
    db, board = tmp_path / "one.db", tmp_path / "tb"
    log = ["--log", f"tensorboard:{board}"] if _has_tensorboard() else []
    args = ["search", "tiny", *MAML_TINY, "--trials", "4", "--seeds", "2", "--final-top", "2",
            "--final-seeds", "2", "--baseline", "maml-relu-2x100", "--storage", str(db),
            "--workers", "0", "--no-progress", *log]  # fmt: skip
    assert main(args) == 0
    capsys.readouterr()
    result = load_result(db)
    info = result.best_info
    assert result.verdict.complete and info.basis == "final stage winner"
    label = "best (final stage winner, final mean over 2 fresh seeds)"
    assert info.label == label and result.best.number == info.number
    assert info.value == pytest.approx(result.verdict.winner.mean)
    value = f"{info.value:.4g}"

    assert main(["show", str(db)]) == 0
    shown = capsys.readouterr().out
    assert f"  trial {info.number}: {label} {value} (95% CI " in shown
    rows = [line.split() for line in shown.splitlines() if line[:1].isdigit()]
    assert rows[0][:2] == ["1", str(info.number)]  # rank 1 of the leaderboard is the best
    assert f"{info.trial.final_mean:.4f}" in rows[0] and f"{info.search_score:.4f}" in rows[0]
    assert result.verdict.sentence() in shown

    assert main(["show", str(db), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["best"]["trial"] == info.number and data["best"]["label"] == label
    assert data["best"]["value"] == pytest.approx(info.value)
    assert data["trials"][0]["number"] == info.number
    ranks = {e["label"]: e["rank"] for e in data["final"]["entries"] if e["kind"] == "finalist"}
    assert sorted(ranks.values()) == [1, 2] and ranks[f"trial {info.number}"] == 1

    out = tmp_path / "best"
    assert main(["export", str(db), "--best", str(out), "--no-onnx"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"exported trial {info.number} ({label} {value} (95% CI ")
    card = (out / "card.md").read_text()
    entry = next(e for e in data["final"]["entries"] if e["label"] == f"trial {info.number}")
    assert f"- final mean: **{entry['mean']:.6g}** (95% CI " in card
    assert f"- the study's {label}" in card
    seeds = info.trial.metrics["seeds"]
    assert f"- exported weights: meta-learned with search seed {seeds[0]} " in card
    assert f"| mean return on the held-out test tasks, search seed {seeds[0]} | |" in card

    if log:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(board))
        events.Reload()
        assert [e.value for e in events.Scalars("best/trial")] == [info.number]
        assert [e.value for e in events.Scalars("best/value")] == pytest.approx([info.value])
        text = events.Tensors("search/summary/text_summary")[0].tensor_proto.string_val[0]
        assert text.decode().startswith(f"**{info.describe()}**")
        assert result.verdict.sentence() in text.decode()
        assert "- evaluator.meta_iterations: 1" in text.decode()


def _has_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True
