"""The confirmation: the final stage's winner and its closest rival on seeds not used to
choose it, stored as final runs, read into the verdict, shown, and finished by a resume."""

from __future__ import annotations

import json
import math
import sqlite3

import pytest
from _scripted_evaluators import Scripted
from scipy import stats

from autometa.cli import main
from autometa.errors import StorageError
from autometa.experiment import (
    Budget,
    Final,
    InMemoryStorage,
    SQLiteStorage,
    TrialState,
    final_seeds,
    search,
    trial_seed,
)
from autometa.experiment._verdict import verdict
from autometa.experiment.trial import FinalRun, confirmation_seeds
from autometa.graph import from_json
from autometa.meta import SyntheticObjective
from autometa.space import shipped_spaces
from autometa.testing.storage import make_study

DAG = str(shipped_spaces()["dag_cell"])
NOISY = SyntheticObjective(seed_noise=0.5)


def _expected_tail(conf) -> str:
    """The confirmation sentence from its stored scores, with the exact t interval."""
    diffs = [w - r for w, r in zip(conf.winner_scores, conf.rival_scores)]
    n = len(diffs)
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    low, high = mean - half, mean + half
    assert conf.margin.low == pytest.approx(low) and conf.margin.high == pytest.approx(high)
    ci = f"95% CI of the difference {low:+.2f} to {high:+.2f}"
    if low > 0 or high < 0:
        verb = "beats" if mean > 0 else "trails"
        phrase = f"it {verb} {conf.rival} by {abs(mean):.2f} ({ci})"
    else:
        need = conf.margin.seeds_needed
        phrase = (
            f"the seeds cannot tell it apart from {conf.rival} (difference {mean:+.2f}, {ci}; "
            f"about {need:,} seeds would be needed at the observed spread (paired t-test, 80% "
            "power, at this level))"
        )
    w = sum(conf.winner_scores) / n
    r = sum(conf.rival_scores) / n
    return (
        f"Confirmation, the margin to quote, on {n} confirmation seeds not used to choose it: "
        f"{conf.winner} scores {w:.2f} against {r:.2f} for {conf.rival}, and {phrase}; the "
        "confirmation does not re-choose the winner."
    )


def test_the_winner_and_its_rival_are_confirmed_on_further_fresh_seeds():
    store = InMemoryStorage()
    plan = Final(top=3, seeds=3, baselines=("tanh-2x64",), ablation=False, confirm_seeds=3)
    result = search(DAG, evaluator=NOISY, budget=Budget(trials=8), storage=store, workers=0,
                    seeds=2, seed=5, progress=False, final=plan)  # fmt: skip
    runs = store.get_final_runs()
    confirming = [r for r in runs if r.kind == "confirmation"]
    stage = [r for r in runs if r.kind != "confirmation"]
    assert len(stage) == 12 and len(confirming) == 6
    assert all(r.state == TrialState.DONE for r in runs)
    v = result.verdict
    assert v.complete and v.total == 18
    # the rival is the entry with the next-highest final mean (a finalist or a baseline)
    ranked = sorted(v.entries, key=lambda e: -e.mean)
    assert ranked[0] == v.winner
    conf = v.confirmation
    assert (conf.winner, conf.rival) == (v.winner.label, ranked[1].label)
    assert {r.entry for r in confirming} == {conf.winner, conf.rival}
    # seeds: the same three for both, none a search seed or a final seed
    seeds = {r.seed for r in confirming}
    assert len(seeds) == 3 and conf.seeds == sorted(seeds, key=conf.seeds.index)
    assert not seeds & {r.seed for r in stage}
    searched = {s for t in result.trials for s in t.metrics["seeds"]}
    assert not seeds & searched
    used = searched | {r.seed for r in stage}
    assert conf.seeds == confirmation_seeds(5, 3, used)
    # the scores are the evaluator's on those seeds (the same graph, the same seed)
    for run in confirming:
        assert run.score == pytest.approx(NOISY(from_json(run.graph_json), seed=run.seed).score)
    text = v.sentence()
    head, tail = text.split(". Confirmation, ", 1)
    assert head.startswith(f"{v.winner.label} scores {v.winner.mean:.2f} (95% CI ")
    assert text == head + ". " + _expected_tail(conf)
    assert result.best.number == v.winner.trial  # the confirmation does not re-choose it


def _stage(table: dict[str, list[float]], confirm: dict[str, list[float]]) -> InMemoryStorage:
    store = InMemoryStorage()
    store.create_study(make_study())
    runs = []
    for label, scores in table.items():
        kind = "finalist" if label.startswith("trial ") else "baseline"
        trial = int(label.split()[1]) if kind == "finalist" else None
        runs += [FinalRun(-1, label, kind, trial, f"key {label}", {}, i, 1000 + i)
                 for i in range(len(scores))]  # fmt: skip
    for label, scores in confirm.items():
        trial = int(label.split()[1]) if label.startswith("trial ") else None
        runs += [FinalRun(-1, label, "confirmation", trial, f"key {label}", {}, i, 2000 + i)
                 for i in range(len(scores))]  # fmt: skip
    for run in store.create_final_runs(runs):
        scores = (confirm if run.kind == "confirmation" else table)[run.entry]
        store.update_final_run(run.id, state=TrialState.RUNNING)
        store.update_final_run(run.id, state=TrialState.DONE, score=scores[run.seed_index])
    return store


