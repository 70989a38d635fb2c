"""A malformed study is one line naming the file, table, row and field, and bounded work."""

from __future__ import annotations

import json
import os
import sqlite3
import time

import pytest

from autometa.cli import main
from autometa.cli._recipe import MAX_WORKERS
from autometa.errors import StorageError
from autometa.experiment import SQLiteStorage, load_result
from autometa.experiment.storage._validate import MAX_GRAPH_EDGES, MAX_GRAPH_NODES
from autometa.space import shipped_spaces

TINY = str(shipped_spaces()["tiny"])
SEARCH = ["--objective", "synthetic", "--workers", "0", "--no-progress", "--trials", "4",
          "--final-top", "1", "--final-seeds", "1"]  # fmt: skip
RESUME = ["--workers", "0", "--no-progress", "--trials", "4"]
DEEP = "[" * 10**5 + "]" * 10**5
STATES = "0 (QUEUED), 1 (RUNNING), 2 (DONE), 3 (FAILED)"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A real 4-trial study with a final stage (synthetic objective, in this process)."""
    db = tmp_path_factory.mktemp("made") / "s.db"
    assert main(["search", TINY, *SEARCH, "--storage", str(db)]) == 0
    return db


def copy_study(source, target):
    """A consistent copy of a study file (what its WAL holds included), via SQLite's backup."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    return target


@pytest.fixture
def db(made, tmp_path):
    """A fresh copy of the study to damage."""
    return copy_study(made, tmp_path / "s.db")


def _sql(db, *statements):
    conn = sqlite3.connect(db)
    for statement in statements:
        conn.execute(*statement) if isinstance(statement, tuple) else conn.execute(statement)
    conn.commit()
    conn.close()


def _graph(db, number=0):
    conn = sqlite3.connect(db)
    (text,) = conn.execute("SELECT graph FROM trials WHERE number = ?", (number,)).fetchone()
    conn.close()
    return json.loads(text)


def _cycle(db):
    graph = _graph(db)
    graph["edges"].append({"source": "output", "target": "input", "order": 0})
    return ("UPDATE trials SET graph = ? WHERE number = 0", (json.dumps(graph),))


CASES = {
    "cycle": (_cycle, "table trials, row 0, field 'graph': not a directed acyclic graph"),
    "not-a-graph": (
        lambda db: "UPDATE trials SET graph = '[1, 2]' WHERE number = 1",
        "table trials, row 1, field 'graph': expected a node-link graph object, got list [1, 2]",
    ),
    "deep-json": (
        lambda db: ("UPDATE trials SET metrics = ? WHERE number = 2", (DEEP,)),
        "table trials, row 2, field 'metrics': JSON nested deeper than the cap of 64",
    ),
    "not-json": (
        lambda db: "UPDATE trials SET objectives = '{oops' WHERE number = 2",
        "table trials, row 2, field 'objectives': not JSON (Expecting property name enclosed "
        "in double quotes: line 1 column 2 (char 1))",
    ),
    "text-in-score": (
        lambda db: "UPDATE trials SET score = 'high' WHERE number = 3",
        "table trials, row 3, field 'score': expected a number or null, got str 'high'",
    ),
    "unknown-state": (
        lambda db: "UPDATE trials SET state = 9 WHERE number = 3",
        f"table trials, row 3, field 'state': expected one of {STATES}, 4 (PRUNED), got int 9",
    ),
    "negative-number": (
        lambda db: "UPDATE trials SET number = -1 WHERE number = 3",
        "table trials, row -1, field 'number': expected an integer >= 0, got -1",
    ),
    "gap": (
        lambda db: "UPDATE trials SET number = 7 WHERE number = 2",
        "table trials, row 3, field 'number': trial numbers must run 0, 1, 2, ... without "
        "gaps; expected 2",
    ),
    "final-run-state": (
        lambda db: "UPDATE final_runs SET state = 4",
        f"table final_runs, row 0, field 'state': expected one of {STATES}, got int 4",
    ),
    "final-run-missing-key": (
        lambda db: "UPDATE final_runs SET data = json_remove(data, '$.seed')",
        "table final_runs, row 0, field 'data.seed': missing",
    ),
    "final-run-unknown-key": (
        lambda db: "UPDATE final_runs SET data = json_set(data, '$.command', 'rm')",
        "table final_runs, row 0, field 'data': unknown key 'command'",
    ),
    "missing-column": (
        lambda db: "ALTER TABLE trials DROP COLUMN metrics",
        "table trials lacks column 'metrics'; the file is damaged or not an autometa study "
        "(it was left as it is)",
    ),
    "missing-table": (
        lambda db: "DROP TABLE final_runs",
        "table final_runs is missing; the file is damaged or not an autometa study (it was "
        "left as it is)",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_malformed_row_is_one_line_on_every_read_path(case, db, tmp_path, capsys):
    statement, message = CASES[case]
    _sql(db, statement(db))
    before = db.read_bytes()
    for argv in (["show", str(db)], ["show", str(db), "--json"],
                 ["plot", str(db), "--out", str(tmp_path / "p")],
                 ["resume", str(db), *RESUME]):  # fmt: skip
        assert main(argv) == 2, argv
        assert capsys.readouterr().err == f"autometa {argv[0]}: error: {db}: {message}\n"
    with pytest.raises(StorageError) as caught:
        load_result(db)
    assert str(caught.value) == f"{db}: {message}"
    assert db.read_bytes() == before  # refused, not repaired or migrated


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        (MAX_GRAPH_NODES + 1, f"graph of {MAX_GRAPH_NODES + 1} nodes and 0 edges is over the "
         f"cap of {MAX_GRAPH_NODES} nodes and {MAX_GRAPH_EDGES} edges"),
        (10**6, "JSON text of 18000042 characters is over the cap of 8388608"),
    ],
)  # fmt: skip
def test_a_huge_graph_is_refused_within_seconds(nodes, message, db, tmp_path, capsys):
    graph = {"directed": True, "edges": [], "nodes": [{"id": f"{i:06}"} for i in range(nodes)]}
    _sql(db, ("UPDATE trials SET graph = ? WHERE number = 1", (json.dumps(graph),)))
    for argv in (["show", str(db)], ["plot", str(db), "--out", str(tmp_path / "p")],
                 ["resume", str(db), *RESUME]):  # fmt: skip
        start = time.monotonic()
        assert main(argv) == 2
        assert time.monotonic() - start < 5, argv  # 80 s and more before the cap
        assert capsys.readouterr().err == (
            f"autometa {argv[0]}: error: {db}: table trials, row 1, field 'graph': {message}\n"
        )


