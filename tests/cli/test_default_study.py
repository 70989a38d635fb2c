"""Commands without a study path use the one ``autometa search`` stored in ``runs/``.

``search`` without ``--storage`` writes ``runs/<space>-<strategy>-seed<seed>.db`` and says
so on its first line; ``show``, ``plot``, ``export`` and ``resume`` then find it. With two
studies there they list both and ask for one; with none they say so (exit code 2, one line).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from autometa.cli import main
from autometa.cli._main import build_parser

QUICK = ["--objective", "synthetic", "--workers", "0", "--no-progress", "--final-top", "0"]


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_search_names_its_file_first_and_the_other_commands_find_it(here, capsys):
    assert main(["search", "tiny", "--trials", "2", *QUICK]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "study file: runs/tiny-random-seed0.db"
    assert main(["show"]) == 0
    assert (
        capsys.readouterr().out.splitlines()[0]
        == "study: SQLiteStorage('runs/tiny-random-seed0.db')"
    )
    assert main(["plot", "--out", "pics"]) == 0
    assert "pics/trials.csv" in capsys.readouterr().out.splitlines()
    assert main(["resume", "--trials", "3", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "study file: runs/tiny-random-seed0.db"
    assert "trials: 3 done" in out
    # the synthetic objective keeps no weights: export reached the study's best trial
    assert main(["export", "best", "--no-onnx", "--no-torchscript"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("autometa export: error: trial ")
    assert err.endswith(" has no stored weights (the evaluator did not return a state_dict, "
                        "or the search did not keep weights)\n")  # fmt: skip


def test_several_studies_are_listed_by_name_and_the_user_names_one(here, capsys):
    for seed in ("1", "2"):
        assert main(["search", "tiny", "--trials", "1", "--seed", seed, *QUICK]) == 0
    (here / "runs" / "notes.db").write_bytes(b"not sqlite at all, just text" * 10)
    capsys.readouterr()
    for command in (["show"], ["plot"], ["export", "out"], ["resume"]):
        assert main(command) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert len(captured.err.splitlines()) == 1, captured.err
        line = captured.err.strip()
        assert line.startswith(
            f"autometa {command[0]}: error: no study given and runs/ holds 3: runs/notes.db "
            "(not a readable study, changed "
        )
        assert "); runs/tiny-random-seed1.db (1 trial, changed " in line
        assert "); runs/tiny-random-seed2.db (1 trial, changed " in line
        assert line.index("seed1.db") < line.index("seed2.db")
        assert line.endswith(f"; name one, e.g. autometa {command[0]} runs/notes.db")
    assert not (here / "out").exists()
    assert main(["show", "runs/tiny-random-seed1.db"]) == 0


def test_without_a_study_the_commands_say_where_they_looked(here, capsys):
    for command in (["show"], ["plot"], ["export", "out"], ["resume"]):
        assert main(command) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err == (
            f"autometa {command[0]}: error: no study given and none in runs/ (where "
            "`autometa search` stores one without --storage); give the study's file: "
            f"autometa {command[0]} STUDY.db\n"
        )
    assert not (here / "runs").exists()  # looking creates nothing


def test_listing_reads_a_study_without_writing_it(here, capsys):
    runs = here / "runs"
    runs.mkdir()
    for name in ("a.db", "b.db"):
        connection = sqlite3.connect(runs / name)
        connection.execute("CREATE TABLE trials (number INTEGER)")
        connection.executemany("INSERT INTO trials VALUES (?)", [(0,), (1,)])
        connection.commit()
        connection.close()
    before = {p.name: p.read_bytes() for p in runs.iterdir()}
    assert main(["show"]) == 2
    assert "runs/a.db (2 trials, changed " in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in runs.iterdir()} == before
    assert sorted(p.name for p in Path(runs).iterdir()) == ["a.db", "b.db"]


@pytest.mark.parametrize(
    ("argv", "storage", "out"),
    [
        (["export", "s.db", "--best", "out"], "s.db", "out"),
        (["export", "--best", "s.db", "out"], "s.db", "out"),
        (["export", "s.db", "out", "--trial", "3"], "s.db", "out"),
        (["export", "--trial", "3", "out"], None, "out"),
        (["export", "out"], None, "out"),
    ],
)
def test_export_takes_its_optional_study_before_or_among_the_options(argv, storage, out):
    args = build_parser(argv).parse_args(argv)
    assert (args.storage, str(args.out_dir)) == (storage, out)
