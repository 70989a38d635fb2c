"""Exceptions raised by autometa; each says when it is raised."""

from __future__ import annotations

__all__ = [
    "AutometaError",
    "UnknownNameError",
    "SpaceValidationError",
    "GraphValidationError",
    "BuildError",
    "TaskParameterError",
    "EvaluationError",
    "StorageError",
    "StudyInUseError",
    "StudyTakenOverError",
    "ExportError",
    "ConfigurationError",
    "SearchFailedError",
    "PluginError",
]


class AutometaError(Exception):
    """Root of every error autometa raises on purpose."""


class UnknownNameError(AutometaError, KeyError):
    """Raised when a registry (ops, tasks, strategies) is asked for a name it does not hold."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SpaceValidationError(AutometaError, ValueError):
    """Raised when a search-space file or dict is malformed; lists every problem found.

    Attributes:
        errors: one record per problem (file, line, col, key path, expected, got, code, hint).
        file: the file name as the user gave it, or None for a dict.
    """

    def __init__(self, message: str, errors: list | None = None, file: str | None = None):
        super().__init__(message)
        self.errors = list(errors or [])
        self.file = file


class GraphValidationError(AutometaError, ValueError):
    """Raised when a candidate graph breaks a structural rule (cycle, dead node, bad width)."""


class BuildError(AutometaError, ValueError):
    """Raised when a graph cannot be compiled into a torch policy."""


class TaskParameterError(AutometaError, ValueError):
    """Raised when a task family gets parameters outside its documented ranges."""


class EvaluationError(AutometaError, RuntimeError):
    """Raised inside an evaluation that must end as a failed trial (NaN, Inf, divergence)."""


class StorageError(AutometaError, RuntimeError):
    """Raised when a study's storage refuses an operation (unknown id, mismatched space)."""


class StudyInUseError(StorageError):
    """Raised when a search would start on a study that another live process is working on."""


class StudyTakenOverError(StudyInUseError):
    """Raised when a search writes to a study that a newer session has claimed (taken over).

    Every write of a search carries its session's number, the study's *epoch*; once another
    session claims the study, storage refuses the older session's writes with this error, so
    a holder that was taken over while still running cannot change what the new one reads.

    Attributes:
        session: the number of the session that holds the study now.
        host: that session's machine (None when unknown).
        pid: that session's process id (None when unknown).
    """

    def __init__(
        self, message: str, session: int | None = None, host: str | None = None,
        pid: int | None = None,
    ):  # fmt: skip
        super().__init__(message)
        self.session, self.host, self.pid = session, host, pid


class ExportError(AutometaError, ValueError):
    """Raised when an exported architecture folder is missing files or does not match itself."""


class ConfigurationError(AutometaError, ValueError):
    """Raised when a setting cannot work for any candidate; found before anything is spent.

    Unknown task family, evaluator option or hyperparameter name, an unavailable strategy or
    a fidelity plan the evaluator cannot follow: ``search()`` checks these before it creates
    or resumes a study, and an evaluation that raises it stops the search.
    """


class SearchFailedError(AutometaError, RuntimeError):
    """Raised by ``search()`` when a run ends with failed trials and no successful one.

    Attributes:
        result: the :class:`~autometa.experiment.SearchResult` read back from storage (every
            trial is stored, so the failures can be inspected).
    """

    def __init__(self, message: str, result: object = None):
        super().__init__(message)
        self.result = result


class PluginError(AutometaError, ImportError):
    """Raised when a module named with ``--import`` (or a plugin asked for) cannot be imported."""