def test_a_malformed_session_is_one_line(db, capsys):
    _sql(db, "UPDATE sessions SET started = 'yesterday'")
    for argv in (["show", str(db)], ["resume", str(db), *RESUME]):
        assert main(argv) == 2
        assert capsys.readouterr().err == (
            f"autometa {argv[0]}: error: {db}: table sessions, row 1, field 'started': "
            "expected a number, got str 'yesterday'\n"
        )


def _state(db):
    conn = sqlite3.connect(db)
    (text,) = conn.execute("SELECT state FROM strategy_state").fetchone()
    conn.close()
    return json.loads(text)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (["ask", 10**9, []], "strategy 'random': log entry 0 asks for 1000000000 candidates; "
         "a replay asks for 1 to 100000"),
        (["ask", 1, ["0123456789abcdef"]], "strategy 'random': replaying the state diverged at "
         "log entry 0: ask(1) gave keys ['3ad878be832cc012'], the state recorded "
         "['0123456789abcdef']"),
        (["run", "os.system"], "strategy 'random': log entry 0 is malformed: ['run', "
         "'os.system']"),
    ],
)  # fmt: skip
def test_a_stored_strategy_log_is_bounded_and_checked(entry, message, db, capsys):
    state = _state(db)
    state["log"][0] = entry
    _sql(db, ("UPDATE strategy_state SET state = ?", (json.dumps(state),)))
    before = db.read_bytes()
    start = time.monotonic()
    assert main(["resume", str(db), *RESUME]) == 2
    assert time.monotonic() - start < 5
    assert capsys.readouterr().err == (
        f"autometa resume: error: {db}: table strategy_state, row 1, field 'state': {message}\n"
    )
    assert db.read_bytes() == before  # refused before the study was claimed: not a session


@pytest.mark.parametrize(
    ("value", "problem"),
    [("'x'", "expected an integer, got str 'x'"),
     ("99", "expected the seed the study's data records (0), got 99")],
)  # fmt: skip
def test_a_study_seed_column_that_disagrees_is_one_line(value, problem, db, tmp_path, capsys):
    """New trials' seeds are drawn from the ``seed`` column: it must be the recorded seed."""
    _sql(db, f"UPDATE study SET seed = {value}")
    before = db.read_bytes()
    for argv in (["show", str(db)], ["resume", str(db), *RESUME]):
        assert main(argv) == 2, argv
        assert capsys.readouterr().err == (
            f"autometa {argv[0]}: error: {db}: table study, row 1, field 'seed': {problem}\n"
        )
    assert db.read_bytes() == before


