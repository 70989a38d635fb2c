"""The progress bar: what it shows, and when it stays silent."""

from __future__ import annotations

import io

from autometa.experiment import Budget, InMemoryStorage, ProgressBar, search
from autometa.experiment.progress import format_seconds
from autometa.meta.synthetic import SyntheticObjective
from autometa.space import shipped_spaces

DAG = shipped_spaces()["dag_cell"]


class Tty(io.StringIO):
    def isatty(self):
        return True


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


def test_bar_draws_on_one_line(monkeypatch):
    stream = Tty()
    monkeypatch.setattr("autometa.experiment.progress.sys.stderr", stream)
    result = search(DAG, evaluator=SyntheticObjective(), budget=Budget(trials=5, seconds=600),
                    storage=InMemoryStorage(), workers=0, progress=True)  # fmt: skip
    text = stream.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1 and text.startswith("\r")
    final = text.rstrip().split("\r")[-1]
    assert final.startswith("[####################] 5/5 | 0 failed | best ")
    assert f"(#{result.best.number})" in final and " elapsed, " in final
    assert final.endswith(" left | final 9/9")  # 3 finalists x 3 fresh seeds


def test_silent_when_not_a_terminal(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("autometa.experiment.progress.sys.stderr", stream)
    search(DAG, evaluator=SyntheticObjective(), budget=Budget(trials=2),
           storage=InMemoryStorage(), workers=0)  # fmt: skip
    assert stream.getvalue() == ""
