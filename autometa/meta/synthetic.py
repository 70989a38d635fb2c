"""A cheap, deterministic stand-in for MAML evaluation, for tests and benchmarks only.

:class:`SyntheticObjective` scores a candidate graph in about a millisecond, with the
evaluator signature of :class:`autometa.meta.MAMLEvaluator`. Its score is a smooth function
of features a surrogate model can learn (log parameter count, depth, the ops used, wiring,
residuals and the ``fast_lr`` / ``inner_steps`` hyperparameters) with a known optimum
region, plus a small deterministic "noise" drawn from the graph's canonical hash. It says
nothing about how well an architecture meta-learns: never use it to choose a policy.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import time
from typing import Any

import networkx as nx

from autometa._maml_config import MAMLConfig, check_space_hyperparameters, settable_fields
from autometa.errors import ConfigurationError
from autometa.evaluation import EvalResult, failed_result
from autometa.graph import canonical_hash
from autometa.policy import count_params

__all__ = ["SyntheticObjective", "OP_QUALITY"]

OP_QUALITY: dict[str, float] = {
    "linear_tanh": 1.0,
    "layernorm_tanh": 0.95,
    "linear_elu": 0.9,
    "linear_silu": 0.85,
    "linear_gelu": 0.85,
    "layernorm_relu": 0.8,
    "linear_relu": 0.7,
    "linear_softplus": 0.6,
    "identity": 0.5,
    "linear_sigmoid": 0.4,
    "linear": 0.3,
}
"""Per-op quality in [0, 1]; ops not listed get a value drawn from a hash of their name."""


def _unit(text: str) -> float:
    """A deterministic number in [0, 1) from ``text``."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:13], 16) / 16**13


