"""How much a search may spend: trials, wall-clock seconds, meta-iterations."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from autometa.errors import ConfigurationError

__all__ = ["Budget", "Usage", "is_positive_number", "is_whole"]


def is_whole(value: Any) -> bool:
    """An integer (numpy's included), and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_positive_number(value: Any) -> bool:
    """A finite real number above 0, and not a bool."""
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


@dataclass(frozen=True)
class Usage:
    """What a study has spent so far, over all its sessions.

    Attributes:
        trials: trials created (every created trial runs to a finished state, so this is
            what the trial budget limits; duplicates answered from storage count too).
        seconds: wall-clock seconds the study has been worked on.
        meta_iterations: meta-iterations evaluated, every multi-fidelity rung included.
    """

    trials: int = 0
    seconds: float = 0.0
    meta_iterations: int = 0


@dataclass(frozen=True)
class Budget:
    """Limits of a search; it stops at whichever is reached first. None means no limit.

    Args:
        trials: trials in the study (finished ones from earlier sessions count).
        seconds: wall-clock seconds summed over sessions; when reached, running trials are
            stopped and re-queued, so a resume with a larger budget runs them first.
        meta_iterations: meta-iterations summed over all evaluations; no new evaluation
            starts once it is reached, running ones finish.

    Example:
        >>> Budget(trials=100, seconds=3600).exhausted(Usage(trials=100))
        'trials budget reached (100)'
    """

    trials: int | None = None
    seconds: float | None = None
    meta_iterations: int | None = None

    def __post_init__(self) -> None:
        for name in ("trials", "meta_iterations"):
            value = getattr(self, name)
            if value is None:
                continue
            if not is_whole(value) or value < 1:
                raise ConfigurationError(
                    f"Budget `{name}` must be an int >= 1 or None, got {name}={value!r}"
                )
            object.__setattr__(self, name, int(value))  # numpy ints become plain ints
        value = self.seconds
        if value is not None:
            if not is_positive_number(value):
                raise ConfigurationError(
                    f"Budget `seconds` must be a finite number > 0 or None, got seconds={value!r}"
                )
            object.__setattr__(self, "seconds", float(value))

    def exhausted(self, usage: Usage) -> str | None:
        """Why the budget is used up (the first limit reached), or None while it is not."""
        if self.trials is not None and usage.trials >= self.trials:
            return f"trials budget reached ({self.trials})"
        if self.seconds is not None and usage.seconds >= self.seconds:
            return f"time budget reached ({self.seconds:g} s)"
        if self.meta_iterations is not None and usage.meta_iterations >= self.meta_iterations:
            return f"meta-iterations budget reached ({self.meta_iterations})"
        return None

    def remaining(self, usage: Usage) -> dict[str, float]:
        """What is left of each limit that is set."""
        out: dict[str, float] = {}
        if self.trials is not None:
            out["trials"] = max(0, self.trials - usage.trials)
        if self.seconds is not None:
            out["seconds"] = max(0.0, self.seconds - usage.seconds)
        if self.meta_iterations is not None:
            out["meta_iterations"] = max(0, self.meta_iterations - usage.meta_iterations)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (stored with the study so ``autometa resume`` reuses it)."""
        return {
            "trials": self.trials,
            "seconds": self.seconds,
            "meta_iterations": self.meta_iterations,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Budget:
        """Inverse of :meth:`to_dict`."""
        return cls(**(data or {}))
