"""Configuration mistakes stop a search before anything is spent; failures are loud."""

from __future__ import annotations

import logging
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from _scripted_evaluators import Scripted

from autometa.cli import main
from autometa.errors import ConfigurationError, SearchFailedError, StorageError
from autometa.experiment import Budget, SQLiteStorage, TrialState, search, trial_seed
from autometa.meta import SyntheticObjective, settable_fields
from autometa.space import shipped_spaces

ROOT = Path(__file__).resolve().parents[2]
TINY = str(shipped_spaces()["tiny"])
DAG = str(shipped_spaces()["dag_cell"])
QUICK = ["--objective", "synthetic", "--workers", "0", "--no-progress", "--trials", "2"]
CODE = "import sys; from autometa.cli import main; sys.exit(main())"


def cli(*args, cwd=None):
    """``autometa ARGS`` in a fresh interpreter, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-c", CODE, *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def test_unknown_task_exits_2_with_the_closest_name_and_creates_nothing(tmp_path):
    db = tmp_path / "s.db"
    proc = cli("search", TINY, "--task", "navigation2", "--storage", str(db), "--workers", "0")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (
        "autometa search: error: unknown task family 'navigation2'. Did you mean "
        "'navigation2d'? Valid names: ant-dir, ant-vel, bandit, cartpole, halfcheetah-dir, "
        "halfcheetah-vel, navigation2d, navigation2d-sparse, pendulum, tabular-mdp\n"
    )
    assert not db.exists() and not db.parent.joinpath("runs").exists()


def test_misspelled_hyperparameter_exits_2_before_a_study_exists(tmp_path, capsys):
    space = tmp_path / "typo.yaml"
    space.write_text(Path(TINY).read_text().replace("fast_lr:", "fast_lrr:"))
    db = tmp_path / "s.db"
    for objective, owner in (("maml", "MAMLEvaluator"), ("synthetic", "SyntheticObjective")):
        args = ["search", str(space), "--objective", objective, "--storage", str(db)]
        assert main(args) == 2
        assert capsys.readouterr().err == (
            f"autometa search: error: space 'tiny' ({space}): hyperparameter 'fast_lrr' is not "
            f"a setting of {owner}. Did you mean 'fast_lr'? Valid names: "
            f"{', '.join(settable_fields())}\n"
        )
        assert not db.exists()


def test_unavailable_strategy_and_bad_options_exit_2_in_one_line(tmp_path, capsys):
    db = tmp_path / "s.db"
    assert main(["search", TINY, *QUICK, "--storage", str(db), "--strategy", "nni-policy-rl"]) == 2
    assert capsys.readouterr().err == (
        "autometa search: error: strategy 'nni-policy-rl' is unavailable: NNI 3.0's "
        "PolicyBasedRL lives in nni.nas, which needs pytorch_lightning and NNI's model-space "
        "and execution engine; it cannot be driven as an ask/tell tuner over an autometa space. "
        "Use 'nni-tpe', 'nni-evolution' or 'nni-regularized-evolution'\n"
    )
    assert main(["search", TINY, *QUICK, "--storage", str(db), "--min-iterations", "5"]) == 2
    assert capsys.readouterr().err == (
        "autometa search: error: --min-iterations apply only with --fidelity\n"
    )
    assert main(["search", TINY, *QUICK, "--storage", str(db), "--eval-option", "delay=-1"]) == 2
    assert capsys.readouterr().err == (
        "autometa search: error: argument --eval-option: `delay >= 0` and `full_fidelity >= 1` "
        "must hold, got delay=-1, full_fidelity=100\n"
    )
    assert not db.exists()


def test_python_search_checks_before_the_study_is_created(tmp_path):
    db = tmp_path / "s.db"
    with pytest.raises(ConfigurationError, match="^unknown strategy 'gaa'. Did you mean 'ga'"):
        search(TINY, strategy="gaa", evaluator=SyntheticObjective(), storage=db, workers=0)

    class NoFidelity:
        def __call__(self, graph, *, seed, device=None):
            return SyntheticObjective()(graph, seed=seed)

    from autometa.experiment import SuccessiveHalving

    message = (
        "a fidelity plan (SuccessiveHalving) calls the evaluator with meta_iterations=, which "
        "NoFidelity.__call__ does not take"
    )
    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        search(TINY, evaluator=NoFidelity(), storage=db, workers=0,
               fidelity=SuccessiveHalving(10, 90))  # fmt: skip
    assert not db.exists()


def test_changed_evaluator_settings_are_refused_then_allowed_and_recorded(tmp_path, capsys):
    db = tmp_path / "s.db"
    base = ["search", TINY, *QUICK, "--storage", str(db)]
    assert main(base) == 0
    capsys.readouterr()
    assert main([*base, "--meta-iterations", "2"]) == 2
    assert capsys.readouterr().err == (
        f"autometa search: error: SQLiteStorage({str(db)!r}): the study was scored with other "
        "evaluator settings:\n  full_fidelity: 100 -> 2\ncontinue with the new settings: "
        "allow_changes=True (--allow-changes); start over: fresh=True (--fresh); or use "
        "another storage\n"
    )
    assert main([*base, "--meta-iterations", "2", "--trials", "3", "--allow-changes"]) == 0
    assert "  trials: 3 done\n" in capsys.readouterr().out
    store = SQLiteStorage(db)
    [change] = store.get_study().settings["changes"]
    assert change["changes"] == ["full_fidelity: 100 -> 2"]
    assert [t.fidelity for t in store.get_all_trials()] == [100, 100, 2]
    store.close()
    assert main(["resume", str(db), "--trials", "4", "--workers", "0", "--no-progress"]) == 0
    assert "  trials: 4 done\n" in capsys.readouterr().out  # the new settings are the study's


def test_fresh_starts_over_only_an_autometa_study(tmp_path, capsys):
    db = tmp_path / "s.db"
    base = ["search", TINY, *QUICK, "--storage", str(db)]
    assert main(base) == 0
    assert main([*base, "--meta-iterations", "2", "--fresh"]) == 0
    assert "  trials: 2 done\n" in capsys.readouterr().out
    store = SQLiteStorage(db)
    assert [t.fidelity for t in store.get_all_trials()] == [2, 2]
    assert "changes" not in store.get_study().settings or not store.get_study().settings["changes"]
    store.close()
    other = tmp_path / "notes.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    assert main(["search", TINY, *QUICK, "--storage", str(other), "--fresh"]) == 2
    assert capsys.readouterr().err == (
        f"autometa search: error: {other}: not an autometa study; fresh=True deletes only a "
        "study file autometa created\n"
    )
    assert other.read_bytes() == before


def test_a_configuration_error_in_an_evaluation_stops_the_search(tmp_path):
    db = tmp_path / "s.db"

    class Misconfigured:
        def __call__(self, graph, *, seed, device=None, meta_iterations=None):
            raise ConfigurationError("task family 'x' is not registered in this process")

    message = (
        "task family 'x' is not registered in this process (raised by the evaluation of trial 0; "
        "the search stopped and the trial is queued again)"
    )
    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        search(TINY, evaluator=Misconfigured(), storage=db, workers=0, progress=False)
    store = SQLiteStorage(db)
    assert [t.state for t in store.get_all_trials()] == [TrialState.QUEUED]
    store.close()


def test_first_failure_of_each_kind_is_logged_in_full_and_counted(tmp_path, caplog):
    faults = {trial_seed(0, n): mode for n, mode in [(1, "raise"), (2, "raise"), (3, "oom")]}
    with caplog.at_level(logging.INFO, logger="autometa.experiment"):
        result = search(DAG, evaluator=Scripted(faults), budget=Budget(trials=5), workers=0,
                        storage=tmp_path / "s.db", progress=False)  # fmt: skip
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    first = warnings[0]
    assert first.startswith(
        "trial 1 failed: ValueError: op 'broken' cannot run on this input (at "
    )
    assert "\nTraceback (most recent call last):\n" in first
    assert first.endswith(
        "ValueError: op 'broken' cannot run on this input\n(the first failure of kind "
        "'ValueError' in this session; later ones are counted at the end)"
    )
    assert warnings[1].startswith("trial 3 failed: out of memory: MemoryError: CUDA out of")
    assert warnings[2] == "3 trial(s) failed in this session: 2 ValueError, 1 out of memory"
    assert [(k.kind, k.count, k.first) for k in result.failures] == [
        ("ValueError", 2, 1),
        ("out of memory", 1, 3),
    ]


def test_no_success_raises_in_python_and_exits_1_on_the_command_line(tmp_path):
    db = tmp_path / "f.db"
    with pytest.raises(SearchFailedError) as info:
        search(TINY, evaluator=SyntheticObjective(fail_fraction=1.0), budget=Budget(trials=2),
               storage=db, workers=0, progress=False)  # fmt: skip
    assert str(info.value) == (
        f"SQLiteStorage({str(db)!r}): no trial succeeded: 2 failed (2 synthetic failure); the "
        "first failure, trial 0: synthetic failure (fail_fraction=1.0)"
    )
    assert info.value.result.counts["FAILED"] == 2 and info.value.result.best is None
    proc = cli("search", TINY, *QUICK, "--storage", str(tmp_path / "g.db"),
               "--eval-option", "fail_fraction=1.0")  # fmt: skip
    assert proc.returncode == 1
    assert "failures (the first of each kind in full):\n  2 x synthetic failure, first trial 0: " \
        "synthetic failure (fail_fraction=1.0)\n" in proc.stdout  # fmt: skip
    err = proc.stderr.splitlines()
    assert err[0].endswith("WARNING autometa.experiment: trial 0 failed: synthetic failure "
                           "(fail_fraction=1.0)")  # fmt: skip
    assert err[-2].endswith("2 trial(s) failed in this session: 2 synthetic failure")
    assert err[-1] == (
        f"autometa search: SQLiteStorage('{tmp_path / 'g.db'}'): no trial succeeded: 2 failed "
        "(2 synthetic failure); the first failure, trial 0: synthetic failure "
        "(fail_fraction=1.0)"
    )


UNGUARDED = """
import autometa
from autometa.meta import SyntheticObjective