def test_the_sentence_names_the_confirmation_margin_on_fixed_scores():
    # on the final seeds the winner beats trial 3; on seeds that did not choose it, the
    # differences 0, +1.5, -0.5 (mean +0.33, sd 1.04, t(0.975, 2) = 4.303) cannot tell them apart
    table = {"trial 0": [10, 11, 12], "trial 3": [9, 10, 11.5], "baseline b": [0, 1, 2]}
    confirm = {"trial 0": [10, 12, 11], "trial 3": [10, 10.5, 11.5]}
    result = verdict(_stage(table, confirm))
    assert result.sentence() == (
        "trial 0 scores 11.00 (95% CI 8.52 to 13.48, 3 fresh seeds; optimistic, since it was "
        "chosen as the best of 2 finalists on these same seeds); paired on the same seeds, with "
        "Holm's adjustment over 2 comparisons (at most a 5% chance of any false claim), it "
        "beats trial 3 by 0.83 (95% CI of the difference +0.12 to +1.55); it beats baseline b "
        "by 10.00 (97.5% CI of the difference +10.00 to +10.00). Confirmation, the margin to "
        "quote, on 3 confirmation seeds not used to choose it: trial 0 scores 11.00 against "
        "10.67 for trial 3, and the seeds cannot tell it apart from trial 3 (difference +0.33, "
        "95% CI of the difference -2.25 to +2.92; about 79 seeds would be needed at the "
        "observed spread (paired t-test, 80% power, at this level)); the confirmation does not "
        "re-choose the winner."
    )
    data = result.to_dict()["confirmation"]
    assert data["winner_scores"] == [10, 12, 11] and data["rival"] == "trial 3"
    assert data["margin"]["pairs"] == 3 and data["margin"]["level"] == 0.95


def test_a_resume_finishes_confirmation_runs_left_queued(tmp_path, capsys):
    db = tmp_path / "confirm.db"
    searched = {trial_seed(0, n) for n in range(4)}
    finals = final_seeds(0, 2, searched)
    first = confirmation_seeds(0, 3, searched | set(finals))[0]
    options = dict(budget=Budget(trials=4), storage=db, workers=0, progress=False,
                   final=Final(top=2, seeds=2, confirm_seeds=3))  # fmt: skip
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C on the first confirmation evaluation
        search(DAG, evaluator=Scripted({first: "interrupt"}), **options)
    store = SQLiteStorage(db, read_only=True)
    runs = store.get_final_runs()
    store.close()
    confirming = [r for r in runs if r.kind == "confirmation"]
    assert len(runs) == 10 and len(confirming) == 6
    assert all(r.state == TrialState.DONE for r in runs if r.kind != "confirmation")
    assert all(r.state == TrialState.QUEUED for r in confirming)
    assert main(["show", str(db)]) == 0  # shown, with no verdict while it is unfinished
    assert (
        "The final stage is incomplete: 6 of 10 evaluations are not done; no verdict yet. "
        f"Finish it with `autometa resume {db}`."
    ) in capsys.readouterr().out
    done = search(DAG, evaluator=Scripted(), allow_changes=True, **options)
    runs = done.storage.get_final_runs()
    assert len(runs) == 10 and all(r.state == TrialState.DONE for r in runs)
    assert [r.seed for r in runs if r.kind == "confirmation"][:3] == [
        r.seed for r in confirming][:3]  # fmt: skip
    assert done.verdict.complete and done.verdict.confirmation.margin is not None
    assert main(["show", str(db)]) == 0
    out = capsys.readouterr().out
    assert "confirmation: 3 further fresh seeds, not used to choose the winner" in out
    assert done.verdict.sentence() in out
    assert main(["show", str(db), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)["final"]["confirmation"]
    assert data["seeds"] == done.verdict.confirmation.seeds and len(data["rival_scores"]) == 3


def test_a_study_with_an_unknown_final_run_kind_is_refused(tmp_path):
    db = tmp_path / "k.db"
    search(DAG, evaluator=Scripted(), budget=Budget(trials=2), storage=db, workers=0,
           progress=False, final=Final(top=2, seeds=1, confirm_seeds=1))  # fmt: skip
    conn = sqlite3.connect(db)
    conn.execute("UPDATE final_runs SET data = json_set(data, '$.kind', 'confirmed') "
                 "WHERE json_extract(data, '$.kind') = 'confirmation' AND id = 2")  # fmt: skip
    conn.commit()
    conn.close()
    store = SQLiteStorage(db, read_only=True)
    with pytest.raises(StorageError) as info:
        store.get_final_runs()
    store.close()
    assert str(info.value) == (
        f"{db}: table final_runs, row 2, field 'data.kind': expected one of finalist, baseline, "
        "ablation, confirmation, got str 'confirmed'"
    )


def _usage_error(argv, capsys) -> str:
    try:
        code = main(argv)
    except SystemExit as exit_info:
        code = exit_info.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    return err.rstrip("\n")


@pytest.mark.parametrize("value", ["-1", "two", "1.5"])
def test_bad_confirm_seeds_give_one_line(value, tmp_path, capsys):
    db = tmp_path / "s.db"
    argv = ["search", DAG, "--objective", "synthetic", "--workers", "0", "--no-progress",
            "--trials", "1", "--storage", str(db), "--confirm-seeds", value]  # fmt: skip
    assert _usage_error(argv, capsys) == (
        f"autometa search: error: argument --confirm-seeds: expected an integer >= 0, got "
        f"'{value}'"
    )
    assert not db.exists()


def test_python_refuses_a_negative_confirmation():
    with pytest.raises(ValueError) as info:
        Final(confirm_seeds=-2)
    assert str(info.value) == "final confirm_seeds: expected an int >= 0, got -2"
