"""Checks a search makes before it spends anything: settings, evaluator changes, start-over."""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import time
from pathlib import Path
from typing import Any, cast

from autometa.errors import ConfigurationError, StorageError
from autometa.evaluation import Evaluator, SpaceChecking, abilities
from autometa.experiment.budget import Budget, is_positive_number, is_whole
from autometa.experiment.storage.base import BaseStorage, check_same_space, sessions_to_end
from autometa.experiment.storage.sqlite import SQLiteStorage
from autometa.experiment.trial import SessionInfo, StudyInfo

__all__ = [
    "check_before_claiming",
    "check_claimed",
    "check_same_scoring",
    "check_same_study",
    "current_evaluator",
    "MAX_SEED",
    "check_arguments",
    "check_evaluator",
    "check_pruner",
    "evaluator_changes",
    "start_over",
    "wrap_strategy_error",
]

logger = logging.getLogger("autometa.experiment")

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+>")

MAX_SEED = 2**63 - 1
"""The largest search seed: the study stores it as a signed 64-bit SQLite INTEGER."""


def check_arguments(
    *, budget: Any, seed: Any, workers: Any, trial_timeout: Any, seeds: Any, batch: Any
) -> None:
    """Refuse ``search()`` arguments of the wrong type or range, before anything is created.

    Raises:
        ConfigurationError: one line naming the argument, what it must be and what it got.
    """
    if budget is not None and not isinstance(budget, Budget):
        raise ConfigurationError(
            f"`budget` must be a Budget (e.g. Budget(trials=20)) or None, got {budget!r}"
        )
    if not is_whole(seed) or not 0 <= seed <= MAX_SEED:
        raise ConfigurationError(
            f"`seed` must be an int in [0, 2**63 - 1] (it is stored as a 64-bit integer), "
            f"got {seed!r}"
        )
    if not is_whole(workers) or workers < 0:
        raise ConfigurationError(
            f"`workers` must be an int >= 0 (0 evaluates in this process), got {workers!r}"
        )
    if trial_timeout is not None and not is_positive_number(trial_timeout):
        raise ConfigurationError(
            f"`trial_timeout` must be a finite number of seconds > 0 or None, got "
            f"{trial_timeout!r}"
        )
    for name, value in (("seeds", seeds), ("batch", batch)):
        if not is_whole(value) or value < 1:
            raise ConfigurationError(f"`{name}` must be an int >= 1, got {value!r}")


def check_evaluator(evaluator: Evaluator, space: Any, fidelity: Any) -> None:
    """Refuse an evaluator that cannot score this space or follow this fidelity plan.

    Calls ``evaluator.check_space(space)`` when the evaluator has it (the MAML evaluator and
    the synthetic objective check every hyperparameter name and value of the space), and,
    with a fidelity plan, checks that the evaluator takes ``meta_iterations=``.

    Raises:
        ConfigurationError: naming what the evaluator refuses.
    """
    if not callable(evaluator):
        raise ConfigurationError(
            f"the evaluator must be callable as evaluator(graph, *, seed, device), got a "
            f"{type(evaluator).__name__}"
        )
    can = abilities(evaluator)
    if can.space_check:
        cast(SpaceChecking, evaluator).check_space(space)
    if fidelity is not None and not can.fidelity:
        raise ConfigurationError(
            f"a fidelity plan ({type(fidelity).__name__}) calls the evaluator with "
            f"meta_iterations=, which {type(evaluator).__name__}.__call__ does not take"
        )


def check_pruner(pruner: Any, strategy: Any, strategy_name: str, evaluator: Evaluator) -> None:
    """Refuse a pruner that compares costs (``dominated``) where it cannot: with a strategy
    that optimises the score alone (the costs would stop candidates the strategy does not
    rank by them), or with an evaluator that cannot say a candidate's costs before it runs.

    Raises:
        ConfigurationError: one line naming the pruner and what it needs.
    """
    if pruner is None or not getattr(pruner, "uses_costs", False):
        return
    label = f"`pruner` {pruner.name!r}"
    n = int(getattr(strategy, "n_objectives", 1) or 1)
    if n < 2:
        raise ConfigurationError(
            f"{label} needs a multi-objective strategy (such as 'nsga2'); strategy "
            f"{strategy_name!r} optimises the score alone: use 'median' or 'percentile:P'"
        )
    if not abilities(evaluator).costs:
        raise ConfigurationError(
            f"{label} needs each candidate's costs before it runs: "
            f"{type(evaluator).__name__} has no cost_objectives(graph) method"
        )


