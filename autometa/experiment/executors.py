"""Executors run evaluations: in this process, in local worker processes, or on Ray.

Every executor is a :class:`BaseExecutor` registered by name in :data:`EXECUTORS`;
:func:`make_executor` builds one from its name, and is what ``search(executor="name")``,
``autometa search --executor NAME`` and ``autometa resume`` use. A new executor is one file
(a subclass) plus one registration::

    from autometa.experiment.executors import EXECUTORS, BaseExecutor

    @EXECUTORS.register("mine")
    class MyExecutor(BaseExecutor): ...

An installed package can instead declare it in the ``autometa.executors`` entry-point group
(:data:`autometa.plugins.EXECUTOR_GROUP`): it is imported only when a search names it.
"""

from __future__ import annotations

from autometa.errors import ConfigurationError
from autometa.experiment._executor import BaseExecutor
from autometa.experiment._inline import InlineExecutor
from autometa.experiment._process import ProcessExecutor, default_devices
from autometa.experiment._ray import RayExecutor
from autometa.experiment._worker import Job, JobKey, Outcome, run_jobs
from autometa.plugins import EXECUTOR_GROUP
from autometa.registry import Registry

__all__ = [
    "EXECUTORS",
    "BaseExecutor",
    "InlineExecutor",
    "Job",
    "JobKey",
    "Outcome",
    "ProcessExecutor",
    "RayExecutor",
    "default_devices",
    "executor_name",
    "make_executor",
    "run_jobs",
]

EXECUTORS: Registry[type[BaseExecutor]] = Registry("executor", group=EXECUTOR_GROUP)
"""Executor classes by name: ``inline``, ``process``, ``ray``, those registered by code
(``EXECUTORS.register("name", cls)``) and the installed ``autometa.executors`` entry points."""
EXECUTORS.register("inline", InlineExecutor)
EXECUTORS.register("process", ProcessExecutor)
EXECUTORS.register("ray", RayExecutor)


def make_executor(
    name: str | None,
    *,
    workers: int = 1,
    trial_timeout: float | None = None,
    ray_address: str | None = None,
    gpus_per_trial: float | None = None,
) -> BaseExecutor:
    """Build the executor registered as ``name`` with the search's settings.

    Calls the class's :meth:`BaseExecutor.from_settings`; nothing is started yet.

    Args:
        name: a name in :data:`EXECUTORS`; None: ``"inline"`` when ``workers`` is 0,
            ``"process"`` otherwise.
        workers: parallel evaluations (>= 0): worker processes for ``process``, evaluations
            in flight for ``ray`` (0: as many as the cluster allows); ``inline`` runs one.
        trial_timeout: seconds after which one evaluation is stopped; None for no limit.
        ray_address: the Ray cluster's address (``ray`` only); None: a local instance.
        gpus_per_trial: GPUs per evaluation (``ray`` only; fractions share a GPU).

    Raises:
        ConfigurationError: an unknown name (one line with the valid names and the closest
            match), an entry point that cannot be imported, or a name that is not an
            executor class.
    """
    if name is None:
        name = "inline" if workers == 0 else "process"
    if not isinstance(name, str) or name not in EXECUTORS:
        raise ConfigurationError(EXECUTORS.unknown_message(name))
    try:
        cls = EXECUTORS.get(name)
    except (ImportError, AttributeError) as exc:  # an installed entry point that is broken
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ConfigurationError(
            f"executor {name!r} could not be loaded: {type(exc).__name__}: {first}"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, BaseExecutor)):
        raise ConfigurationError(
            f"executor {name!r} is registered as {cls!r}, which is not a BaseExecutor subclass"
        )
    return cls.from_settings(
        workers=workers,
        trial_timeout=trial_timeout,
        ray_address=ray_address,
        gpus_per_trial=gpus_per_trial,
    )


def executor_name(executor: BaseExecutor) -> str | None:
    """The name ``executor``'s class is registered under in :data:`EXECUTORS`, or None."""
    return EXECUTORS.name_of(type(executor))
