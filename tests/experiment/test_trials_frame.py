"""``load_result(...).to_pandas()``: one row per trial, and one line when pandas is missing."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from autometa import load_result
from autometa.experiment import Budget, Final, search
from autometa.experiment._frame import FRAME_COLUMNS
from tests.experiment._scripted_evaluators import Scripted

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Five trials scored on two seeds each, and a final stage of two finalists."""
    path = tmp_path_factory.mktemp("frame") / "study.db"
    result = search("tiny", evaluator=Scripted(), budget=Budget(trials=5), storage=path,
                    workers=0, progress=False, seeds=2, final=Final(top=2, seeds=2))  # fmt: skip
    return path, result


def test_one_row_per_trial_with_scores_params_values_and_the_final_mean(study):
    path, result = study
    frame = load_result(path).to_pandas()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["number"]) == [0, 1, 2, 3, 4]
    names = [c for c in frame.columns if c.startswith("value.")]
    assert list(frame.columns) == [*FRAME_COLUMNS, "seed_score_0", "seed_score_1", *names]
    assert names and all(isinstance(v, str | int | float) for v in frame[names[0]])
    by_number = {t.number: t for t in result.trials}
    for _, row in frame.iterrows():
        t = by_number[row["number"]]
        assert row["state"] == t.state.name == "DONE"
        assert row["search_score"] == pytest.approx(t.score)
        seeds = t.metrics["seed_scores"]
        assert [row["seed_score_0"], row["seed_score_1"]] == pytest.approx(seeds)
        assert row["search_score"] == pytest.approx(sum(seeds) / 2)
        assert row["params"] == t.objectives.get("params", t.metrics.get("params"))
        assert row["key"] == t.key and row["wall_time"] == t.wall_time
        assert row["fidelity"] == t.fidelity
        for name in names:  # a decision a trial did not make (a layer it lacks) is missing
            expected = t.values.get(name.removeprefix("value."))
            assert pd.isna(row[name]) if expected is None else row[name] == expected
    finalists = {e.trial: e.mean for e in result.verdict.entries if e.kind == "finalist"}
    assert len(finalists) == 2
    for number, value in frame.set_index("number")["final_mean"].items():
        if number in finalists:
            assert value == pytest.approx(finalists[number])
        else:
            assert math.isnan(value)
    assert frame["search_score"].dtype == "float64" and frame["fidelity"].dtype == "Int64"
    assert frame["best"].dtype == bool
    assert frame.loc[frame["best"], "number"].tolist() == [result.best.number]
    best = frame[frame["best"]].iloc[0]  # the final stage's winner: its final mean is highest
    assert best["final_mean"] == frame["final_mean"].max()


def test_a_failed_trial_has_its_error_and_no_scores(tmp_path):
    evaluator = Scripted(faults={})
    probe = search("tiny", evaluator=evaluator, budget=Budget(trials=2), storage=":memory:",
                   workers=0, progress=False, final=False)  # fmt: skip
    seed = next(t.seed for t in probe.trials if t.number == 1)
    result = search("tiny", evaluator=Scripted(faults={seed: "raise"}), budget=Budget(trials=2),
                    storage=tmp_path / "f.db", workers=0, progress=False, final=False)  # fmt: skip
    frame = result.to_pandas()
    row = frame[frame["number"] == 1].iloc[0]
    assert row["state"] == "FAILED"
    assert math.isnan(row["search_score"]) and math.isnan(row["final_mean"])
    assert row["error"] == result.storage.get_trial(1).error
    assert row["error"].startswith("ValueError: op 'broken' cannot run on this input (at ")
    assert "seed_score_0" not in frame.columns  # one seed per candidate: no per-seed columns


def test_without_pandas_the_error_names_the_extra(tmp_path):
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "pandas.py").write_text("raise ImportError('No module named pandas')\n")
    code = (
        "from autometa.experiment import search, Budget\n"
        "from autometa.meta.synthetic import SyntheticObjective\n"
        "r = search('tiny', evaluator=SyntheticObjective(), budget=Budget(trials=1),"
        " storage=':memory:', workers=0, progress=False, final=False)\n"
        "try:\n"
        "    r.to_pandas()\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": f"{blocker}:{ROOT}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        "pandas is not installed; it is needed for SearchResult.to_pandas(): "
        "pip install 'autometa-nas[pandas]'\n"
    )
