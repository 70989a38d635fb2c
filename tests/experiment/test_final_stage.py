"""Seeds per candidate and the final stage: fresh shared seeds, baselines, ablation, resume."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autometa.cli import main
from autometa.errors import UnknownNameError
from autometa.experiment import (
    Budget,
    Final,
    InMemoryStorage,
    SQLiteStorage,
    TrialState,
    search,
    seed_list,
)
from autometa.experiment._best import FINAL
from autometa.experiment._verdict import mean_ci, t95
from autometa.experiment._worker import combine_seeds
from autometa.meta import EvalResult, SyntheticObjective, failed_result
from autometa.space import shipped_spaces

ROOT = Path(__file__).resolve().parents[2]
TINY = str(shipped_spaces()["tiny"])
DAG = str(shipped_spaces()["dag_cell"])
NOISY = SyntheticObjective(seed_noise=0.5)


def test_combine_seeds_means_the_scores_and_keeps_each():
    results = [EvalResult("ok", s, metrics={"params": 10}) for s in (1.0, 2.0, 4.0)]
    out = combine_seeds([7, 8, 9], results)
    assert out.score == pytest.approx(7 / 3)
    assert out.metrics["seed_scores"] == [1.0, 2.0, 4.0] and out.metrics["seeds"] == [7, 8, 9]
    assert out.metrics["score_sem"] == pytest.approx(math.sqrt((16 / 9 + 1 / 9 + 25 / 9) / 2 / 3))
    failed = combine_seeds([7, 8], [results[0], failed_result("NaN in the returns")])
    assert not failed.ok and failed.error == "seed 8: NaN in the returns"


def test_t_interval_uses_exact_quantiles():
    # Published two-sided 95% values; df 35 sits between table rows a table would round.
    assert t95(1) == pytest.approx(12.7062, abs=1e-4)
    assert t95(30) == pytest.approx(2.0423, abs=1e-4)
    assert t95(35) == pytest.approx(2.0301, abs=1e-4)
    assert t95(40) == pytest.approx(2.0211, abs=1e-4)
    assert t95(10**6) == pytest.approx(1.95997, abs=1e-4)
    mean, low, high = mean_ci([1.0, 3.0])
    assert mean == 2.0 and (low, high) == pytest.approx((2 - 12.7062, 2 + 12.7062), abs=1e-3)


def test_trials_are_scored_on_several_seeds():
    result = search(TINY, evaluator=NOISY, budget=Budget(trials=4), storage=InMemoryStorage(),
                    workers=0, seeds=3, final=False)  # fmt: skip
    for trial in result.trials:
        assert trial.metrics["seeds"] == seed_list(trial.seed, 3)
        scores = trial.metrics["seed_scores"]
        assert len(set(scores)) == 3 and trial.score == pytest.approx(sum(scores) / 3)
        one = NOISY(trial.graph, seed=trial.metrics["seeds"][1])
        assert scores[1] == pytest.approx(one.score)  # the same as a single-seed evaluation
    assert result.verdict is None


def test_final_stage_uses_fresh_shared_seeds_and_picks_by_final_mean():
    store = InMemoryStorage()
    plan = Final(top=3, seeds=4, baselines=("tanh-2x64", "maml-relu-2x100"))
    result = search(DAG, evaluator=NOISY, budget=Budget(trials=12), storage=store, workers=0,
                    seed=3, final=plan)  # fmt: skip
    runs = store.get_final_runs()
    verdict = result.verdict
    finalists = [e for e in verdict.entries if e.kind == "finalist"]
    assert len(finalists) == 3 and len({e.key for e in finalists}) == 3
    searched = {e.trial for e in finalists}
    top = [t for t in result.trials if t.state == TrialState.DONE][:3]
    assert searched == {t.number for t in sorted(top, key=lambda t: -t.score)}
    seeds = {tuple(e.seeds) for e in verdict.entries}
    assert len(seeds) == 1 and len(next(iter(seeds))) == 4  # the same 4 seeds for every entry
    used = {t.seed for t in result.trials}
    assert not used & set(next(iter(seeds)))  # never used by the search
    kinds = [e.kind for e in verdict.entries]
    assert kinds.count("baseline") == 2 and kinds.count("ablation") == 2
    assert all(r.state == TrialState.DONE for r in runs) and verdict.complete
    # the winner is the finalist with the best final mean, not the best search score
    best = max(finalists, key=lambda e: e.mean)
    assert verdict.winner == best and result.best.number == best.trial
    assert [m.other for m in verdict.margins if m.kind == "baseline"] == [
        "baseline tanh-2x64", "baseline maml-relu-2x100"]  # fmt: skip
    others = {e.label for e in finalists if e != best}
    assert others and others <= {m.other for m in verdict.margins}  # every other finalist
    for margin in verdict.margins:
        other = next(e for e in verdict.entries if e.label == margin.other)
        diffs = [a - b for a, b in zip(best.scores, other.scores)]
        assert margin.difference == pytest.approx(sum(diffs) / 4) and margin.pairs == 4
    ablation = [e for e in verdict.entries if e.kind == "ablation"]
    winner_hyper = best.graph_json["graph"]["hyperparameters"]
    assert any(e.graph_json["graph"]["hyperparameters"] == winner_hyper for e in ablation)
    assert any(e.graph_json["graph"]["hyperparameters"] == {} for e in ablation)
    assert verdict.sentence().startswith(f"{best.label} scores {best.mean:.2f} (95% CI ")


def test_unknown_baseline_is_refused_before_anything_runs():
    with pytest.raises(UnknownNameError, match="unknown baseline 'tanh-2x46'.*tanh-2x64"):
        Final(baselines=("tanh-2x46",))


def _cli_search(db: Path, *extra: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from autometa.cli import main; sys.exit(main())",
            "search", TINY, "--objective", "synthetic", "--eval-option", "seed_noise=0.3",
            "--trials", "4", "--seeds", "2", "--final-top", "2", "--final-seeds", "3",
            "--baseline", "tanh-2x64", "--storage", str(db), "--no-progress", *extra]  # fmt: skip


def test_kill_during_the_final_stage_then_resume_runs_nothing_twice(tmp_path):
    db = tmp_path / "final.db"
    cmd = _cli_search(db, "--eval-option", "delay=0.4", "--workers", "1")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)  # fmt: skip
    deadline, finished = time.monotonic() + 120, []
    while time.monotonic() < deadline and len(finished) < 2:
        time.sleep(0.1)
        if db.exists():
            store = SQLiteStorage(db)
            finished = [r for r in store.get_final_runs() if r.state == TrialState.DONE]
            store.close()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert len(finished) >= 2
    store = SQLiteStorage(db)
    before = {r.id: r for r in store.get_final_runs() if r.state == TrialState.DONE}
    total_before = len(store.get_final_runs())
    store.close()
    assert total_before < 9 or len(before) < total_before  # the kill came mid-stage
    resumed = subprocess.run([*cmd[:3], "resume", str(db), "--workers", "0", "--no-progress",
                              "--take-over"],  # the killed search cannot end its session
                             capture_output=True, text=True, timeout=180)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    store = SQLiteStorage(db)
    runs = store.get_final_runs()
    store.close()
    # 2 finalists + 1 baseline + 2 ablation cells, 3 seeds each, every one finished once
    assert len(runs) == 15 and all(r.state == TrialState.DONE for r in runs)
    for run_id, old in before.items():  # finished evaluations were kept, not run again
        assert runs[run_id].finished == old.finished and runs[run_id].score == old.score
    assert "final stage: fresh seeds" in resumed.stdout


MAML_TINY = [
    "--task", "navigation2d", "--meta-iterations", "1", "--eval-option", "num_tasks=2",
    "--eval-option", "episodes_per_task=2", "--eval-option", "test_tasks=2",
    "--eval-option", "test_episodes=2", "--eval-option", "family_options={horizon: 10}",
]  # fmt: skip


def test_show_json_export_and_card_follow_the_final_stage(tmp_path, capsys):
    """The README's tiny search with seeds, a final stage and a baseline, as a user runs it."""
    db = tmp_path / "cli.db"
    args = ["search", TINY, *MAML_TINY, "--trials", "4", "--seeds", "2", "--final-top", "2",
            "--final-seeds", "3", "--baseline", "tanh-2x64", "--storage", str(db),
            "--workers", "0", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "final stage: fresh seeds, the same for every entry" in out
    assert main(["show", str(db), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    final = data["final"]
    labels = [e["label"] for e in final["entries"]]
    # tiny fixes fast_lr 0.1 and one inner step, the baseline's defaults: no ablation cells
    assert labels[2] == "baseline tanh-2x64" and len(labels) == 3
    for entry in final["entries"]:
        assert len(entry["scores"]) == 3 and entry["mean"] == pytest.approx(
            sum(entry["scores"]) / 3
        )
        assert entry["low"] < entry["mean"] < entry["high"]
    for trial in data["trials"]:
        assert len(trial["metrics"]["seed_scores"]) == 2 and trial["metrics"]["score_sem"] >= 0
    winner = next(e for e in final["entries"] if e["label"] == final["winner"])
    assert data["best"]["trial"] == winner["trial"] and data["best"]["basis"] == FINAL
    assert data["best"]["label"] == "best (final stage winner, final mean over 3 fresh seeds)"
    assert data["best"]["final_mean"] == pytest.approx(winner["mean"])
    assert data["trials"][0]["number"] == winner["trial"]  # rank 1 of the leaderboard
    assert data["trials"][0]["final_mean"] == pytest.approx(winner["mean"])
    out_dir = tmp_path / "best"
    assert main(["export", str(db), "--best", str(out_dir)]) == 0
    model = json.loads((out_dir / "model.json").read_text())
    assert model["source"]["trial"]["number"] == winner["trial"]
    card = (out_dir / "card.md").read_text()
    assert final["sentence"] in card and "## Final stage" in card
    assert "The score is the mean episode return on" in card