def wrap_strategy_error(name: str, exc: Exception) -> ConfigurationError:
    """A :class:`ConfigurationError` with the message of a strategy that could not be made."""
    if isinstance(exc, ConfigurationError):
        return exc
    if isinstance(exc, ImportError):
        return ConfigurationError(f"strategy {name!r} needs a package that is missing: {exc}")
    return ConfigurationError(str(exc))


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; an empty dict below the top stays a value."""
    if isinstance(value, dict) and (value or not prefix):
        out: dict[str, Any] = {}
        for key in sorted(value):
            out.update(_flatten(value[key], f"{prefix}{key}."))
        return out
    return {prefix[:-1]: value}


def evaluator_changes(
    stored: dict[str, Any],
    stored_fidelity: Any,
    current: dict[str, Any],
    current_fidelity: Any,
) -> list[str]:
    """One line per setting that differs: ``"config.meta_iterations: 100 -> 2"``.

    Compares the evaluator class, every setting of :func:`describe_evaluator` and the fidelity
    plan: the things that decide how a trial is scored. A value that is only an object's
    default ``repr`` (with a memory address) on both sides is not compared.
    """
    before = {"evaluator": stored.get("target"), **_flatten(stored.get("config") or {})}
    after = {"evaluator": current.get("target"), **_flatten(current.get("config") or {})}
    before["fidelity"], after["fidelity"] = stored_fidelity, current_fidelity
    lines = []
    for key in sorted(set(before) | set(after), key=lambda k: (k != "evaluator", k)):
        old, new = before.get(key, _UNSET), after.get(key, _UNSET)
        if old == new or (_is_address(old) and _is_address(new)):
            continue
        lines.append(f"{key}: {_show(old)} -> {_show(new)}")
    return lines


class _Unset:
    def __repr__(self) -> str:
        return "(unset)"


_UNSET = _Unset()


def _show(value: Any) -> str:
    return repr(value) if not isinstance(value, _Unset) else "(unset)"


def _is_address(value: Any) -> bool:
    return isinstance(value, str) and bool(_ADDRESS.search(value))


def start_over(storage: Any, take_over: bool = False) -> None:
    """Delete the autometa study file at ``storage`` (and its WAL files) so a search starts over.

    Only a SQLite file that holds an autometa study is deleted; a missing file is fine. A
    study held by a live session (on any host: judged by its heartbeat, as a resume judges
    it) is refused unless ``take_over``; then the holder's session is ended first, so a
    holder still running is fenced off (its writes are refused) and stops at its next
    heartbeat instead of writing into a deleted file.

    Raises:
        ConfigurationError: ``storage`` is not a path, or the file is not an autometa study.
        StudyInUseError: a live session holds the study and ``take_over`` is False.
    """
    if not isinstance(storage, str | os.PathLike) or str(storage) == ":memory:":
        raise ConfigurationError(
            f"fresh=True starts over a study file; it needs a storage path, got {storage!r}"
        )
    path = Path(storage)
    if not path.exists():
        return
    if not path.is_file():
        raise ConfigurationError(f"{path}: not a file; fresh=True deletes only an autometa study")
    sessions = _sessions(path)
    sessions_to_end(sessions, time.time(), take_over, str(path))  # refuses a live holder
    if any(s.ended is None for s in sessions):
        store = SQLiteStorage(path)  # take it over: the holder's later writes are refused
        try:
            store.touch_session(store.start_session(take_over=True), ended=True)
        finally:
            store.close()
    for extra in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if extra.exists():
            extra.unlink()


def _sessions(path: Path) -> list[SessionInfo]:
    """The sessions of the study at ``path``, read without writing; refuses other files."""
    refuse = ConfigurationError(
        f"{path}: not an autometa study; fresh=True deletes only a study file autometa created"
    )
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        raise refuse from None
    conn.row_factory = sqlite3.Row
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"study", "trials", "sessions"} <= tables:
            raise refuse
        if conn.execute("SELECT COUNT(*) FROM study").fetchone()[0] != 1:
            raise refuse
        rows = conn.execute("SELECT * FROM sessions ORDER BY id").fetchall()
        return [_session(dict(row)) for row in rows]
    except (sqlite3.Error, TypeError, ValueError):
        raise refuse from None
    finally:
        conn.close()


def _session(row: dict[str, Any]) -> SessionInfo:
    """A session row of a file that may predate the ``host`` and ``heartbeat`` columns."""
    heartbeat = row.get("heartbeat")
    return SessionInfo(
        id=int(row["id"]), host=row.get("host"), pid=row.get("pid"),
        started=float(row["started"]), updated=float(row["updated"]),
        heartbeat=None if heartbeat is None else float(heartbeat),
        ended=None if row.get("ended") is None else float(row["ended"]),
    )  # fmt: skip


def current_evaluator(study: StudyInfo) -> dict[str, Any]:
    """The evaluator description a study last ran with (it changes only with allow_changes)."""
    return dict(study.settings.get("evaluator") or study.evaluator)


def check_same_study(store: BaseStorage, stored: StudyInfo, info: StudyInfo) -> None:
    """Refuse to resume a study with another strategy or seed (its state would not fit)."""
    for what in ("strategy", "seed"):
        if getattr(stored, what) != getattr(info, what):
            raise StorageError(
                f"{store}: the study was created with {what} {getattr(stored, what)!r}, not "
                f"{getattr(info, what)!r}; use another storage, or the same {what} to resume"
            )
    if stored.strategy_options != info.strategy_options:
        raise StorageError(
            f"{store}: the study was created with strategy options {stored.strategy_options!r}, "
            f"not {info.strategy_options!r}; use another storage, or the same options to resume"
        )


def check_same_scoring(
    store: BaseStorage, stored: StudyInfo, info: StudyInfo, allow: bool
) -> list[dict[str, Any]]:
    """Refuse other evaluator settings or fidelity unless ``allow``; returns the change log.

    Trials scored two ways would be ranked together, so a change must be asked for; an allowed
    one is appended to the study's ``settings["changes"]`` with the time and the diff.
    """
    history = list(stored.settings.get("changes") or [])
    diff = evaluator_changes(
        current_evaluator(stored), stored.settings.get("fidelity"),
        info.evaluator, info.settings.get("fidelity"),
    )  # fmt: skip
    if not diff:
        return history
    if not allow:
        lines = "\n".join(f"  {line}" for line in diff)
        raise StorageError(
            f"{store}: the study was scored with other evaluator settings:\n{lines}\n"
            "continue with the new settings: allow_changes=True (--allow-changes); start "
            "over: fresh=True (--fresh); or use another storage"
        )
    logger.warning("%s: evaluator settings changed: %s", store, "; ".join(diff))
    return [*history, {"time": time.time(), "changes": diff}]


def check_before_claiming(
    store: BaseStorage, info: StudyInfo, strategy: Any, allow_changes: bool, take_over: bool
) -> dict[str, Any] | None:
    """Every check that can refuse a stored study, read-only and before the study is claimed,
    so that a refused search writes nothing to it (not even a session): no live holder (unless
    ``take_over``; first, so that a study in use is refused before any other work), the same
    space, strategy, seed and scoring, every trial row readable; the strategy is restored
    from the stored state here. Returns that state (None for a new study or one without one).

    Raises:
        StudyInUseError: another session is live and ``take_over`` is False.
        StorageError: the study is another one, scored otherwise, or damaged.
    """
    stored = store.get_study()
    if stored is None:
        return None
    where = str(getattr(store, "path", store))
    sessions_to_end(store.get_sessions(), time.time(), take_over, where)  # the claim's refusal
    check_same_space(store, stored, info)
    store.get_all_trials()  # every row is checked as it is read
    check_same_study(store, stored, info)
    if not allow_changes:  # an allowed change is logged once, by check_claimed
        check_same_scoring(store, stored, info, allow_changes)
    state = store.get_strategy_state()
    if state is not None:
        try:
            strategy.load_state_dict(state)
        except (ValueError, TypeError) as exc:  # a damaged or crafted state: refused
            raise StorageError(
                f"{getattr(store, 'path', store)}: table strategy_state, row 1, field "
                f"'state': {exc}"
            ) from None
    return state


def check_claimed(
    store: BaseStorage, info: StudyInfo, allow_changes: bool, restored: dict[str, Any] | None
) -> None:
    """Open the study in ``store`` (creating it when new), now claimed, and check it against
    ``info`` again: the same study, scored the same way, and the strategy state that
    :func:`check_before_claiming` restored (``restored``); then record the settings."""
    stored = store.open_study(info)
    check_same_study(store, stored, info)
    run_settings = info.settings
    run_settings["changes"] = check_same_scoring(store, stored, info, allow_changes)
    if _same_json(store.get_strategy_state()) != _same_json(restored):  # a take-over's race
        raise StorageError(
            f"{getattr(store, 'path', store)}: the search it took over wrote to the study "
            "while this one opened it; run it again"
        )
    if stored.settings != run_settings:
        store.update_study_settings(run_settings)
    counts = {s.name: n for s, n in store.count_states().items() if n}
    if counts:  # trials were stored before: a resume
        logger.info("resuming %s: %s", store, counts)


def _same_json(state: dict[str, Any] | None) -> str:
    """A state as JSON text, for comparing two reads of one stored state: NaN scores compare
    equal, and values JSON lacks are written by their ``repr``."""
    return json.dumps(state, default=repr)
