"""What reads print or write from a study is safe to open: CSV cells a spreadsheet would run
as formulas are escaped, and ``show --json`` is strict JSON."""

from __future__ import annotations

import csv
import json
import sqlite3

import pytest

from autometa.cli import main
from autometa.export._table import safe_cell
from autometa.space import shipped_spaces

TINY = str(shipped_spaces()["tiny"])
SEARCH = ["--objective", "synthetic", "--workers", "0", "--no-progress", "--trials", "3",
          "--final-top", "1", "--final-seeds", "1"]  # fmt: skip
VALUES = {"=name": "x", "l0.activation": "=HYPERLINK(\"http://x.invalid\")", "neg": -3,
          "negtext": "-4.5", "tab": "\tx", "cr": "\rx", "at": "@SUM(A1)",
          "plus": "+1+2"}  # fmt: skip


@pytest.fixture
def study(tmp_path):
    db = tmp_path / "s.db"
    assert main(["search", TINY, *SEARCH, "--storage", str(db)]) == 0
    conn = sqlite3.connect(db)
    conn.execute(
        "UPDATE trials SET error = '=cmd|'' /C calc''!A0', device = '-2+3', "
        'decision_values = ?, metrics = \'{"loss": 1e999, "seed_scores": [-1.5]}\' '
        "WHERE number = 0",
        (json.dumps(VALUES),),
    )
    conn.commit()
    conn.close()
    return db


@pytest.mark.parametrize(
    ("text", "cell"),
    [("=1+2", "'=1+2"), ("+1", "+1"), ("-1.5", "-1.5"), ("-1e-3", "-1e-3"), ("-2+3", "'-2+3"),
     ("@A1", "'@A1"), ("\tx", "'\tx"), ("\rx", "'\rx"), ("plain", "plain"), ("", ""),
     ("+cmd", "'+cmd"), ("-", "'-")],
)  # fmt: skip
def test_safe_cell_escapes_formulas_only(text, cell):
    assert safe_cell(text) == cell


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_show_csv_and_plot_escape_formula_cells(study, tmp_path, capsys):
    for argv, path in (
        (["show", str(study), "--csv", str(tmp_path / "t.csv")], tmp_path / "t.csv"),
        (["plot", str(study), "--out", str(tmp_path / "p")], tmp_path / "p" / "trials.csv"),
    ):
        assert main(argv) == 0
        header, *rows = _rows(path)
        row = dict(zip(header, next(r for r in rows if r[0] == "0")))
        assert row["error"] == "'=cmd|' /C calc'!A0"
        assert row["device"] == "'-2+3"
        assert row["value.=name"] == "x"  # a column name starts with 'value.': no formula
        assert row["value.l0.activation"] == '\'=HYPERLINK("http://x.invalid")'
        assert (row["value.neg"], row["value.negtext"]) == ("-3", "-4.5")  # numbers stay
        assert (row["value.tab"], row["value.cr"]) == ("'\tx", "'\rx")
        assert (row["value.at"], row["value.plus"]) == ("'@SUM(A1)", "'+1+2")
        assert float(row["score"]) < 0 and not row["score"].startswith("'")
        assert row["seed_scores"] == "[-1.5]"
    capsys.readouterr()


def _strict(text):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_show_json_is_strict(study, capsys):
    assert main(["show", str(study), "--json", "--top", "0"]) == 0
    data = _strict(capsys.readouterr().out)
    trial = next(t for t in data["trials"] if t["number"] == 0)
    assert trial["metrics"]["loss"] is None  # 1e999 reads as infinity: printed as null
    assert trial["error"] == "=cmd|' /C calc'!A0"  # JSON output is not a spreadsheet
    [entry] = data["final"]["entries"]
    assert entry["low"] is None and entry["high"] is None  # one seed: no interval