@pytest.mark.parametrize(
    ("blob", "problem"),
    [
        (b"garbage", "not safetensors (its header length does not fit the blob)"),
        ((10**9).to_bytes(8, "little") + b"{}", "not safetensors (its header length does "
         "not fit the blob)"),
        ((2).to_bytes(8, "little") + b"[]", "not safetensors (its header is not a JSON object)"),
        ((40).to_bytes(8, "little") + b'{"w":{"dtype":"F32","data_offsets":[0,99]}}'[:40],
         "not safetensors (its header is not JSON)"),
    ],
)  # fmt: skip
def test_weights_that_are_not_safetensors_are_one_line(blob, problem, db, tmp_path, capsys):
    _sql(db, ("INSERT INTO weights VALUES (3, 'safetensors', ?)", (blob,)))
    assert main(["export", str(db), str(tmp_path / "out"), "--trial", "3"]) == 2
    assert capsys.readouterr().err == (
        f"autometa export: error: {db}: table weights, row 3, field 'data': {problem}\n"
    )
    assert not (tmp_path / "out").exists()


def _settings(db, **cli):
    conn = sqlite3.connect(db)
    (text,) = conn.execute("SELECT data FROM study").fetchone()
    data = json.loads(text)
    data["settings"]["cli"].update(cli)
    conn.execute("UPDATE study SET data = ?", (json.dumps(data),))
    conn.commit()
    conn.close()


def test_a_stored_worker_count_is_capped_unless_given_again(db, capsys):
    _settings(db, workers=10**6)
    assert main(["resume", str(db), "--no-progress", "--trials", "4"]) == 2
    assert capsys.readouterr().err == (
        f"autometa resume: error: {db}: table study, row 1, field 'settings.cli.workers': "
        f"1000000 workers is over the cap of {MAX_WORKERS} (4 per CPU of this machine) for a "
        "stored setting; pass --workers N to choose\n"
    )
    assert main(["resume", str(db), *RESUME]) == 0


def test_a_stored_setting_of_the_wrong_type_is_one_line(db, capsys):
    _settings(db, seeds="many")
    assert main(["resume", str(db), *RESUME]) == 2
    assert capsys.readouterr().err == (
        f"autometa resume: error: {db}: table study, row 1, field 'settings.cli.seeds': "
        "expected an int >= 1, got 'many'\n"
    )


def test_a_stored_log_folder_outside_the_study_is_not_used(db, tmp_path, capsys):
    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere" / "tb"
    _settings(db, log=[f"tensorboard:{elsewhere}", "mlflow:http://collector.invalid:5000"])
    assert main(["resume", str(db), *RESUME]) == 0
    err = capsys.readouterr().err.splitlines()
    home = db.resolve().parent
    assert err == [
        f"autometa resume: warning: {db}: not logging to the stored --log {target} (outside "
        f"the study's folder {home}); pass --log {target} to log there"
        for target in (f"tensorboard:{elsewhere}", "mlflow:http://collector.invalid:5000")
    ]
    assert not elsewhere.parent.exists()


def test_a_stored_evaluator_option_it_rejects_names_the_study(db, capsys):
    _settings(db, eval_options={"bogus": 1})
    assert main(["resume", str(db), *RESUME]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"autometa resume: error: {db}: table study, row 1, field 'settings.cli': "
        "unknown synthetic objective option(s) 'bogus'"
    )
    assert len(err.splitlines()) == 1


def test_a_study_in_use_is_refused_as_in_use_before_its_state_is_read(db, capsys):
    """The claim's refusal comes first: a live holder is named, although the (crafted) state
    would be refused too, and nothing is written."""
    holder = SQLiteStorage(db)
    holder.start_session(heartbeat=60.0)
    _sql(db, ("UPDATE strategy_state SET state = ?", ('{"log": 5}',)))
    before = db.read_bytes()
    try:
        assert main(["resume", str(db), *RESUME]) == 2
    finally:
        holder.close()
    err = capsys.readouterr().err
    assert err.startswith(f"autometa resume: error: {db} is in use by pid {os.getpid()} on ")
    assert "--take-over" in err and err.count("\n") == 1
    assert db.read_bytes() == before
