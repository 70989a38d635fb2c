"""A candidate's training states on several seeds, as one record.

A trial scored on ``seeds`` > 1 seeds is meta-trained once per seed; between fidelity rungs
the study keeps all of their states as one safetensors record, each seed's named tensors
under ``"seed.<k>/"`` (``k`` the seed's place in the trial's seed list), so that the next rung
continues every seed. A trial on one seed keeps its state as it is, without a prefix.

Plain dictionaries of tensors; nothing here imports torch, so the worker stays free of the
evaluator's packages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["join_seed_states", "split_seed_states"]

_PREFIX = "seed."


def join_seed_states(states: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One record of every seed's state (``states[k]`` under ``"seed.<k>/"``); one state is
    kept as it is."""
    if len(states) == 1:
        return dict(states[0])
    return {
        f"{_PREFIX}{k}/{name}": t for k, state in enumerate(states) for name, t in state.items()
    }


def split_seed_states(record: Mapping[str, Any], count: int) -> list[dict[str, Any]]:
    """Each of ``count`` seeds' states in ``record`` (:func:`join_seed_states`'s inverse).

    Raises:
        ValueError: one line naming the entry that is not a seed's, or a seed without one.
    """
    if count == 1:
        return [dict(record)]
    parts: list[dict[str, Any]] = [{} for _ in range(count)]
    for name, tensor in record.items():
        head, slash, rest = str(name).partition("/")
        index = head[len(_PREFIX) :]
        if not (slash and rest and head.startswith(_PREFIX) and index.isdigit()) or (
            str(int(index)) != index or int(index) >= count
        ):
            raise ValueError(
                f"training state: entry {name!r} is not 'seed.<k>/<name>' with k below {count} "
                f"(a state of {count} seeds)"
            )
        parts[int(index)][rest] = tensor
    empty = next((k for k, part in enumerate(parts) if not part), None)
    if empty is not None:
        raise ValueError(f"training state: seed {empty} of {count} has no entries")
    return parts
