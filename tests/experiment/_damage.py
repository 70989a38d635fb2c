"""Ways to damage a real study file, for the tests that read damaged studies (tests only)."""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path

TABLES = {
    "trials": "number",
    "final_runs": "id",
    "study": "id",
    "strategy_state": "id",
    "sessions": "id",
    "weights": "number",
}

# Values a crafted row may hold in any column.
ODD_VALUES = [
    None, -1, 0, 7, 2**62, -(2**62), 1.5, float("inf"), float("-inf"), "", "text", "=cmd|x",
    "[1, 2", "{}", "[]", "null", "true", '"s"', "-5", "NaN", "Infinity", b"\x00\xff blob",
    "[" * 5000 + "]" * 5000, json.dumps({"nodes": "x"}),
]  # fmt: skip


# Stand-ins for JSON nested deeper than Python's json module can write, put in as text.
DEEP = {"<deep 70>": "[" * 70 + "]" * 70, "<deep 100000>": "[" * 100_000 + "]" * 100_000}


def dumps(value: object) -> str:
    """JSON text of ``value`` with the :data:`DEEP` stand-ins written out."""
    text = json.dumps(value)
    for name, deep in DEEP.items():
        text = text.replace(json.dumps(name), deep)
    return text


def odd_json(rng: random.Random, depth: int = 0) -> object:
    """A random JSON value (some of them deep or of the wrong kind)."""
    pick = rng.randrange(9)
    if pick == 0 or depth > 3:
        return rng.choice([None, True, -3, 2.5, "x", "=1+1", 10**30])
    if pick == 1:
        return [odd_json(rng, depth + 1) for _ in range(rng.randrange(3))]
    if pick == 2:
        return {rng.choice(["id", "op", "nodes", "edges", "x"]): odd_json(rng, depth + 1)}
    if pick == 3:
        return rng.choice(list(DEEP))
    return rng.choice([{}, [], "", -1, None, {"a": float("nan")}, [[["x"]]]])


def mutate_json(value: object, rng: random.Random) -> object:
    """``value`` with one randomly chosen part replaced by :func:`odd_json`."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(sorted(value, key=str))
        copy = dict(value)
        if rng.random() < 0.2:
            del copy[key]
        else:
            copy[key] = mutate_json(value[key], rng)
        return copy
    if isinstance(value, list) and value and rng.random() < 0.8:
        index = rng.randrange(len(value))
        return value[:index] + [mutate_json(value[index], rng)] + value[index + 1 :]
    return odd_json(rng)


def _rows(conn: sqlite3.Connection, table: str) -> list[int]:
    return [r[0] for r in conn.execute(f"SELECT {TABLES[table]} FROM {table}")]


def damage(path: Path, rng: random.Random) -> str:
    """Damage the study at ``path`` in one random way; returns what was done."""
    kind = rng.choice(
        ["value", "value", "json", "json", "json", "drop_column", "drop_table", "truncate",
         "garbage_page", "renumber", "cycle", "weights", "big_ask"]
    )  # fmt: skip
    if kind in ("truncate", "garbage_page"):
        data = bytearray(path.read_bytes())
        if kind == "truncate":
            del data[rng.randrange(len(data)) :]
        else:
            page = 4096 * rng.randrange(max(1, len(data) // 4096))
            data[page : page + 4096] = rng.randbytes(4096)
        path.write_bytes(bytes(data))
        return kind
    conn = sqlite3.connect(path)
    try:
        table = rng.choice(sorted(TABLES))
        rows = _rows(conn, table)
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        column = rng.choice(columns)
        row = rng.choice(rows) if rows else None
        where = f"WHERE {TABLES[table]} = ?"
        if kind == "value" and row is not None:
            value = rng.choice(ODD_VALUES)
            try:
                conn.execute(f"UPDATE {table} SET {column} = ? {where}", (value, row))
            except sqlite3.IntegrityError:  # a row id must stay an integer
                return "nothing"
            return f"{table}.{column} = {value!r:.40}"
        if kind == "json":
            table, column = rng.choice([("trials", "graph"), ("trials", "metrics"),
                ("trials", "decision_values"), ("trials", "objectives"), ("study", "data"),
                ("strategy_state", "state"), ("final_runs", "data")])  # fmt: skip
            rows = _rows(conn, table)
            if rows:
                row = rng.choice(rows)
                sql = f"SELECT {column} FROM {table} WHERE {TABLES[table]} = ?"
                (text,) = conn.execute(sql, (row,)).fetchone()
                new = dumps(mutate_json(json.loads(text), rng))
                conn.execute(f"UPDATE {table} SET {column} = ? WHERE {TABLES[table]} = ?",
                             (new, row))  # fmt: skip
            return f"json {table}.{column}"
        if kind == "drop_column" and column not in ("id", "number"):
            conn.execute(f"DROP INDEX IF EXISTS {table}_{column}")
            conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
            return f"drop {table}.{column}"
        if kind == "drop_table":
            conn.execute(f"DROP TABLE {table}")
            return f"drop {table}"
        if kind == "renumber":
            conn.execute("UPDATE trials SET number = ? WHERE number = 1", (rng.choice([-3, 99]),))
            return "renumber"
        if kind == "cycle":
            (text,) = conn.execute("SELECT graph FROM trials WHERE number = 0").fetchone()
            graph = json.loads(text)
            graph["edges"].append({"source": "output", "target": "input", "order": 0})
            conn.execute("UPDATE trials SET graph = ? WHERE number = 0", (json.dumps(graph),))
            return "cycle"
        if kind == "weights":
            blob = rng.choice([b"", b"garbage", (10**9).to_bytes(8, "little") + b"{}",
                               (2).to_bytes(8, "little") + b"{}"])  # fmt: skip
            for number in _rows(conn, "trials"):
                conn.execute("INSERT OR REPLACE INTO weights VALUES (?, 'safetensors', ?)",
                             (number, blob))  # fmt: skip
            return f"weights {blob[:12]!r}"
        (text,) = conn.execute("SELECT state FROM strategy_state").fetchone()
        state = json.loads(text)
        state["log"][0] = ["ask", 10**9, []]
        conn.execute("UPDATE strategy_state SET state = ?", (json.dumps(state),))
        return "big ask"
    finally:
        conn.commit()
        conn.close()
