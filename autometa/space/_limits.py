"""Size limits on space files, so a hostile or broken file fails fast with a clear error.

A space file is small (the shipped ones are under 1 KiB); these bounds sit far above any
real space and far below what would exhaust time or memory. Each is checked where the
data is read, before anything is built from it, and breaking one is a
:class:`~autometa.errors.SpaceValidationError` naming the limit.
"""

from __future__ import annotations

__all__ = ["MAX_FILE_BYTES", "MAX_ALIAS_NODES", "MAX_FLOW_DEPTH", "MAX_INT_DIGITS"]

MAX_FILE_BYTES = 1024 * 1024
"""Largest space file :func:`~autometa.space.load_space` reads, in bytes (``max_bytes=``)."""

MAX_ALIAS_NODES = 10_000
"""Most YAML nodes that aliases (``*name``, merge keys ``<<``) may expand to, in all."""

MAX_FLOW_DEPTH = 64
"""Most levels of ``[ ]`` and ``{ }`` nested in a file (PyYAML slows down with each level)."""

MAX_INT_DIGITS = 100
"""Most digits of an integer (below Python's int-string conversion limit, and any float)."""
