"""The stored state of a strategy: its format version, and the checks a state read back from a
study passes before :meth:`~autometa.strategies.base.BaseStrategy.load_state_dict` replays it.

A stored state is untrusted data (it comes from a study file), so its header (class, version,
options, space) and the shape of its log are checked here, in one place, before any replay
runs; the strategy itself only builds the state and replays it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autometa.strategies._candidate import Value

__all__ = ["MAX_REPLAY_ASK", "STATE_VERSION", "check_state", "log_value"]

STATE_VERSION = 1
"""The version of :meth:`~autometa.strategies.base.BaseStrategy.state_dict`'s format."""

MAX_REPLAY_ASK = 100_000
"""The most candidates one ``ask`` entry of a stored log may request on replay (a search asks
for at most its free workers' batches at a time); a larger request is refused, not run."""


def log_value(value: Value) -> Any:
    """A told value as the log stores it (JSON: a tuple becomes a list)."""
    return list(value) if isinstance(value, tuple) else value


def check_state(state: Mapping[str, Any], expected: Mapping[str, Any], label: str) -> None:
    """Check a stored state before it is replayed: its header fields equal ``expected``
    (strategy class, version, options, space hash) and its seed and log are well formed.

    Raises:
        ValueError: a header field differs (the message names it and both values), or the
            seed or a log entry is malformed (see :func:`_check_log`).
    """
    for key, want in expected.items():
        if state.get(key) != want:
            raise ValueError(
                f"strategy {label!r}: cannot load a state whose {key} is "
                f"{state.get(key)!r}; this strategy has {key} {want!r}"
            )
    _check_log(state, label)


def _check_log(state: Mapping[str, Any], label: str) -> None:
    """The shape of a stored state's seed and log, checked before anything is replayed.

    Raises:
        ValueError: the seed is not an int, or a log entry is not ``["ask", n, [keys]]`` with
            ``1 <= n <= MAX_REPLAY_ASK`` or ``["tell", id, value]``.
    """
    seed, log = state.get("seed"), state.get("log")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"strategy {label!r}: the state's seed must be an int, got {seed!r}")
    if not isinstance(log, list):
        raise ValueError(f"strategy {label!r}: the state's log must be a list")
    for step, entry in enumerate(log):
        ok = isinstance(entry, list) and len(entry) == 3
        if ok and entry[0] == "ask":
            n, keys = entry[1], entry[2]
            ok = not isinstance(n, bool) and isinstance(n, int) and isinstance(keys, list)
            if ok and not 1 <= n <= MAX_REPLAY_ASK:
                raise ValueError(
                    f"strategy {label!r}: log entry {step} asks for {n} candidates; a replay "
                    f"asks for 1 to {MAX_REPLAY_ASK}"
                )
            ok = ok and len(keys) <= n and all(isinstance(k, str) for k in keys)
        elif ok and entry[0] == "tell":
            cid, value = entry[1], entry[2]
            ok = not isinstance(cid, bool) and isinstance(cid, int)
            ok = ok and all(
                v is None or not isinstance(v, bool) and isinstance(v, (int, float))
                for v in (value if isinstance(value, list) else [value])
            )
        else:
            ok = False
        if not ok:
            text = repr(entry)
            raise ValueError(
                f"strategy {label!r}: log entry {step} is malformed: "
                f"{text if len(text) <= 60 else text[:59] + '…'}"
            )
