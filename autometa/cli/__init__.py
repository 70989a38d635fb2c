"""The ``autometa`` command line: one subcommand per step of a user's workflow.

Exit codes scripts can rely on: 0 success, 1 the run itself failed, 2 bad input (a malformed
space file, an unknown name, a missing file), 130 interrupted.
"""

from autometa.cli._main import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, main

__all__ = ["main", "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE", "EXIT_INTERRUPTED"]
