"""The final stage's verdict sentence and the one definition of best, on fixed per-seed scores.

Scores are written into a real in-memory study as finished final runs, then read back with
``verdict``; each sentence variant is checked whole.
"""

from __future__ import annotations

import pytest
from scipy import stats

from autometa.experiment import InMemoryStorage
from autometa.experiment._best import FINAL, SEARCH, best_of, choose_best, ranked
from autometa.experiment._stats import holm, seeds_needed
from autometa.experiment._verdict import mean_ci, verdict
from autometa.experiment.trial import FinalRun, TrialState
from autometa.testing.storage import make_study, make_trial


def stage(table: dict[str, list[float]], search: dict[int, float] | None = None):
    """A study whose trials have the given search scores and whose final stage the given
    per-seed scores (labels ``trial N`` are finalists, ``baseline X`` baselines)."""
    store = InMemoryStorage()
    store.create_study(make_study())
    for number, score in sorted((search or {}).items()):
        (trial,) = store.create_trials([make_trial(f"k{number}")])
        store.update_trial(trial.number, state=TrialState.RUNNING)
        store.update_trial(trial.number, state=TrialState.DONE, score=score)
    runs = []
    for label, scores in table.items():
        kind, _, name = label.partition(" ")
        trial = int(name) if kind == "trial" else None
        kind = "finalist" if kind == "trial" else kind
        runs += [FinalRun(-1, label, kind, trial, f"key {label}", {}, i, 1000 + i)
                 for i in range(len(scores))]  # fmt: skip
    for run in store.create_final_runs(runs):
        store.update_final_run(run.id, state=TrialState.RUNNING)
        store.update_final_run(
            run.id, state=TrialState.DONE, score=table[run.entry][run.seed_index]
        )
    return store


def test_beats_only_when_the_interval_excludes_zero():
    result = verdict(stage({"trial 0": [10, 11, 12, 13], "baseline b": [0, 1, 2, 3.5]}))
    (margin,) = result.margins
    assert margin.decided and margin.low > 0
    assert result.sentence() == (
        "trial 0 scores 11.50 (95% CI 9.45 to 13.55, 4 fresh seeds); paired on the same seeds "
        "(one comparison), it beats baseline b by 9.88 (95% CI of the difference +9.48 to "
        "+10.27)."
    )


def test_an_interval_holding_zero_says_the_seeds_cannot_tell_and_how_many_would():
    result = verdict(stage({"trial 0": [5, 1, 6, 0], "baseline b": [2, 2, 4, 2]}))
    (margin,) = result.margins
    assert not margin.decided and margin.low < 0 < margin.high
    # the paired t estimate at 95% and 80% power, checked against its definition
    n = margin.seeds_needed
    d, s = margin.difference, margin.spread
    t = stats.t.ppf(0.975, n - 1) + stats.t.ppf(0.8, n - 1)
    assert (t * s / d) ** 2 <= n < (t * s / d) ** 2 + 1 and n == 180
    assert result.sentence() == (
        "trial 0 scores 3.00 (95% CI -1.68 to 7.68, 4 fresh seeds); paired on the same seeds "
        "(one comparison), the seeds cannot tell it apart from baseline b (difference "
        f"+0.50, 95% CI of the difference -3.29 to +4.29; about {n:,} seeds would be needed "
        "at the observed spread (paired t-test, 80% power, at this level))."
    )


def test_holm_turns_two_unadjusted_wins_into_no_verdict():
    # each difference alone has p between 0.025 and 0.05: a 95% interval excludes zero,
    # but Holm's first step needs p < 0.025, so neither is a win
    table = {"trial 0": [3.0, 5.0, 4.0, 6.0],
             "baseline a": [0.0, 4.5, 1.5, 4.0], "baseline b": [0.5, 3.0, 3.5, 3.0]}  # fmt: skip
    for other in ("baseline a", "baseline b"):
        diffs = [w - o for w, o in zip(table["trial 0"], table[other])]
        assert mean_ci(diffs)[1] > 0  # unadjusted: "beats"
    result = verdict(stage(table))
    assert [m.decided for m in result.margins] == [False, False]
    assert [m.level for m in result.margins] == [0.975, 0.975]
    assert [m.seeds_needed for m in result.margins] == [5, 5]
    assert result.sentence() == (
        "trial 0 scores 4.50 (95% CI 2.45 to 6.55, 4 fresh seeds); paired on the same seeds, "
        "with Holm's adjustment over 2 comparisons (at most a 5% chance of any false claim), "
        "the seeds cannot tell it apart from baseline a (difference +2.00, 97.5% CI of the "
        "difference -0.26 to +4.26; about 5 seeds would be needed at the observed "
        "spread (paired t-test, 80% power, at this level)); the seeds cannot tell it apart "
        "from baseline b (difference +2.00, 97.5% CI of the difference -0.26 to +4.26; about "
        "5 seeds would be needed at the observed spread (paired t-test, 80% power, "
        "at this level))."
    )


def test_holm_step_down_levels():
    assert holm([0.01, 0.04]) == [(True, 0.975), (True, 0.95)]
    assert holm([0.04, 0.03]) == [(False, 0.975), (False, 0.975)]
    assert holm([0.001, 0.2, 0.03]) == [(True, 1 - 0.05 / 3), (False, 0.975), (False, 0.975)]
    assert seeds_needed(0.0, 1.0, 0.95) is None


def test_several_finalists_make_the_winner_optimistic_and_all_are_compared():
    store = stage(
        {"trial 0": [1, 2, 3], "trial 1": [4, 5, 7], "baseline b": [0, 0, 1]},
        search={0: 9.0, 1: 8.0},
    )
    result = verdict(store)
    assert result.winner.label == "trial 1" and result.ranks() == {"trial 1": 1, "trial 0": 2}
    assert {m.other for m in result.margins} == {"trial 0", "baseline b"}
    assert result.sentence().startswith(
        "trial 1 scores 5.33 (95% CI 1.54 to 9.13, 3 fresh seeds; optimistic, since it was "
        "chosen as the best of 2 finalists on these same seeds); paired on the same seeds, "
        "with Holm's adjustment over 2 comparisons"
    )
    # one definition of best: the final winner, not the top search score
    best = best_of(store)
    assert best.number == 1 and best.basis == FINAL and best.value == pytest.approx(16 / 3)
    assert best.search_score == 8.0 and best.trial.final_mean == pytest.approx(16 / 3)
    assert best.label == "best (final stage winner, final mean over 3 fresh seeds)"
    assert store.get_best_trial().number == 1
    assert [t.number for t in ranked(store.get_all_trials(), result)] == [1, 0]


def test_before_the_final_stage_finishes_the_best_is_the_search_score():
    store = stage({}, search={0: 9.0, 1: 8.0})
    best = best_of(store)
    assert best.number == 0 and best.basis == SEARCH and best.value == 9.0
    assert best.label == "best so far (search score)"
    runs = store.create_final_runs([FinalRun(-1, "trial 1", "finalist", 1, "k", {}, 0, 7)])
    assert runs[0].state == TrialState.QUEUED
    best = choose_best(store.get_all_trials(), verdict(store))
    assert best.number == 0
    assert best.label == "best so far (search score; the final stage is not finished)"
    assert best.describe() == (
        "trial 0: best so far (search score; the final stage is not finished) 9"
    )
