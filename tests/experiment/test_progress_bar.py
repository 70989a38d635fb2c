"""The progress bar: what it shows, its time estimate, and when it stays silent."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from autometa.experiment import Budget, Final, InMemoryStorage, ProgressBar, search
from autometa.experiment.budget import Usage
from autometa.experiment.progress import eta_seconds, format_seconds, planned_final_runs
from autometa.experiment.trial import TrialRecord, TrialState
from autometa.meta.synthetic import SyntheticObjective
from autometa.space import shipped_spaces

DAG = shipped_spaces()["dag_cell"]
ROOT = Path(__file__).parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
ENV.pop("CI", None)


class Tty(io.StringIO):
    def isatty(self):
        return True


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class FakeLoop:
    """What the bar reads from a search loop, set by hand."""

    def __init__(self, trials, seconds=0.0, workers=1, stage=None, final=None):
        self.trials = {t.number: t for t in trials}
        self.seconds, self.stage, self.final = seconds, stage, final
        self.winner = None
        self.executor = SimpleNamespace(capacity=workers)

    def counts(self):
        counts = dict.fromkeys(TrialState, 0)
        for t in self.trials.values():
            counts[t.state] += 1
        return counts

    def usage(self):
        spent = sum(t.metrics.get("meta_iterations_spent", 0) for t in self.trials.values())
        return Usage(trials=len(self.trials), seconds=self.seconds, meta_iterations=spent)

    def best(self):
        done = [t for t in self.trials.values() if t.state == TrialState.DONE]
        return max(done, key=lambda t: t.score, default=None)

    def final_progress(self):
        return self.stage

    def final_best(self):
        return self.winner


def trial(number, state=TrialState.DONE, score=0.5, wall=10.0, meta=100):
    return TrialRecord(number=number, state=state, key=f"k{number}", graph_json={},
                       score=score if state == TrialState.DONE else None, wall_time=wall,
                       metrics={"meta_iterations_spent": meta})  # fmt: skip


def test_wanted():
    assert ProgressBar.wanted(None, Tty()) is True
    assert ProgressBar.wanted(None, io.StringIO()) is True  # plain lines elsewhere
    assert ProgressBar.wanted(False, Tty()) is False
    assert ProgressBar.wanted(True, io.StringIO()) is True


def test_under_ci_a_terminal_gets_plain_lines(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert ProgressBar(Budget(trials=2), stream=Tty()).tty is False
    monkeypatch.delenv("CI")
    assert ProgressBar(Budget(trials=2), stream=Tty()).tty is True


def test_format_seconds():
    assert [format_seconds(s) for s in (0, 59.6, 61, 3600 + 62)] == [
        "0:00", "1:00", "1:01", "1:01:02",
    ]  # fmt: skip


def test_eta_arithmetic():
    # 10 trials budget, 4 finished in 40 s (10 s each, workers included): 6 left
    assert eta_seconds(Budget(trials=10), Usage(trials=5, seconds=40.0), 4, None) == 60.0
    # the same work done later: each trial took longer, so what is left takes longer too
    assert eta_seconds(Budget(trials=10), Usage(trials=5, seconds=60.0), 4, None) == 90.0
    # capped by the time budget: 100 s of 130 spent
    assert eta_seconds(Budget(trials=10, seconds=130), Usage(seconds=100), 4, None) == 30.0
    # meta-iterations: 1000 left at 250 per trial = 4 trials x 20 s
    usage = Usage(trials=3, meta_iterations=2000, seconds=60.0)
    assert eta_seconds(Budget(meta_iterations=3000), usage, 3, 250.0) == 80.0
    # both: the first limit reached wins
    assert eta_seconds(Budget(trials=4, meta_iterations=3000), usage, 3, 250.0) == 20.0
    # the final stage's runs come after the search, a trial's time each unless measured
    assert eta_seconds(Budget(trials=4), usage, 3, None, final_left=9) == 200.0
    assert eta_seconds(Budget(trials=4), usage, 3, None, 9, seconds_per_final_run=5.0) == 65.0
    # nothing finished yet: only a time budget says anything, and not with a final stage
    assert eta_seconds(Budget(trials=10), Usage(), 0, None) is None
    assert eta_seconds(Budget(trials=10, seconds=60), Usage(seconds=15), 0, None) == 45.0
    assert eta_seconds(Budget(trials=10, seconds=60), Usage(seconds=15), 0, None, 3) is None


def test_planned_final_runs():
    assert planned_final_runs(None, Budget(trials=10)) == 0
    assert planned_final_runs(Final(top=0), Budget(trials=10)) == 0
    assert planned_final_runs(Final(), Budget(trials=10)) == 9  # 3 finalists x 3 seeds
    assert planned_final_runs(Final(), Budget(trials=2)) == 6  # at most 2 finalists
    with_baseline = Final(top=2, seeds=2, baselines=("tanh-2x64",))
    assert planned_final_runs(with_baseline, Budget(seconds=60)) == 10  # (2 + 1 + 2 cells) x 2
    no_cells = Final(top=2, seeds=2, baselines=("tanh-2x64",), ablation=False)
    assert planned_final_runs(no_cells, Budget(seconds=60)) == 6
    confirmed = Final(top=2, seeds=2, ablation=False, confirm_seeds=3)
    assert planned_final_runs(confirmed, Budget(seconds=60)) == 10  # 2 x 2, then 2 x 3
    alone = Final(top=1, seeds=2, confirm_seeds=3)  # no rival: no confirmation
    assert planned_final_runs(alone, Budget(seconds=60)) == 2


def test_bar_renders_counts_best_and_eta_on_a_terminal(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    stream, clock = Tty(), Clock()
    bar = ProgressBar(Budget(trials=10, seconds=3600), stream=stream, clock=clock)
    trials = [
        trial(0, score=0.25),
        trial(1, score=0.75, wall=30.0),
        trial(2, TrialState.FAILED, wall=20.0),
        trial(3, TrialState.RUNNING, wall=None),
    ]
    loop = FakeLoop(trials, seconds=120.0, workers=2)
    bar.update(loop)
    line = stream.getvalue().split("\r")[-1]
    # 3 trials finished in 120 s: 40 s each; 7 left
    head = "3/10 [######--------------] | 1 failed | 1 running | best search score 0.75 (#1)"
    assert line.startswith(head)
    assert line.endswith(" | 2:00 elapsed, eta 4:40")
    clock.now, loop.seconds = 0.1, 121.0  # within min_interval: not redrawn
    bar.update(loop)
    assert stream.getvalue().split("\r")[-1] == line
    clock.now, loop.seconds = 1.0, 150.0  # no trial ended, time passed: 50 s each now
    bar.update(loop)
    assert stream.getvalue().split("\r")[-1].endswith(" | 2:30 elapsed, eta 5:50")
    loop.stage, loop.seconds = (2, 9), 156.0  # final stage: 7 runs left at a trial's 52 s
    bar.close(loop)
    text = stream.getvalue()
    assert text.endswith("final 2/9\n") and text.count("\n") == 1
    last = "\r" + head + " | 2:36 elapsed"
    assert last + ", eta 6:04 | final 2/9\n" in text


def test_the_eta_counts_the_final_stage_and_then_measures_its_runs():
    stream, clock = io.StringIO(), Clock()
    bar = ProgressBar(Budget(trials=4), stream=stream, clock=clock)
    loop = FakeLoop([trial(n) for n in range(2)], seconds=20.0, final=Final(top=2, seeds=2))
    assert bar.eta(loop) == 20.0 + 4 * 10.0  # 2 trials and 4 final runs at 10 s each
    for n in (2, 3):
        loop.trials[n] = trial(n)
    loop.seconds, loop.stage = 40.0, (0, 4)
    assert bar.eta(loop) == 4 * 10.0
    loop.seconds, loop.stage = 46.0, (2, 4)  # two runs in 6 s: 3 s each
    assert bar.eta(loop) == 2 * 3.0
    loop.seconds = 52.0  # no run ended, 6 s more: 6 s each
    assert bar.eta(loop) == 2 * 6.0


def test_plain_lines_at_each_trial_end_and_every_interval():
    stream, clock = io.StringIO(), Clock()
    bar = ProgressBar(Budget(meta_iterations=1000), stream=stream, clock=clock, line_interval=30)
    loop = FakeLoop([trial(0, wall=10.0, meta=200)], seconds=10.0)
    bar.update(loop)
    for t in (5.0, 20.0, 29.0):  # within line_interval, no trial ended: nothing more
        clock.now = t
        bar.update(loop)
    clock.now = 29.5
    loop.trials[1] = trial(1, score=0.9, wall=30.0, meta=200)
    loop.seconds = 40.0
    bar.update(loop)  # a trial ended: a line at once
    clock.now, loop.seconds = 40.0, 50.0
    bar.update(loop)
    clock.now, loop.seconds = 59.5, 70.0  # line_interval since the last line: a line
    bar.update(loop)
    bar.close(loop)
    assert "\r" not in stream.getvalue()
    assert stream.getvalue().splitlines() == [
        # 800 meta-iterations left at 200 per trial: 4 trials x 10 s
        "1 trials | 0 failed | best search score 0.5 (#0) | 0:10 elapsed, eta 0:40 | "
        "800 meta-it left",
        # 2 trials in 40 s; 600 left at 200: 3 trials x 20 s
        "2 trials | 0 failed | best search score 0.9 (#1) | 0:40 elapsed, eta 1:00 | "
        "600 meta-it left",
        # no trial ended, 30 s later: 35 s each
        "2 trials | 0 failed | best search score 0.9 (#1) | 1:10 elapsed, eta 1:45 | "
        "600 meta-it left",
        "2 trials | 0 failed | best search score 0.9 (#1) | 1:10 elapsed, eta 1:45 | "
        "600 meta-it left",
    ]


def test_bar_during_a_real_search(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    stream = Tty()
    monkeypatch.setattr("autometa.experiment.progress.sys.stderr", stream)
    result = search(DAG, evaluator=SyntheticObjective(), budget=Budget(trials=5, seconds=600),
                    storage=InMemoryStorage(), workers=0, progress=True)  # fmt: skip
    text = stream.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1 and text.startswith("\r")
    final = text.rstrip().split("\r")[-1]
    best = result.best  # the final stage's winner: the bar's last line names it so
    assert final.startswith("5/5 [####################] | 0 failed | best final mean ")
    assert f"{best.final_mean:.4g} (#{best.number}, final winner)" in final
    assert " elapsed, eta 0:00 | " in final
    assert final.endswith(" | final 9/9")  # 3 finalists x 3 fresh seeds


def test_silent_with_progress_false(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("autometa.experiment.progress.sys.stderr", stream)
    search(DAG, evaluator=SyntheticObjective(), budget=Budget(trials=2),
           storage=InMemoryStorage(), workers=0, progress=False)  # fmt: skip
    assert stream.getvalue() == ""


def test_a_real_search_with_stderr_to_a_file_prints_lines(tmp_path):
    """Trials of about 0.4 s on a worker process, a line every 0.1 s while one runs."""
    code = (
        "import sys\n"
        "from autometa.experiment import Budget, Final, ProgressBar, search\n"
        "from autometa.meta.synthetic import SyntheticObjective\n"
        "if __name__ == '__main__':\n"
        "    budget = Budget(trials=3)\n"
        "    search('tiny', evaluator=SyntheticObjective(delay=0.4), budget=budget,\n"
        "           storage=sys.argv[1], workers=1, final=Final(top=1, seeds=1),\n"
        "           progress=ProgressBar(budget, line_interval=0.1))\n"
    )
    script = tmp_path / "run.py"
    script.write_text(code)
    with open(tmp_path / "err.txt", "w") as err:
        proc = subprocess.run([sys.executable, str(script), str(tmp_path / "s.db")],
                              cwd=tmp_path, env=ENV, stderr=err, timeout=240)  # fmt: skip
    assert proc.returncode == 0
    text = (tmp_path / "err.txt").read_text()
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    assert all(" elapsed, eta " in line for line in lines), text
    heads = [line.split(" | ")[0] for line in lines]
    for done in ("1/3", "2/3", "3/3"):  # a line at each trial end
        assert done in heads
    # lines while a trial runs, between the trial ends, with an estimate once one ended
    waiting = [line for line in lines if line.startswith(("1/3 ", "2/3 ")) and " running " in line]
    assert waiting and all(", eta ?" not in line for line in waiting)
    assert any(line.startswith("3/3 ") and line.endswith(" | final 0/1") for line in lines)
    assert lines[-1].startswith("3/3 | 0 failed | best final mean ")
    assert any(" | best search score " in line for line in lines)  # during the search
    assert lines[-1].endswith(", eta 0:00 | final 1/1")


def test_the_cli_prints_lines_to_a_log_file_by_default(tmp_path):
    with open(tmp_path / "log.txt", "w") as err:
        proc = subprocess.run(
            [sys.executable, "-m", "autometa", "search", "tiny", "--objective", "synthetic",
             "--trials", "2", "--workers", "0", "--final-top", "0", "--storage", "s.db"],
            cwd=tmp_path, env=ENV, stderr=err, stdout=subprocess.PIPE, text=True, timeout=240,
        )  # fmt: skip
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[0] == "study file: s.db"
    lines = (tmp_path / "log.txt").read_text().splitlines()
    assert [line.split(" | ")[0] for line in lines][-2:] == ["2/2", "2/2"]  # the end, and close
    assert "1/2" in [line.split(" | ")[0] for line in lines]
    assert lines[-1].endswith(", eta 0:00")
