"""The strategy contract: ask for candidates, tell their results, save and restore the state.

:class:`BaseStrategy` runs the ask/tell exchange; the data it exchanges (:class:`Candidate`,
:data:`Value`, :func:`active_values`) live in :mod:`._candidate` and the stored state's format
and checks in :mod:`._state`, both re-exported here.
"""

from __future__ import annotations

import abc
import difflib
import json
import logging
import numbers
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from autometa.errors import GraphValidationError
from autometa.graph import canonical_hash
from autometa.strategies._candidate import Candidate, Pending, Value, active_values, check_value
from autometa.strategies._grid_count import finite_size
from autometa.strategies._state import MAX_REPLAY_ASK, STATE_VERSION, check_state, log_value

if TYPE_CHECKING:
    from autometa.space import SearchSpace

__all__ = [
    "MAX_REPLAY_ASK",
    "STATE_VERSION",
    "BaseStrategy",
    "Candidate",
    "Value",
    "active_values",
]

log = logging.getLogger(__name__)


class BaseStrategy(abc.ABC):
    """Base of every search strategy: an ask/tell optimiser over a :class:`SearchSpace`.

    Life of a search, and what each public method may change:

    - ``__init__(space, *, seed=0, **options)`` checks the options against
      :attr:`defaults` (an unknown one raises ``TypeError`` naming the valid ones) and builds
      the backend. Nothing random happens outside the strategy's own seeded generators.
    - :meth:`ask` ``(n)`` is called whenever workers are free; it returns up to ``n`` new
      :class:`Candidate` objects, each valid for the space and each with a key that is neither
      recorded (told before) nor pending (asked, not yet told). A proposal whose key was told
      before is answered from the record: the backend is told the recorded value and the
      strategy proposes again, so no architecture is paid for twice. A proposal whose key is
      pending is held back and told the pending candidate's result when it arrives. A proposal
      that does not decode to a valid graph is told to the backend as a failure. On a space
      without float ranges, ``ask`` returns no more once as many architectures are recorded
      or pending as the space has decision vectors. After
      :attr:`max_rounds` proposal rounds without filling the batch, or when the backend has
      nothing left (a finished grid), ``ask`` returns fewer than ``n`` candidates, possibly
      none: the space is exhausted as far as this strategy can tell.
    - :meth:`tell` ``(candidate, value)`` is called once per asked candidate, in any order, with
      a float (higher is better), a tuple of :attr:`n_objectives` floats for multi-objective
      strategies, or ``None`` for a failed trial (NaN and infinities count as failures).
    - :meth:`state_dict` is called after every ``tell`` (the experiment stores it); it is
      JSON-safe. :meth:`load_state_dict` on a fresh strategy built with the same space and
      options restores it exactly: the continuation equals that of an uninterrupted run, and
      the pending candidates are pending again under their old ids (see :meth:`pending`).

    The state is event-sourced: it holds the seed, the options and the log of asks (with the
    keys they returned) and tells; restoring rebuilds the backend from the seed and replays
    the log, checking every replayed key. This keeps backends whose internals are not
    JSON-safe (scikit-optimize, NNI) exactly resumable. Replay costs what the original calls
    cost, which for model-based strategies is a model fit per tell.

    Subclasses set :attr:`defaults` and implement three hooks: :meth:`_setup` (build the
    backend from ``self.seed`` and ``self.options``), :meth:`_propose` (raw decision-value
    proposals with a backend token each) and :meth:`_observe` (give the backend a result).
    """

    name: ClassVar[str] = ""
    """The registry name, used in messages."""
    defaults: ClassVar[dict[str, Any]] = {}
    """Every option the strategy takes, with its default (JSON-safe values)."""
    n_objectives: int = 1
    """How many values :meth:`tell` expects (1: a float)."""
    max_rounds: ClassVar[int] = 100
    max_seed: ClassVar[int] = 2**63 - 1
    """The largest seed the strategy takes (a study stores its seed as a 64-bit integer;
    a backend seeded through numpy's ``RandomState`` takes at most ``2**32 - 1``)."""
    """Proposal rounds one :meth:`ask` may spend on recorded, pending or invalid proposals;
    ``self._round`` tells :meth:`_propose` which round of the current ask it serves."""

    def __init__(self, space: SearchSpace, *, seed: int = 0, **options: Any) -> None:
        unknown = [k for k in options if k not in self.defaults]
        if unknown:
            raise TypeError(self._unknown_option_message(unknown[0]))
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"strategy {self._label()!r}: seed must be an int, got {seed!r}")
        if not 0 <= seed <= self.max_seed:
            bits = (self.max_seed + 1).bit_length() - 1
            shown = f"2**{bits} - 1" if self.max_seed == 2**bits - 1 else str(self.max_seed)
            raise ValueError(
                f"strategy {self._label()!r}: seed must be an int in [0, {shown}], got {seed!r}"
            )
        self.space = space
        self.seed = int(seed)
        self.options: dict[str, Any] = {**self.defaults, **options}
        self._check_options()
        self._reset()

    # ------------------------------------------------------------------ subclass hooks

    def _check_options(self) -> None:
        """Validate ``self.options`` (raise ``ValueError`` naming the option); optional."""
        return None

    @abc.abstractmethod
    def _setup(self) -> None:
        """(Re)build the backend from ``self.seed`` and ``self.options``; no history yet."""

    @abc.abstractmethod
    def _propose(self, n: int) -> list[tuple[Mapping[str, Any], Any]]:
        """Up to ``n`` proposals ``(values, token)``; an empty list means nothing is left.

        ``values`` holds raw decision values (inactive dimensions may be present or absent);
        ``token`` is whatever the backend needs to match the result to the proposal.
        """

    @abc.abstractmethod
    def _observe(self, token: Any, values: Mapping[str, Any], value: Value) -> None:
        """Give the backend the result of proposal ``token`` (``None``: failed or invalid)."""

    # ------------------------------------------------------------------ public API

    def ask(self, n: int = 1) -> list[Candidate]:
        """Up to ``n`` new, valid candidates whose keys are neither recorded nor pending.

        Args:
            n: how many candidates are wanted (typically the number of free workers).

        Returns:
            The candidates; fewer than ``n`` only when the strategy finds no new ones.

        Raises:
            ValueError: ``n`` is not a positive int.
        """
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"ask(n) needs a positive int n, got n={n!r}")
        out: list[Candidate] = []
        for round_ in range(self.max_rounds):
            self._round = round_
            if self.exhausted:
                self._note_exhausted()
                break
            if self._one_point:  # no backend: the space's only decision vector
                proposals = [(self.space.sample_values(np.random.default_rng(0)), None)]
            else:
                proposals = self._propose(n - len(out))
            if not proposals:
                break
            for values, token in proposals:
                candidate = self._admit(values, token)
                if candidate is not None:
                    out.append(candidate)
            if len(out) >= n or self._one_point:
                break
        self._log.append(["ask", int(n), [c.key for c in out]])
        return out

    def tell(self, candidate: Candidate | int, value: Value) -> None:
        """Report the result of an asked candidate.

        Args:
            candidate: the :class:`Candidate` from :meth:`ask`, or its ``id``.
            value: a float to maximise, a tuple of :attr:`n_objectives` floats for a
                multi-objective strategy, or ``None`` when the trial failed.

        Raises:
            ValueError: the candidate is not pending (never asked, or already told), or its
                key differs from the one handed out under that id.
            TypeError: ``value`` has the wrong shape for this strategy.
        """
        cid = candidate if isinstance(candidate, numbers.Integral) else candidate.id
        entry = self._pending.get(int(cid))
        if entry is None:
            raise ValueError(
                f"strategy {self._label()!r}: candidate {cid} is not pending (it was never "
                f"asked, or it was already told)"
            )
        if isinstance(candidate, Candidate) and candidate.key != entry.candidate.key:
            raise ValueError(
                f"strategy {self._label()!r}: candidate {cid} has key {candidate.key!r}, but "
                f"the candidate asked under that id has key {entry.candidate.key!r}"
            )
        value = check_value(value, self.n_objectives, self._label())
        del self._pending[int(cid)]
        key = entry.candidate.key
        del self._pending_keys[key]
        self._record[key] = value
        self._tell_backend(entry.token, entry.raw, value)
        for token, raw in self._held.pop(key, []):
            self._tell_backend(token, raw, value)
        self._log.append(["tell", int(cid), log_value(value)])

    def pending(self) -> list[Candidate]:
        """Candidates asked and not yet told, oldest first."""
        return [e.candidate for e in self._pending.values()]

    @property
    def exhausted(self) -> bool:
        """Whether every architecture of the (finite) space is recorded or pending, so
        :meth:`ask` has nothing new to give; always False on a space with float ranges."""
        return self._bound is not None and len(self._record) + len(self._pending) >= self._bound

    @property
    def n_told(self) -> int:
        """How many distinct architectures have a recorded result."""
        return len(self._record)

    def state_dict(self) -> dict[str, Any]:
        """A JSON-safe snapshot: seed, options, space hash and the log of asks and tells."""
        return {
            "strategy": type(self).__name__,
            "version": STATE_VERSION,
            "seed": self.seed,
            "options": json.loads(json.dumps(self.options)),
            "space": self.space.content_hash,
            "log": json.loads(json.dumps(self._log)),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` by rebuilding the backend and replaying the log.

        Raises:
            ValueError: the state belongs to another strategy class, options or space, or the
                replay produced different candidates (a non-deterministic backend).
        """
        label = self._label()
        expected = {
            "strategy": type(self).__name__,
            "version": STATE_VERSION,
            "options": json.loads(json.dumps(self.options)),
            "space": self.space.content_hash,
        }
        check_state(state, expected, label)
        self.seed = int(state["seed"])
        self._reset()
        for step, entry in enumerate(state["log"]):
            if entry[0] == "ask":
                keys = [c.key for c in self.ask(entry[1])]
                if keys != list(entry[2]):
                    raise ValueError(
                        f"strategy {label!r}: replaying the state diverged at log entry {step}: "
                        f"ask({entry[1]}) gave keys {keys}, the state recorded {entry[2]}"
                    )
            else:
                value = entry[2]
                self.tell(entry[1], tuple(value) if isinstance(value, list) else value)

    def __str__(self) -> str:
        return type(self).__name__

    # ------------------------------------------------------------------ helpers

    def _reset(self) -> None:
        self._bound = finite_size(self.space.dimensions)
        self._round = 0
        self._next_id = 0
        self._pending: dict[int, Pending] = {}
        self._pending_keys: dict[str, int] = {}
        self._held: dict[str, list[tuple[Any, dict[str, Any]]]] = {}
        self._record: dict[str, Value] = {}
        self._log: list[list[Any]] = []
        self._noted = False
        # On a one-point space ask proposes the point itself, never asking or telling the
        # backend (scikit-optimize's cannot model a space with nothing to vary); _setup still
        # runs to report a missing package, and may skip the backend when self._one_point.
        self._one_point = self._bound == 1
        self._setup()

    def _tell_backend(self, token: Any, values: Mapping[str, Any], value: Value) -> None:
        if not self._one_point:
            self._observe(token, values, value)

    def _note_exhausted(self) -> None:
        """Log once (per strategy object) that the space has no architecture left."""
        if not self._noted:
            self._noted = True
            count = f"{self._bound} architecture" + ("s" if self._bound != 1 else "")
            log.info(
                "strategy %r: all %s of space %r are recorded or pending; the space is exhausted",
                self._label(), count, self.space.name,
            )  # fmt: skip

    def _admit(self, values: Mapping[str, Any], token: Any) -> Candidate | None:
        """Turn one proposal into a new candidate, or answer it (record, pending, invalid)."""
        raw = dict(values)
        try:
            active = active_values(self.space, raw)
            graph = self.space.decode(active)
            self.space.validate(graph)
        except (KeyError, ValueError, GraphValidationError):
            self._tell_backend(token, raw, None)
            return None
        key = canonical_hash(graph)
        if key in self._record:
            self._tell_backend(token, raw, self._record[key])
            return None
        if key in self._pending_keys:
            self._held.setdefault(key, []).append((token, raw))
            return None
        candidate = Candidate(self._next_id, graph, active, key)
        self._next_id += 1
        self._pending[candidate.id] = Pending(candidate, token, raw)
        self._pending_keys[key] = candidate.id
        return candidate

    def _worst_value(self) -> float:
        """The lowest single-objective score told so far (0.0 before any): the failure stand-in."""
        scores = [v for v in self._record.values() if isinstance(v, float)]
        return min(scores) if scores else 0.0

    def _label(self) -> str:
        return self.name or type(self).__name__

    def _unknown_option_message(self, option: str) -> str:
        valid = sorted(self.defaults)
        close = difflib.get_close_matches(option, valid, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        listed = ", ".join(valid) if valid else "(none)"
        return (
            f"strategy {self._label()!r} got an unknown option {option!r}.{hint} "
            f"Valid options: {listed}"
        )
