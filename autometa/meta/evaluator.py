"""The MAML evaluator: meta-train a candidate's policy, then score its few-step adaptation.

``MAMLEvaluator(...)(graph, seed=..., device=...)`` builds the candidate's policy, runs
``meta_iterations`` MAML meta-updates on the task family, adapts the meta-learned
initialisation on fixed held-out test tasks and returns an :class:`EvalResult`. It never
raises for a bad candidate: build errors, NaN/Inf, out-of-memory and bad hyperparameters come
back as failed results with the reason. Settings that cannot work for any candidate (an
unknown task family, option or hyperparameter name) raise :class:`ConfigurationError` at
construction or from :meth:`MAMLEvaluator.check_space`, and a code bug raises, so neither is
mistaken for a bad candidate.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import torch

from autometa._maml_config import (
    MAMLConfig,
    check_space_hyperparameters,
    config_for,
    settable_fields,
)
from autometa.errors import ConfigurationError
from autometa.evaluation import EvalResult, Reporter
from autometa.meta._evaluate import evaluate_pairs
from autometa.meta._evaluator_settings import (
    candidate_config,
    check_family,
    check_learner,
    make_family,
)
from autometa.meta._scoring import graph_objectives
from autometa.meta.allocator import tune_cpu_allocator
from autometa.meta.memory import estimate_evaluation_memory
from autometa.meta.training_state import TrainingState

__all__ = ["MAMLEvaluator"]


class MAMLEvaluator:
    """Scores a candidate graph by how well its policy meta-learns a task family with MAML.

    Args:
        task_family: a registered family name (made on the evaluation's device) or a
            :class:`~autometa.tasks.TaskFamily` instance (used as is, on its own device).
        meta_iterations: meta-updates per evaluation (default: the family's preset).
        family_options: keyword options for ``make_task`` when ``task_family`` is a name.
        keep_state_dict: return the meta-learned weights (on CPU) for export, and with
            Meta-SGD (``meta_sgd=True``) the learned step sizes in ``EvalResult.step_sizes``.
        traced: how TRPO computes its loss, gradient and products: the traced program (True),
            eagerly (False), or by the evaluation's size (None, the default: traced from
            ``autometa.meta.backend.TRACE_MIN_STEPS`` post-adaptation transitions). Both give
            the same numbers; tracing costs about a second once and halves the products.
        compiled: compile the traced TRPO program with ``torch.compile`` (inductor) wherever
            it runs (``traced``), which fuses its element-wise work: on one CPU thread at
            the default size a meta-iteration took 0.72x the traced program's time, after a
            compilation of seconds (inductor's on-disk cache) to a few minutes per
            architecture, so it pays for long evaluations only. Fused loops round
            differently, so the scores are not bit-identical to an evaluation without it;
            the setting is stored with the study and every evaluation it changed records
            ``metrics["trpo_compiled"]``. A program that fails to compile falls back to the
            traced one with a logged warning.
        **overrides: any :class:`MAMLConfig` field, applied over the family's preset
            (``meta_learner="promp"`` meta-trains with ProMP instead of MAML).

    Raises:
        ConfigurationError: at construction, for an unknown task family (with the closest
            registered name), ``family_options`` the family does not take, or an unknown or
            invalid configuration field.

    Example:
        >>> evaluator = MAMLEvaluator("navigation2d", meta_iterations=50)  # doctest: +SKIP
        >>> result = evaluator(graph, seed=0, device="cuda")  # doctest: +SKIP
    """

    def __init__(
        self,
        task_family: Any = "navigation2d",
        meta_iterations: int | None = None,
        *,
        family_options: dict[str, Any] | None = None,
        keep_state_dict: bool = True,
        traced: bool | None = None,
        compiled: bool = False,
        **overrides: Any,
    ) -> None:
        if meta_iterations is not None:
            overrides["meta_iterations"] = meta_iterations
        name = task_family if isinstance(task_family, str) else getattr(task_family, "name", "")
        self.task_family = task_family
        self.family_options = dict(family_options or {})
        self.keep_state_dict = keep_state_dict
        if traced is not None and not isinstance(traced, bool):
            raise ConfigurationError(f"traced: expected True, False or None, got {traced!r}")
        self.traced = traced
        if not isinstance(compiled, bool):
            raise ConfigurationError(f"compiled: expected True or False, got {compiled!r}")
        self.compiled = compiled
        if isinstance(task_family, str):
            check_family(task_family, self.family_options)
        elif self.family_options:
            raise ConfigurationError(
                "family_options apply only when task_family is a registered name, not a "
                f"{type(task_family).__name__} instance"
            )
        self.config = config_for(name, **overrides)
        check_learner(self.config)
        self._families: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"MAMLEvaluator(task_family={self.task_family!r}, config={self.config})"

    def to_config(self) -> dict[str, Any]:
        """JSON-safe settings that :meth:`from_config` turns back into this evaluator.

        Stored with every study, so ``autometa resume`` can rebuild the evaluator of a search
        started from Python. A family passed as an object is recorded by its name.
        """
        name = self.task_family
        if not isinstance(name, str):
            name = getattr(name, "name", None) or repr(name)
        config = self.config.to_dict() if hasattr(self.config, "to_dict") else {}
        fields = set(settable_fields())
        out = {
            "task_family": name,
            "family_options": dict(self.family_options),
            "keep_state_dict": self.keep_state_dict,
            "config": {k: v for k, v in config.items() if k in fields},
        }
        if self.traced is not None:
            out["traced"] = self.traced
        if self.compiled:
            out["compiled"] = True
        return out

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MAMLEvaluator:
        """Rebuild an evaluator from :meth:`to_config` output."""
        return cls(
            config["task_family"],
            family_options=config.get("family_options"),
            keep_state_dict=config.get("keep_state_dict", True),
            traced=config.get("traced"),
            compiled=config.get("compiled", False),
            **config.get("config", {}),
        )

    def settable_names(self) -> list[str]:
        """Names a space's ``hyperparameters`` may set: the :class:`MAMLConfig` fields."""
        return settable_fields()

    def check_space(self, space: Any) -> None:
        """Check, before a search starts, that every hyperparameter of ``space`` is usable.

        Raises:
            ConfigurationError: a name that is not a :class:`MAMLConfig` field (with the
                closest one), or a value (constant, choice or range end) the field refuses.
        """
        check_space_hyperparameters(space, self.config, type(self).__name__)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the per-device family cache (workers make their own)."""
        return {**self.__dict__, "_families": {}}

    def config_for_graph(
        self, graph: nx.DiGraph, meta_iterations: int | None = None
    ) -> MAMLConfig:
        """The configuration for one candidate: graph hyperparameters override the evaluator's.

        Raises:
            ConfigurationError: naming every hyperparameter that is not a :class:`MAMLConfig`
                field, or a value a field refuses.
        """
        return candidate_config(self.config, graph, meta_iterations)

    def family(self, device: str | torch.device | None = None):
        """The task family on ``device`` (made once per device for a registered name).

        Raises:
            ConfigurationError: the family cannot be made with these options here (unknown
                in this process, an option out of range) or lives on another device.
        """
        if not isinstance(self.task_family, str):
            if device is not None and torch.device(device) != self.task_family.device:
                raise ConfigurationError(
                    f"the task family lives on {self.task_family.device}; got device={device!r} "
                    "(pass the family's name to have it made on any device)"
                )
            return self.task_family
        key = str(torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu")))
        if key not in self._families:
            self._families[key] = make_family(self.task_family, key, self.family_options)
        return self._families[key]

    def cost_objectives(self, graph: nx.DiGraph) -> dict[str, float]:
        """The objectives of ``graph``'s result known before it runs: ``params`` and ``macs``
        (what a multi-objective search minimises; the ``dominated`` pruner compares them)."""
        family = self.family("cpu") if isinstance(self.task_family, str) else self.task_family
        return graph_objectives(graph, family)

    def estimate_memory(self, graph: nx.DiGraph, meta_iterations: int | None = None) -> int:
        """Bytes an evaluation of ``graph`` needs at its peak, estimated without running it.

        An upper bound within about 2x (see :mod:`autometa.meta.memory`); the search fails a
        candidate whose estimate is over its memory limit before evaluating it. The family's
        spaces and horizon are read from a CPU copy when ``task_family`` is a name.
        """
        family = self.family("cpu") if isinstance(self.task_family, str) else self.task_family
        cfg = self.config_for_graph(graph, meta_iterations)
        return estimate_evaluation_memory(graph, family, cfg)

    def __call__(
        self,
        graph: nx.DiGraph,
        *,
        seed: int = 0,
        device: str | torch.device | None = None,
        meta_iterations: int | None = None,
        reporter: Reporter | None = None,
        resume_from: TrainingState | dict[str, torch.Tensor] | None = None,
        keep_training_state: bool = False,
    ) -> EvalResult:
        """Meta-train and score ``graph``; a bad candidate comes back as a failed result.

        Only candidate errors (see :func:`is_candidate_error`) become failed results; a
        :class:`ConfigurationError` (e.g. a hyperparameter that is not a setting) or a bug is
        raised, so that it stops the search instead of failing every candidate.

        Args:
            graph: the candidate.
            seed: seeds weight init, task sampling and action noise (same seed and device give
                the same score).
            device: where to run (default: the family's device, or CUDA when available).
            meta_iterations: a smaller budget for multi-fidelity search.
            reporter: told the post-adaptation return of the training tasks every
                ``max(1, meta_iterations // 10)`` iterations (``autometa.meta.reporting``);
                when it says stop, the evaluation ends without its held-out test and
                returns a ``"pruned"`` result scored by the last reported value.
            resume_from: continue meta-training from this state (or its
                :meth:`~autometa.meta.training_state.TrainingState.to_tensors` form) instead of
                from the initial weights; the result equals one trained straight through, and
                ``metrics["resumed_from"]`` is the iteration it continued at.
            keep_training_state: put the state reached in ``EvalResult.training_state`` (as
                tensors) so that a later call can continue it.

        Raises:
            ValueError: ``resume_from`` is not a training state of this candidate and seed.
        """
        family = self.family(device)
        if family.device.type == "cpu":
            tune_cpu_allocator()
        return evaluate_pairs(
            self, [(graph, int(seed))], device=device, meta_iterations=meta_iterations,
            reporters=[reporter], resume_from=[resume_from], keep_state=keep_training_state,
        )[0]  # fmt: skip

    def evaluate_population(
        self,
        pairs: list[tuple[nx.DiGraph, int]],
        *,
        device: str | torch.device | None = None,
        meta_iterations: int | None = None,
        max_members: int | None = None,
        reporters: list[Reporter | None] | None = None,
        resume_from: list[TrainingState | dict[str, torch.Tensor] | None] | None = None,
        keep_training_state: bool = False,
    ) -> list[EvalResult]:
        """Score many ``(graph, seed)`` pairs, batching them into programs.

        Pairs with equal configurations (step sizes may differ) are meta-trained together as
        one program (``autometa.meta._evaluate``), one cohort per architecture, split to fit
        the device's memory. Each result equals that of ``self(graph, seed=seed)`` (bitwise on
        the CPU), and a bad pair fails alone.

        Args:
            pairs: the candidates and their seeds.
            device: where to run (as for :meth:`__call__`).
            meta_iterations: a smaller budget for multi-fidelity search.
            max_members: at most this many pairs per program (default: as memory allows).
            reporters: one reporter (or None) per pair, as ``reporter`` of
                :meth:`__call__`; a member of a program that is told to stop stops alone.
            resume_from: one training state (or None) per pair, as ``resume_from`` of
                :meth:`__call__`; the pairs that continue from one meta-iteration share
                programs. A state that does not fit its pair fails that pair (its reason
                in ``error``), not the call.
            keep_training_state: put each pair's state reached in its
                ``EvalResult.training_state``.

        Returns:
            One :class:`EvalResult` per pair, in order.
        """
        family = self.family(device)
        if family.device.type == "cpu":
            tune_cpu_allocator()
        return evaluate_pairs(
            self, pairs, device=device, meta_iterations=meta_iterations,
            max_members=max_members, reporters=reporters, resume_from=resume_from,
            keep_state=keep_training_state, bad_state_fails=True,
        )  # fmt: skip

    def evaluate_seeds(
        self,
        graph: nx.DiGraph,
        *,
        seeds: list[int],
        device: str | torch.device | None = None,
        meta_iterations: int | None = None,
        reporters: list[Reporter | None] | None = None,
        resume_from: list[TrainingState | dict[str, torch.Tensor] | None] | None = None,
        keep_training_state: bool = False,
    ) -> list[EvalResult]:
        """Score ``graph`` on every seed in one batched program (see
        :meth:`evaluate_population`, whose ``resume_from`` gives one state per seed); the
        search calls this for ``seeds=S`` > 1."""
        pairs = [(graph, int(s)) for s in seeds]
        return self.evaluate_population(
            pairs, device=device, meta_iterations=meta_iterations, reporters=reporters,
            resume_from=resume_from, keep_training_state=keep_training_state,
        )  # fmt: skip
