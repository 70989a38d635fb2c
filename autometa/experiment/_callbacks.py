"""Callbacks: code the search calls as trials end and when it ends (loggers, dashboards)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from autometa.errors import ConfigurationError
from autometa.experiment.trial import TrialRecord

__all__ = ["Callback", "CallbackList"]

logger = logging.getLogger("autometa.experiment")


class Callback:
    """Base class of search callbacks; every method is a no-op, override the ones you need.

    A callback watches a search without steering it: the search calls it in its own process
    and thread, after the event is safely stored, and goes on whatever it does. A callback
    that raises is logged once with its traceback and disabled for the rest of the search,
    so a broken logger never stops a long run. Keep the methods quick: the search waits for
    them.

    - :meth:`on_trial_end` runs each time a trial of this session reaches a finished state
      (``DONE``, ``FAILED`` or ``PRUNED``), including trials answered from storage because
      they repeat an evaluated candidate. Trials finished by an earlier session are not
      replayed on resume.
    - :meth:`on_search_end` runs once, with the :class:`~autometa.experiment.SearchResult`
      read back from storage, when the search stops normally (budget spent, nothing left to
      run, or every trial failed); not after Ctrl-C or an error.

    Example:
        >>> class PrintScores(Callback):
        ...     def on_trial_end(self, search, trial):
        ...         print(trial.number, trial.state.name, trial.score)
    """

    def on_trial_end(self, search: Any, trial: TrialRecord) -> None:
        """Called after ``trial`` reached a finished state and was stored.

        Args:
            search: the running search (a ``SearchLoop``): ``search.best()`` is the best
                DONE trial so far, ``search.usage()`` the budget spent, ``search.counts()``
                the trials per state, ``search.storage`` the study's storage.
            trial: the stored, finished trial (read-only).
        """

    def on_search_end(self, result: Any) -> None:
        """Called once when the search stopped, with its ``SearchResult``.

        Args:
            result: the :class:`~autometa.experiment.SearchResult` read back from storage.
        """

    def __str__(self) -> str:
        return type(self).__name__


class CallbackList:
    """Calls a list of callbacks in order, disabling each one that raises.

    Args:
        callbacks: the :class:`Callback` instances, or None for none.

    Raises:
        ConfigurationError: an entry is not a :class:`Callback`.
    """

    def __init__(self, callbacks: Sequence[Callback] | None = None) -> None:
        if isinstance(callbacks, Callback):
            callbacks = [callbacks]
        items = list(callbacks or [])
        for item in items:
            if not isinstance(item, Callback):
                raise ConfigurationError(
                    "`callbacks` must be a list of autometa.experiment.Callback instances, "
                    f"got {item!r}"
                )
        self.active: list[Callback] = items

    def __len__(self) -> int:
        return len(self.active)

    def trial_end(self, search: Any, trial: TrialRecord) -> None:
        """Call every active callback's ``on_trial_end``."""
        self._call("on_trial_end", search, trial)

    def search_end(self, result: Any) -> None:
        """Call every active callback's ``on_search_end``."""
        self._call("on_search_end", result)

    def _call(self, method: str, *args: Any) -> None:
        for callback in list(self.active):
            try:
                getattr(callback, method)(*args)
            except Exception:  # noqa: BLE001 - a logger must not stop the search
                logger.warning(
                    "callback %s raised in %s; it is disabled for the rest of the search",
                    callback, method, exc_info=True,
                )  # fmt: skip
                self.active.remove(callback)
