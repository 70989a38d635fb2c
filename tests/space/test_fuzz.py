"""Property-based fuzzing of space files: every mutation of a shipped space either loads or
raises SpaceValidationError, within a time bound per file.

Each example starts from one of the shipped spaces, changes its data (types, keys,
sizes, huge numbers, deep nesting, aliases), writes it as YAML or JSON, then changes the
text (duplicated or dropped lines, truncation, stray bytes, other encodings, padding past
the size limit). Runs are derandomized, so CI sees the same examples every time.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from autometa.errors import SpaceValidationError
from autometa.space import MAX_FILE_BYTES, load_space, shipped_spaces

_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # only makes the test faster
CPU_SECONDS = 2.0  # the most one file may take: load, summary, round trip, one decode
SHIPPED = {Path(p).name: Path(p).read_text() for _, p in sorted(shipped_spaces().items())}
FUZZ = settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,  # the bound is on the loader's CPU time, see _check
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
KEYS = (
    "name description graph kind layers layer nodes node width activation op inputs merge "
    "residual output choose min max choice int float bool log default hyperparameters "
    "constraints io obs_dim act_dim discrete max_params max_macs fast_lr"
).split()
WORDS = [
    "input",
    "output",
    "linear",
    "linear_tanh",
    "identity",
    "tanh",
    "sum",
    "concat",
    "chain",
    "dag",
    "explicit",
    "trunk",
    "tower_a",
    "n0",
    "l0",
]


def _laughs(levels: int) -> str:
    parts = ["&a0 [" + ", ".join(["x"] * 10) + "]"]
    parts += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "[" + ", ".join(parts) + "]"


# Text put in place of a value after dumping: what no dumper writes (or writes slowly).
RAW = [
    "9" * 5000,
    "-" + "1" * 101,
    "0x" + "f" * 300,
    "1e999",
    "-.inf",
    ".nan",
    "1_000_000",
    "[" * 60 + "]" * 60,
    "[" * 5000 + "]" * 5000,
    '{"a": ' * 3000 + "1" + "}" * 3000,
    _laughs(4),
    _laughs(9),
    "&r [*r]",
    "&m {<<: *m}",
    "*undefined",
    "!!python/object/apply:os.system [true]",
    '"' + "y" * 50_000 + '"',
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.sampled_from([0, -1, 2**63, 10**99, 10**100 - 1, 10**100]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(WORDS),
    st.just(100_000).map(lambda n: "x" * n),  # built lazily: a short repr in reports
)
sized = st.one_of(
    st.integers(0, 1000).map(lambda n: {"choice": list(range(n))}),
    st.integers(0, 120).map(lambda k: {"int": [1, 10**k]}),
    st.integers(0, 70).map(lambda k: {"int": [1, k]}),
    st.integers(0, 500).map(lambda n: {"choose": ["input"] * n, "min": 1, "max": n}),
    st.integers(0, 500).map(lambda n: ["input"] * n),
)
values = st.recursive(
    scalars | sized,
    lambda kids: (
        st.lists(kids, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), kids, max_size=4)
    ),
    max_leaves=10,
)


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    """Every position in a parsed spec (the root included)."""
    out = [path]
    if isinstance(node, dict):
        for key, sub in node.items():
            out += _paths(sub, (*path, key))
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            out += _paths(sub, (*path, i))
    return out


def _mutate_data(spec: dict, data: st.DataObject) -> None:
    """One change at a random position: replace, renumber, delete, rename, duplicate or add."""
    path = data.draw(st.sampled_from(_paths(spec)), label="path")
    parent = spec
    for part in path[:-1]:
        parent = parent[part]
    action = data.draw(
        st.sampled_from(["value", "raw", "number", "delete", "rename", "duplicate", "add"]),
        label="action",
    )
    if not path:
        if action in ("value", "raw"):
            spec.clear()
            spec["graph"] = data.draw(values)
        return
    key = path[-1]
    if action == "value":
        parent[key] = data.draw(values, label="value")
    elif action == "number" and type(parent[key]) is int:  # often still a valid space
        parent[key] = data.draw(st.integers(1, 64), label="number")
    elif action == "raw":
        parent[key] = f"RAWTOKEN{data.draw(st.integers(0, len(RAW) - 1), label='raw')}"
    elif isinstance(parent, dict) and action == "delete":
        del parent[key]
    elif isinstance(parent, dict) and action in ("rename", "duplicate"):
        value = parent[key] if action == "duplicate" else parent.pop(key)
        parent[data.draw(st.sampled_from(KEYS) | st.text(max_size=6), label="key")] = value
    elif isinstance(parent[key], dict) and action == "add":
        parent[key][data.draw(st.sampled_from(KEYS), label="key")] = data.draw(values)
    elif isinstance(parent, list):
        parent.insert(key, data.draw(values, label="item"))


def _dump(spec: dict, fmt: str) -> str:
    if fmt == "json":
        text = json.dumps(spec, indent=1)
    else:
        text = yaml.dump(spec, Dumper=_DUMPER, sort_keys=False, default_flow_style=None, width=100)
    for i in reversed(range(len(RAW))):  # RAWTOKEN12 before RAWTOKEN1
        for token in (f'"RAWTOKEN{i}"', f"'RAWTOKEN{i}'", f"RAWTOKEN{i}"):
            text = text.replace(token, RAW[i])
    return text


def _mutate_text(text: str, data: st.DataObject) -> bytes:
    """Line- and byte-level damage: what a careless edit or a wrong save does to a file."""
    lines = text.splitlines(keepends=True) or [""]
    for _ in range(data.draw(st.integers(0, 2), label="text edits")):
        i = data.draw(st.integers(0, len(lines) - 1), label="line")
        edit = data.draw(
            st.sampled_from(["duplicate", "drop", "indent", "truncate", "insert", "anchor"]),
            label="edit",
        )
        if edit == "duplicate":
            lines.insert(i, lines[i])
        elif edit == "drop" and len(lines) > 1:
            del lines[i]
        elif edit == "indent":
            lines[i] = "   " + lines[i]
        elif edit == "truncate":
            lines = lines[:i] + [lines[i][: len(lines[i]) // 2]]
        elif edit == "insert":
            lines.insert(i, data.draw(st.text(max_size=20), label="inserted") + "\n")
        elif edit == "anchor" and ": " in lines[i]:  # alias an earlier value of the file
            lines[i] = lines[i].replace(": ", ": &v ", 1)
            lines.append("description: *v\n")
    text = "".join(lines)
    encoding = data.draw(
        st.sampled_from(["utf-8"] * 6 + ["utf-8-sig", "utf-16", "latin-1", "bytes", "pad"]),
        label="encoding",
    )
    if encoding == "bytes":
        cut = data.draw(st.integers(0, len(text)), label="cut")
        blob = data.draw(st.binary(min_size=1, max_size=4), label="blob")
        return text[:cut].encode() + blob + text[cut:].encode()
    if encoding == "pad":
        return (text + "# " + "x" * MAX_FILE_BYTES + "\n").encode()
    if encoding == "latin-1":
        return ("# café\n" + text).encode("latin-1", errors="replace")
    return text.encode(encoding)


def _use(path: Path) -> SpaceValidationError | None:
    """Load ``path`` and use the space as a search would; the error if it does not load."""
    try:
        space = load_space(path)
    except SpaceValidationError as exc:
        str(exc)
        return exc
    space.summary()
    assert load_space(space.to_dict()) == space
    space.decode(space.sample_values(0))
    return None


def _check(path: Path) -> None:
    start = time.process_time()  # CPU time: other processes on the machine do not count
    error = _use(path)
    spent = time.process_time() - start
    assert spent < CPU_SECONDS, f"{path.name} took {spent:.1f} s of CPU"
    event("loaded" if error is None else f"first error: {error.errors[0].code}")
    if error is not None:
        message = str(error)
        assert error.errors and message.startswith(f"{path.name}: ")
        assert max(len(line) for line in message.splitlines()) < 10_000


@FUZZ
@given(
    name=st.sampled_from(sorted(SHIPPED)),
    fmt=st.sampled_from(["yaml", "json"]),
    edits=st.integers(0, 3),
    data=st.data(),
)
def test_mutated_spaces_load_or_raise_space_errors(name, fmt, edits, data):
    spec = yaml.safe_load(SHIPPED[name])
    for _ in range(edits):
        _mutate_data(spec, data)
    text = _dump(spec, fmt)
    blob = _mutate_text(text, data) if data.draw(st.booleans(), label="text") else text.encode()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{name.rsplit('.', 1)[0]}.{fmt}"
        path.write_bytes(blob)
        _check(path)