print("body runs")
result = autometa.search({space!r}, evaluator=SyntheticObjective(), workers=2, storage={db!r},
                         budget=autometa.Budget(trials=2), progress=False)
print("best", result.best)
"""


def test_a_script_without_main_guard_is_explained_before_anything_is_spent(tmp_path):
    db = tmp_path / "s.db"
    script = tmp_path / "unguarded.py"
    text = UNGUARDED.format(space=TINY, db=str(db))
    script.write_text(text)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=180, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 1
    # code above the call runs again in each worker as it imports the script, but no search
    assert set(proc.stdout.splitlines()) == {"body runs"}
    assert proc.stderr.count("Traceback") == 1
    assert proc.stderr.splitlines()[-1] == (
        f"autometa.errors.ConfigurationError: worker processes import {script} before they "
        "start, and it runs the search again when imported: put the script's main code under "
        '`if __name__ == "__main__":` (worker processes are started with spawn or forkserver), '
        "or pass workers=0"
    )
    assert not db.exists()


def test_strategy_mismatch_still_refused_as_before(tmp_path):
    db = tmp_path / "s.db"
    search(TINY, evaluator=SyntheticObjective(), budget=Budget(trials=1), storage=db, workers=0,
           progress=False)  # fmt: skip
    with pytest.raises(StorageError, match="the study was created with strategy 'random'"):
        search(TINY, strategy="ga", evaluator=SyntheticObjective(), storage=db, workers=0,
               progress=False)  # fmt: skip
