"""The progress bar: what it shows, its time estimate, and when it stays silent."""

from __future__ import annotations

import io
from types import SimpleNamespace

from autometa.experiment import Budget, InMemoryStorage, ProgressBar, search
from autometa.experiment.budget import Usage
from autometa.experiment.progress import eta_seconds, format_seconds
from autometa.experiment.trial import TrialRecord, TrialState
from autometa.meta.synthetic import SyntheticObjective
from autometa.space import shipped_spaces

DAG = shipped_spaces()["dag_cell"]


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

    def __init__(self, trials, seconds=0.0, workers=1, final=None):
        self.trials = {t.number: t for t in trials}
        self.seconds, self.final = seconds, final
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
        return self.final


def trial(number, state=TrialState.DONE, score=0.5, wall=10.0, meta=100):
    return TrialRecord(number=number, state=state, key=f"k{number}", graph_json={},
                       score=score if state == TrialState.DONE else None, wall_time=wall,
                       metrics={"meta_iterations_spent": meta})  # fmt: skip


def test_wanted(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert ProgressBar.wanted(None, Tty()) is True
    assert ProgressBar.wanted(None, io.StringIO()) is False  # not a terminal
    assert ProgressBar.wanted(False, Tty()) is False
    assert ProgressBar.wanted(True, io.StringIO()) is True
    monkeypatch.setenv("CI", "true")
    assert ProgressBar.wanted(None, Tty()) is False


def test_format_seconds():
    assert [format_seconds(s) for s in (0, 59.6, 61, 3600 + 62)] == [
        "0:00", "1:00", "1:01", "1:01:02",
    ]  # fmt: skip


def test_eta_arithmetic():
    durations = [10.0, 20.0, 90.0]  # median 20 s
    # 10 trials budget, 4 finished: 6 left x 20 s / 2 workers
    assert eta_seconds(Budget(trials=10), Usage(trials=5), 4, durations, None, 2) == 60.0
    # capped by the time budget: 100 s of 130 spent
    assert (
        eta_seconds(Budget(trials=10, seconds=130), Usage(seconds=100), 4, durations, None, 2)
        == 30.0
    )  # noqa: E501
    # meta-iterations: 1000 left at 250 per trial = 4 trials x 20 s / 1 worker
    usage = Usage(trials=3, meta_iterations=2000)
    assert eta_seconds(Budget(meta_iterations=3000), usage, 3, durations, 250.0, 1) == 80.0
    # both: the first limit reached wins
    assert (
        eta_seconds(Budget(trials=4, meta_iterations=3000), usage, 3, durations, 250.0, 1) == 20.0
    )  # noqa: E501
    # nothing finished yet: only a time budget says anything
    assert eta_seconds(Budget(trials=10), Usage(), 0, [], None, 4) is None
    assert eta_seconds(Budget(trials=10, seconds=60), Usage(seconds=15), 0, [], None, 4) == 45.0


def test_bar_renders_counts_best_and_eta_on_a_terminal():
    stream, clock = Tty(), Clock()
    bar = ProgressBar(Budget(trials=10, seconds=3600), stream=stream, clock=clock)
    trials = [
        trial(0, score=0.25),
        trial(1, score=0.75, wall=30.0),
        trial(2, TrialState.FAILED, wall=20.0),
        trial(3, TrialState.RUNNING, wall=None),
    ]
    loop = FakeLoop(trials, seconds=125.0, workers=2)
    bar.update(loop)
    clock.now = 0.1  # within min_interval: not redrawn
    loop.seconds = 126.0
    bar.update(loop)
    line = stream.getvalue().split("\r")[-1]
    # 7 trials left x median 20 s / 2 workers = 70 s
    assert line.startswith("3/10 [######--------------] | 1 failed | 1 running | best 0.75 (#1)")
    assert line.endswith(" | 2:05 elapsed, eta 1:10")
    loop.final = (2, 9)
    bar.close(loop)
    text = stream.getvalue()
    assert text.endswith("final 2/9\n") and text.count("\n") == 1
    last = "\r3/10 [######--------------] | 1 failed | 1 running | best 0.75 (#1) | 2:06 elapsed"
    assert last + " | final 2/9\n" in text


def test_plain_lines_when_not_a_terminal():
    stream, clock = io.StringIO(), Clock()
    bar = ProgressBar(Budget(meta_iterations=1000), stream=stream, clock=clock, line_interval=30)
    loop = FakeLoop([trial(0, wall=10.0, meta=200)], seconds=10.0)
    bar.update(loop)
    for t in (5.0, 20.0, 29.0):  # within line_interval: nothing more
        clock.now = t
        bar.update(loop)
    clock.now = 31.0
    loop.trials[1] = trial(1, score=0.9, wall=30.0, meta=200)
    loop.seconds = 40.0
    bar.update(loop)
    bar.close(loop)
    assert "\r" not in stream.getvalue()
    assert stream.getvalue().splitlines() == [
        # 800 meta-iterations left at 200 per trial: 4 trials x 10 s
        "1 trials | 0 failed | best 0.5 (#0) | 0:10 elapsed, eta 0:40 | 800 meta-it left",
        # median of 10 s and 30 s: 20 s; 600 left at 200: 3 trials
        "2 trials | 0 failed | best 0.9 (#1) | 0:40 elapsed, eta 1:00 | 600 meta-it left",
        "2 trials | 0 failed | best 0.9 (#1) | 0:40 elapsed, eta 1:00 | 600 meta-it left",
    ]


def test_bar_during_a_real_search(monkeypatch):
    stream = Tty()
    monkeypatch.setattr("autometa.experiment.progress.sys.stderr", stream)
    result = search(DAG, evaluator=SyntheticObjective(), budget=Budget(trials=5, seconds=600),
                    storage=InMemoryStorage(), workers=0, progress=True)  # fmt: skip
    text = stream.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1 and text.startswith("\r")
    final = text.rstrip().split("\r")[-1]
    assert final.startswith("5/5 [####################] | 0 failed | best ")
    assert f"(#{result.best.number})" in final and " elapsed | " in final
    assert final.endswith(" | final 9/9")  # 3 finalists x 3 fresh seeds


def test_silent_when_not_a_terminal(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("autometa.experiment.progress.sys.stderr", stream)
    search(DAG, evaluator=SyntheticObjective(), budget=Budget(trials=2),
           storage=InMemoryStorage(), workers=0)  # fmt: skip
    assert stream.getvalue() == ""