class SyntheticObjective:
    """Deterministic synthetic evaluator: ``objective(graph, seed=0) -> EvalResult``.

    The score (higher is better, at most about 1.05) is::

        1 + 0.4 * (mean op quality - 1)
          - 0.5 * ((log10(params) - log10(optimum_params)) / 0.5) ** 2
          - 0.1 * (depth - optimum_depth) ** 2
          + 0.05 * [some node merges two or more inputs] + 0.05 * (residual share)
          - 0.25 * ((log10(fast_lr) - log10(optimum_fast_lr)) / 0.5) ** 2
          - 0.05 * (inner_steps - 2) ** 2
          + noise * u,   u in [-1, 1) drawn from the canonical hash
          + seed_noise * v,   v in [-1, 1) drawn from the canonical hash and the seed

    ``params`` is :func:`autometa.policy.count_params` for ``obs_dim``/``act_dim``; depth is
    the number of hidden nodes on the longest input-to-output path. Missing hyperparameters
    count as at their optimum. The result does not depend on ``device``, nor on ``seed``
    unless ``seed_noise`` is set (a stand-in for the seed-to-seed spread of a real evaluation,
    to show what the final stage guards against).

    Args:
        obs_dim: observation size used to count parameters.
        act_dim: action size used to count parameters.
        discrete: count parameters for a categorical head instead of a Gaussian one.
        noise: amplitude of the hash-based deterministic noise.
        seed_noise: amplitude of a noise that changes with the evaluation seed (0: none).
        optimum_params: parameter count at the size optimum.
        optimum_depth: depth at the depth optimum.
        optimum_fast_lr: ``fast_lr`` at its optimum.
        fail_fraction: share of architectures (chosen by hash) that fail, for failure tests.
        delay: seconds to sleep per call, for parallelism benchmarks.
        full_fidelity: meta-iterations of a full evaluation; ``meta_iterations`` below it
            lower the score by ``0.5 * (1 - meta_iterations / full_fidelity)`` (rank-preserving).
    """

    def __init__(
        self,
        *,
        obs_dim: int = 2,
        act_dim: int = 2,
        discrete: bool = False,
        noise: float = 0.02,
        optimum_params: float = 8000.0,
        optimum_depth: int = 3,
        optimum_fast_lr: float = 0.1,
        fail_fraction: float = 0.0,
        delay: float = 0.0,
        full_fidelity: int = 100,
        seed_noise: float = 0.0,
    ) -> None:
        numbers = dict(
            noise=noise, optimum_params=optimum_params, optimum_depth=optimum_depth,
            optimum_fast_lr=optimum_fast_lr, fail_fraction=fail_fraction, delay=delay,
            full_fidelity=full_fidelity, obs_dim=obs_dim, act_dim=act_dim,
        )  # fmt: skip
        for name, value in numbers.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(
                    f"`{name}` must be a number, got {value!r} ({type(value).__name__})"
                )
        if not 0.0 <= fail_fraction <= 1.0:
            raise ConfigurationError(f"`0 <= fail_fraction <= 1` must hold, got {fail_fraction=}")
        if delay < 0 or full_fidelity < 1:
            raise ConfigurationError(
                f"`delay >= 0` and `full_fidelity >= 1` must hold, got {delay=}, {full_fidelity=}"
            )
        self.obs_dim, self.act_dim, self.discrete = obs_dim, act_dim, discrete
        self.noise = noise
        self.optimum_params = optimum_params
        self.optimum_depth = optimum_depth
        self.optimum_fast_lr = optimum_fast_lr
        self.fail_fraction = fail_fraction
        self.delay = delay
        self.full_fidelity = full_fidelity
        self.seed_noise = seed_noise
        self._params: dict[str, int] = {}

    def settable_names(self) -> list[str]:
        """Names a space's ``hyperparameters`` may set: those of the MAML evaluator it stands
        in for (only ``fast_lr`` and ``inner_steps`` change the score)."""
        return settable_fields()

    def check_space(self, space: Any) -> None:
        """Refuse a space whose hyperparameters the MAML evaluator would refuse.

        Raises:
            ConfigurationError: an unknown hyperparameter name or a value out of its range.
        """
        check_space_hyperparameters(space, MAMLConfig(), type(self).__name__)

    def to_config(self) -> dict[str, Any]:
        """JSON-safe settings that :meth:`from_config` turns back into this objective."""
        names = inspect.signature(type(self).__init__).parameters
        return {name: getattr(self, name) for name in names if name != "self"}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SyntheticObjective:
        """Rebuild the objective from :meth:`to_config` output."""
        return cls(**config)

    def __call__(
        self,
        graph: nx.DiGraph,
        *,
        seed: int = 0,
        device: str | None = None,
        meta_iterations: int | None = None,
    ) -> EvalResult:
        """Score ``graph``; never raises (a bad graph comes back as a failed result)."""
        start = time.perf_counter()
        if self.delay:
            time.sleep(self.delay)
        try:
            return self._evaluate(graph, seed, device, meta_iterations, start)
        except Exception as exc:  # an evaluator reports, it does not raise
            return failed_result(f"{type(exc).__name__}: {exc}", seed=seed, synthetic=True)

    def features(self, graph: nx.DiGraph) -> dict[str, Any]:
        """The features the score is built from (params, depth, op quality, wiring, ...)."""
        key = canonical_hash(graph)
        if key not in self._params:
            self._params[key] = count_params(graph, self.obs_dim, self.act_dim, self.discrete)
        hidden = [n for n, a in graph.nodes(data=True) if a.get("op") not in ("input", "output")]
        ops = [graph.nodes[n]["op"] for n in hidden]
        quality = [OP_QUALITY.get(op, 0.3 + 0.6 * _unit("op:" + op)) for op in ops]
        hyper = graph.graph.get("hyperparameters") or {}
        return {
            "key": key,
            "params": self._params[key],
            "depth": _depth(graph),
            "op_quality": sum(quality) / len(quality) if quality else 0.0,
            "wired": any(graph.in_degree(n) >= 2 for n in hidden),
            "residual_share": (
                sum(bool(graph.nodes[n].get("residual")) for n in hidden) / len(hidden)
                if hidden
                else 0.0
            ),
            "fast_lr": float(hyper.get("fast_lr", self.optimum_fast_lr)),
            "inner_steps": int(hyper.get("inner_steps", 2)),
        }

    def cost_objectives(self, graph: nx.DiGraph) -> dict[str, float]:
        """The objectives of ``graph``'s result known before it runs (``params``)."""
        return {"params": float(self.features(graph)["params"])}

    def score(self, graph: nx.DiGraph) -> float:
        """The full-fidelity score of ``graph`` (see the class docstring)."""
        return self._score(self.features(graph))

    def _score(self, f: dict[str, Any]) -> float:
        size = (math.log10(max(f["params"], 1)) - math.log10(self.optimum_params)) / 0.5
        lr = (math.log10(f["fast_lr"]) - math.log10(self.optimum_fast_lr)) / 0.5
        value = (
            1.0
            + 0.4 * (f["op_quality"] - 1.0)
            - 0.5 * size**2
            - 0.1 * (f["depth"] - self.optimum_depth) ** 2
            + 0.05 * f["wired"]
            + 0.05 * f["residual_share"]
            - 0.25 * lr**2
            - 0.05 * (f["inner_steps"] - 2) ** 2
        )
        return value + self.noise * (2.0 * _unit("noise:" + f["key"]) - 1.0)

    def _evaluate(
        self,
        graph: nx.DiGraph,
        seed: int,
        device: str | None,
        meta_iterations: int | None,
        start: float,
    ) -> EvalResult:
        f = self.features(graph)
        fidelity = self.full_fidelity if meta_iterations is None else int(meta_iterations)
        metrics = {
            **{k: v for k, v in f.items() if k != "key"},
            "key": f["key"],
            "seed": seed,
            "device": device or "cpu",
            "synthetic": True,
        }
        if self.fail_fraction and _unit("fail:" + f["key"]) < self.fail_fraction:
            metrics["wall_time"] = time.perf_counter() - start
            result = failed_result(
                f"synthetic failure (fail_fraction={self.fail_fraction})", **metrics
            )
            result.fidelity = fidelity
            return result
        shortfall = 1.0 - min(fidelity, self.full_fidelity) / self.full_fidelity
        score = self._score(f) - 0.5 * shortfall
        if self.seed_noise:
            score += self.seed_noise * (2.0 * _unit(f"seed:{f['key']}:{int(seed)}") - 1.0)
        metrics["wall_time"] = time.perf_counter() - start
        return EvalResult(
            status="ok",
            score=score,
            objectives={"params": float(f["params"])},
            metrics=metrics,
            fidelity=fidelity,
        )


def _depth(graph: nx.DiGraph) -> int:
    """Hidden nodes on the longest path from ``input`` to ``output``."""
    longest: dict[Any, int] = {}
    for node in nx.topological_sort(graph):
        preds = [longest[u] for u in graph.pred[node]]
        hidden = graph.nodes[node].get("op") not in ("input", "output")
        longest[node] = (max(preds) if preds else 0) + hidden
    return max(longest.values(), default=0)
