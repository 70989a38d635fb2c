"""Readable results: ``autometa show`` (architectures, errors, CSV), ``plot`` and reprs."""

from __future__ import annotations

import csv
import json

import pytest

from autometa.cli import main
from autometa.experiment import SQLiteStorage, load_result
from autometa.graph import describe_graph
from autometa.space import shipped_spaces

DAG = str(shipped_spaces()["dag_cell"])
QUICK = ["--objective", "synthetic", "--workers", "0", "--no-progress"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """8 trials on the DAG space, 2 seeds each; half the architectures fail."""
    db = tmp_path_factory.mktemp("show") / "study.db"
    args = ["search", DAG, *QUICK, "--trials", "8", "--storage", str(db), "--seeds", "2",
            "--eval-option", "fail_fraction=0.5", "--seed", "1"]  # fmt: skip
    assert main(args) == 0
    return db


def _trials(db):
    store = SQLiteStorage(db)
    try:
        return load_result(store).trials
    finally:
        store.close()


def test_show_has_an_architecture_column_cut_unless_wide(study, capsys):
    trials = _trials(study)
    long = [t for t in trials if len(describe_graph(t.graph)) > 100]
    assert long, "the fixture study should hold an architecture longer than the table's cut"
    capsys.readouterr()
    assert main(["show", str(study), "--top", "0"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("rank"))
    assert header.split() == ["rank", "trial", "state", "search", "score", "final", "mean",
                              "fidelity", "params", "time", "device", "key", "architecture",
                              "note"]  # fmt: skip
    for t in trials:
        whole = describe_graph(t.graph)
        assert (whole if len(whole) <= 100 else whole[:99] + "…") in out
    assert describe_graph(long[0].graph) not in out
    assert main(["show", str(study), "--top", "0", "--wide"]) == 0
    wide = capsys.readouterr().out
    assert all(describe_graph(t.graph) in wide for t in trials)


def test_show_errors_prints_every_failure_in_full(study, capsys):
    failed = sorted(
        (t for t in _trials(study) if t.state.name == "FAILED"), key=lambda t: t.number
    )
    assert len(failed) >= 2
    assert main(["show", str(study), "--top", "1"]) == 0
    plain = capsys.readouterr().out
    assert "(--errors prints every failed trial's error in full)" in plain
    assert "\nerrors:\n" not in plain
    assert main(["show", str(study), "--top", "1", "--errors"]) == 0
    out = capsys.readouterr().out
    block = out[out.index("\nerrors:\n") + 9 :].split("\n\n")[0].splitlines()
    assert block == [f"  trial {t.number}: {t.error}" for t in failed]
    assert all(t.error.endswith("synthetic failure (fail_fraction=0.5)") for t in failed)


def test_show_csv_carries_every_trial_and_value(study, tmp_path, capsys):
    path = tmp_path / "trials.csv"
    assert main(["show", str(study), "--csv", str(path)]) == 0
    assert capsys.readouterr().out == f"wrote 8 trial(s) to {path}\n"
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        rows = {int(r["number"]): r for r in reader}
        columns = reader.fieldnames
    assert columns[:14] == ["number", "state", "score", "score_sem", "seed_scores", "seeds",
                            "fidelity", "params", "wall_time", "device", "duplicate_of", "key",
                            "architecture", "error"]  # fmt: skip
    trials = _trials(study)
    names = {name for t in trials for name in t.values}
    assert set(columns[14:]) == {f"value.{name}" for name in names}
    for t in trials:
        row = rows[t.number]
        assert row["state"] == t.state.name and row["key"] == t.key
        assert row["architecture"] == describe_graph(t.graph)
        assert row["device"] == "cpu" and float(row["wall_time"]) == t.wall_time
        for name, value in t.values.items():
            cell = row[f"value.{name}"]
            assert cell == (json.dumps(value) if isinstance(value, list | dict) else str(value))
        if t.state.name == "DONE":
            assert float(row["score"]) == t.score and row["error"] == ""
            assert json.loads(row["seed_scores"]) == t.metrics["seed_scores"]
            assert float(row["score_sem"]) == t.metrics["score_sem"]
            assert json.loads(row["seeds"]) == t.metrics["seeds"] and len(t.metrics["seeds"]) == 2
            assert int(row["fidelity"]) == t.fidelity
        else:
            assert row["score"] == "" and row["error"] == t.error


def test_show_csv_into_a_missing_folder_is_one_line(study, tmp_path, capsys):
    target = tmp_path / "nowhere" / "t.csv"
    assert main(["show", str(study), "--csv", str(target)]) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        f"autometa show: error: --csv {target}: no such folder {target.parent}\n"
    )
    assert not target.parent.exists()


def test_show_json_has_the_architecture(study, capsys):
    assert main(["show", str(study), "--json", "--top", "0"]) == 0
    data = json.loads(capsys.readouterr().out)
    by_number = {t.number: t for t in _trials(study)}
    assert [row["architecture"] for row in data["trials"]] == [
        describe_graph(by_number[row["number"]].graph) for row in data["trials"]
    ]


def test_plot_prints_each_file_it_wrote(study, tmp_path, capsys):
    out = tmp_path / "plots"
    assert main(["plot", str(study), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == str(out / "trials.csv") and len(printed) == len(set(printed))
    assert sorted(printed) == sorted(str(p) for p in out.iterdir())
    with open(out / "trials.csv", newline="") as handle:
        assert "architecture" in next(csv.reader(handle))


def test_results_and_trials_print_short(study):
    store = SQLiteStorage(study)
    try:
        result = load_result(store)
    finally:
        store.close()
    text = str(result)
    assert "\n" not in text and len(text) < 200 and text.startswith("SearchResult(best=trial ")
    best = result.best
    final = "" if best.final_mean is None else f", final_mean={best.final_mean:.6g}"
    assert repr(best) == (
        f"TrialRecord(number={best.number}, state=DONE, score={best.score:.6g}{final}, "
        f"key='{best.key[:12]}')"
    )
    assert text.startswith(f"SearchResult(best={result.best_info.short()}, ")
    failed = next(t for t in result.trials if t.state.name == "FAILED")
    assert repr(failed).endswith("state=FAILED, score=None, key='" + failed.key[:12] + "')")
