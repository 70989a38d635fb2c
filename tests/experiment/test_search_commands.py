"""``autometa search``, ``resume`` and ``show`` as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from autometa.cli import main
from autometa.experiment import Budget, InMemoryStorage, SQLiteStorage, TrialState, search
from autometa.meta.synthetic import SyntheticObjective
from autometa.space import shipped_spaces

DAG = str(shipped_spaces()["dag_cell"])
QUICK = ["--objective", "synthetic", "--workers", "0", "--no-progress"]


def test_search_resume_show(tmp_path, capsys):
    db = tmp_path / "study.db"
    assert main(["search", DAG, *QUICK, "--trials", "4", "--storage", str(db), "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        f"study file: {db}\nstopped: trials budget reached (4)\nstudy: SQLiteStorage("
    )
    assert "  trials: 4 done\n" in out and "rank  trial  state  search score" in out

    assert main(["resume", str(db), "--trials", "7"]) == 0
    assert "  trials: 7 done\n" in capsys.readouterr().out
    straight = search(DAG, evaluator=SyntheticObjective(), budget=Budget(trials=7), seed=2,
                      storage=InMemoryStorage(), workers=0, progress=False)  # fmt: skip
    stored = SQLiteStorage(db)
    assert [t.key for t in stored.leaderboard()] == [t.key for t in straight.trials]
    assert stored.get_study().settings["cli"]["seed"] == 2
    stored.close()

    assert main(["show", str(db), "--top", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    more = lines.index("... 5 more (--top 0 shows all)")
    assert lines[more - 2].startswith("1     ")  # rank 1 first
    assert lines[more + 2].startswith("final stage: fresh seeds, the same for every entry; rank:")
    assert main(["show", str(db), "--json", "--top", "0"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["counts"]["DONE"] == 7 and len(data["trials"]) == 7
    assert data["trials"][0]["score"] == max(t["score"] for t in data["trials"])


def test_multi_fidelity_from_the_cli(tmp_path, capsys):
    db = tmp_path / "sh.db"
    args = ["search", DAG, *QUICK, "--trials", "9", "--storage", str(db), "--fidelity",
            "successive-halving", "--meta-iterations", "90", "--min-iterations", "10"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "trials: 1 done, 8 pruned" in out and "270 meta-iterations" in out


def test_bad_input_exits_2(tmp_path, capsys):
    assert main(["search", str(tmp_path / "missing.yaml"), *QUICK]) == 2
    assert "missing.yaml" in capsys.readouterr().err
    db = str(tmp_path / "x.db")
    assert main(["search", DAG, *QUICK, "--storage", db, "--option", "populaton=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("autometa search: error: strategy 'random' got an unknown option")
    assert main(["show", str(tmp_path / "none.db")]) == 2
    assert "none.db: no such study database" in capsys.readouterr().err


def test_resume_a_study_started_from_python(tmp_path, capsys):
    db = tmp_path / "py.db"
    objective = SyntheticObjective(optimum_depth=2, noise=0.0)
    options = {"strategy": "ga", "evaluator": objective, "workers": 0, "seed": 4,
               "strategy_options": {"population_size": 4}, "progress": False}  # fmt: skip
    first = search(DAG, budget=Budget(trials=3), storage=db, **options)
    first.storage.close()
    assert main(["resume", str(db), "--trials", "6", "--workers", "0", "--no-progress"]) == 0
    assert "  trials: 6 done\n" in capsys.readouterr().out

    other = tmp_path / "straight.db"
    straight = search(DAG, budget=Budget(trials=6), storage=other, **options)
    resumed = SQLiteStorage(db)
    assert [t.key for t in resumed.get_all_trials()] == [
        t.key for t in straight.storage.get_all_trials()
    ]
    assert [t.score for t in resumed.get_all_trials()] == [
        t.score for t in straight.storage.get_all_trials()
    ]
    resumed.close()
    straight.storage.close()


def test_resume_refuses_an_unregistered_evaluator(tmp_path, capsys):
    db = tmp_path / "py.db"
    search(DAG, evaluator=_PlainEvaluator(), budget=Budget(trials=1), storage=db, workers=0,
           progress=False)  # fmt: skip
    assert main(["resume", str(db)]) == 2
    assert capsys.readouterr().err == (
        f"autometa resume: error: {db}: the study's evaluator '{__name__}:_PlainEvaluator' "
        "was not registered when the study was created; resume it from Python by calling "
        "autometa.search(...) on this storage with the same object\n"
    )


class _PlainEvaluator:
    """An evaluator without ``from_config``: only Python can resume its study."""

    def __call__(self, graph, *, seed=0, device=None, meta_iterations=None):
        return SyntheticObjective()(graph, seed=seed)


def test_all_failed_exits_1(tmp_path, capsys):
    args = ["search", DAG, *QUICK, "--trials", "2", "--storage", str(tmp_path / "f.db"),
            "--eval-option", "fail_fraction=1.0"]  # fmt: skip
    assert main(args) == 1
    assert "trials: 2 failed" in capsys.readouterr().out


def test_ctrl_c_exits_130_and_resume_finishes(tmp_path):
    db = tmp_path / "int.db"
    # A shell started in the background (``cmd &``, nohup) hands its children SIGINT ignored;
    # the search is started as a terminal would start it, with Python's own handler.
    start = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
             "from autometa.cli import main; sys.exit(main())")  # fmt: skip
    cmd = [sys.executable, "-c", start,
           "search", DAG, "--objective", "synthetic", "--eval-option", "delay=0.3",
           "--trials", "30", "--workers", "2", "--storage", str(db)]  # fmt: skip
    # 30 trials of 0.3 s on 2 workers take 4.5 s: Ctrl-C lands mid-search even on a busy machine
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True)
    seen = []
    for line in proc.stderr:  # stderr is not a terminal: a plain progress line per trial
        seen.append(line)
        done = line.split("/", 1)[0].strip()
        if done.isdigit() and int(done) >= 2:
            break
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, rest = proc.communicate(timeout=60)
    err = "".join(seen) + rest
    assert proc.returncode == 130, err
    assert f"continue with `autometa resume {db}`" in err
    store = SQLiteStorage(db)
    states = [t.state for t in store.get_all_trials()]
    assert TrialState.RUNNING not in states and 2 <= states.count(TrialState.DONE) < 30
    store.close()
    resumed = subprocess.run(
        [*cmd[:3], "resume", str(db), "--workers", "0", "--no-progress"], capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "trials: 30 done" in resumed.stdout
