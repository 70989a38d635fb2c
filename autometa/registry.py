"""A small name -> factory registry shared by ops, task families, strategies and exporters."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from autometa.errors import UnknownNameError
from autometa.plugins import entry_point_targets, load_plugins

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects, or to lazy ``"package.module:attr"`` entry points.

    Entry points are imported on first use, so heavy optional backends (nni, ray, mujoco)
    cost nothing until they are asked for by name. A name not registered makes the registry
    import the installed plugins once (:func:`autometa.plugins.load_plugins`) before it is
    reported unknown. Only code registers entries: a name read from a file is looked up here
    and never imported as a module path.

    Args:
        kind: what the entries are, for messages (``"executor"``).
        group: an entry-point group whose installed ``name = "module:attr"`` entries join
            the registry as lazy entries (they never replace a registered name), added the
            first time a name is missed or the names are listed.
    """

    def __init__(self, kind: str, group: str | None = None) -> None:
        self.kind = kind
        self.group = group
        self._group_added = group is None
        self._entries: dict[str, T | str] = {}

    def register(self, name: str, entry: T | str | None = None, *, overwrite: bool = False) -> Any:
        """Register ``entry`` under ``name``; without ``entry``, return a decorator."""
        if entry is None:

            def decorator(obj: T) -> T:
                self.register(name, obj, overwrite=overwrite)
                return obj

            return decorator
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} names must be non-empty strings, got {name!r}")
        if name in self._entries and not overwrite:
            raise ValueError(
                f"{self.kind} {name!r} is already registered; pass overwrite=True to replace it"
            )
        self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Remove ``name`` (for tests and plugins that register temporarily)."""
        if name not in self._entries:
            raise UnknownNameError(self.unknown_message(name))
        del self._entries[name]

    def get(self, name: str) -> T:
        """Return the object registered as ``name``, importing a lazy entry point if needed."""
        if name not in self:
            raise UnknownNameError(self.unknown_message(name))
        entry = self._entries[name]
        if isinstance(entry, str):
            module_name, _, attr = entry.partition(":")
            obj = getattr(importlib.import_module(module_name), attr)
            self._entries[name] = obj
            return obj
        return entry

    def unknown_message(self, name: object) -> str:
        """The error text for an unknown name: closest match first, then every valid name."""
        known = self.names()
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return f"unknown {self.kind} {name!r}.{hint} Valid names: {', '.join(known)}"

    def names(self) -> list[str]:
        """Registered names, sorted."""
        self._add_group()
        return sorted(self._entries)

    def _add_group(self) -> None:
        """Add the installed entry points of :attr:`group` (once; names never imported)."""
        if self._group_added or self.group is None:
            return
        self._group_added = True
        for name, target in entry_point_targets(self.group).items():
            self._entries.setdefault(name, target)

    def name_of(self, obj: object) -> str | None:
        """The name ``obj`` (a class or factory) is registered under, or None.

        Lazy entries are matched by their ``"module:attr"`` path, so nothing is imported.
        """
        path = f"{getattr(obj, '__module__', '')}:{getattr(obj, '__qualname__', '')}"
        for name in self.names():
            entry = self._entries[name]
            if entry is obj or (isinstance(entry, str) and entry == path):
                return name
        return None

    def __contains__(self, name: object) -> bool:
        if name not in self._entries and isinstance(name, str):
            load_plugins()
            self._add_group()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def make(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Look ``name`` up and call it with the given arguments."""
        factory = self.get(name)
        if not callable(factory):
            raise TypeError(f"{self.kind} {name!r} is not callable")
        return factory(*args, **kwargs)
