"""autometa: neural architecture search for policies that meta-learn RL tasks.

Data flow: space file -> SearchSpace -> candidate graph -> torch policy -> MAML evaluation
-> trial record -> strategy -> ... -> export. See ``docs/design.md``.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
