"""Where studies live: the :class:`BaseStorage` contract, SQLite and in-memory backends."""

from __future__ import annotations

import os
from pathlib import Path

from autometa.experiment.storage.base import (
    HEARTBEAT_SECONDS,
    STALE_AFTER_HEARTBEATS,
    STEP_SIZE_PREFIX,
    BaseStorage,
    decode_weights,
    encode_weights,
    split_step_sizes,
)
from autometa.experiment.storage.memory import InMemoryStorage
from autometa.experiment.storage.sqlite import SQLiteStorage

__all__ = [
    "HEARTBEAT_SECONDS",
    "STALE_AFTER_HEARTBEATS",
    "STEP_SIZE_PREFIX",
    "BaseStorage",
    "InMemoryStorage",
    "SQLiteStorage",
    "decode_weights",
    "encode_weights",
    "get_storage",
    "split_step_sizes",
]


def get_storage(storage: BaseStorage | str | os.PathLike[str] | None) -> BaseStorage:
    """A storage from what a user passed: an instance as is, a path as a SQLite file,
    ``":memory:"`` or None as an :class:`InMemoryStorage`."""
    if isinstance(storage, BaseStorage):
        return storage
    if storage is None or str(storage) == ":memory:":
        return InMemoryStorage()
    if isinstance(storage, (str, Path, os.PathLike)):
        return SQLiteStorage(storage)
    raise TypeError(
        f"`storage` must be a BaseStorage, a path or None, got {type(storage).__name__}"
    )
