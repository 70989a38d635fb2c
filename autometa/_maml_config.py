"""Every hyperparameter of the MAML evaluator, with its default and where that default is from.

This module is the one home of these names (the evaluator's modules import them from here);
users import ``MAMLConfig``, ``PRESETS``, ``config_for`` and ``settable_fields`` from
:mod:`autometa.meta`. It lives below every package and free of torch, so that
``autometa validate`` checks a space's hyperparameters without importing the evaluator.

Sources are cited by the short names of ``docs/references.md``: "paper" is Finn, Abbeel & Levine,
*Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks* (ICML 2017); "original
code" is the authors' ``cbfinn/maml_rl``; "pytorch-maml-rl" is the standard PyTorch port;
"ProMP" is Rothfuss et al., *ProMP: Proximal Meta-Policy Search* (ICLR 2019) and "ProMP code"
the authors' ``jonasrothfuss/ProMP`` (its ``ProMP`` class defaults and the settings of its run
scripts ``run_scripts/pro-mp_run_point_mass.py`` and ``pro-mp_run_mujoco.py``, which agree).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from autometa._meta_learners import META_LEARNERS
from autometa.errors import ConfigurationError

__all__ = [
    "MAMLConfig",
    "PRESETS",
    "check_space_hyperparameters",
    "close_match_hint",
    "config_for",
    "field_problem",
    "settable_fields",
]


@dataclass(frozen=True)
class MAMLConfig:
    """Hyperparameters of MAML meta-training and of the held-out test that gives the score.

    Graph hyperparameters (``graph.graph["hyperparameters"]``) may override any field by name
    for one candidate. Derived sizes (``episodes_per_iteration``) are computed, not set.
    """

    meta_learner: str = "maml"
    """The meta-learning algorithm, a name in ``autometa.meta.META_LEARNERS``:
    ``"maml"`` (the paper: REINFORCE inner steps, ``outer`` through them) or ``"promp"``
    (ProMP: LVC inner steps, clipped surrogate with an inner-KL penalty, ``promp_*``)."""

    # -- inner loop (adaptation) ------------------------------------------------------------
    fast_lr: float = 0.1
    """Inner-loop step size alpha (paper App. A.2: 0.1 for every RL task; pytorch-maml-rl 0.1;
    the original 2D-navigation script uses 0.5)."""
    inner_steps: int = 1
    """Policy-gradient steps of adaptation during meta-training (paper §5.3, App. A.2: 1).
    0 trains the initialisation on the task mixture without the MAML objective (the paper's
    "pretrained" baseline)."""
    episodes_per_task: int = 20
    """Episodes per task for each inner step and for the outer batch (paper App. A.2: 20
    trajectories; AntDir uses 40)."""
    meta_sgd: bool = False
    """Learn one step size per parameter, initialised at ``fast_lr`` (Meta-SGD, Li et al.
    2017); off in the paper."""

    # -- outer loop (meta-update) -----------------------------------------------------------
    num_tasks: int = 20
    """Tasks per meta-batch (paper App. A.2: 20 for 2D navigation, 40 for locomotion)."""
    meta_iterations: int = 100
    """Meta-updates per evaluation (paper: up to 500; original 2D-navigation script:
    ``n_itr = 100``)."""
    outer: str = "trpo"
    """Meta-optimiser, a name in ``autometa.meta.outer.OUTER_STEPS``: ``"trpo"`` (paper §5.3)
    or ``"adam"``."""
    first_order: bool = False
    """Drop second derivatives through the inner step (first-order MAML, paper §5.2); the paper
    uses full second order for RL."""
    max_kl: float = 0.01
    """TRPO trust-region size on the mean KL (original code and pytorch-maml-rl: max KL 0.01;
    not stated in the paper)."""
    cg_iters: int = 10
    """Conjugate-gradient iterations for the TRPO direction (reference code: 10)."""
    cg_damping: float = 1e-5
    """Damping added to the Fisher/Hessian-vector product (reference code: 1e-5)."""
    ls_max_steps: int = 15
    """Backtracking line-search steps (reference code: 15)."""
    ls_backtrack: float = 0.8
    """Line-search shrink factor per step (original code and pytorch-maml-rl: 0.8)."""
    adam_lr: float = 1e-3
    """Adam step size when ``outer="adam"`` (not from the paper: Adam's usual default)."""

    # -- ProMP's outer loop (meta_learner="promp"; ``outer`` does not apply) -----------------
    promp_steps: int = 5
    """Adam steps on the ProMP objective per meta-iteration, all on the same samples (ProMP
    Algorithm 1's N; ProMP code: ``num_ppo_steps=5``, run scripts ``num_promp_steps: 5``)."""
    promp_lr: float = 1e-3
    """Adam step size of those steps (ProMP code: ``learning_rate=1e-3``)."""
    promp_clip: float = 0.3
    """Clip range epsilon of the post-adaptation likelihood ratio in the outer surrogate
    (ProMP code run scripts: ``clip_eps: 0.3``; the class default is 0.2)."""
    promp_kl_coeff: float = 5e-4
    """Weight eta of the inner-KL penalty, the mean KL between the pre-update policies that
    sampled and the current ones (ProMP code run scripts: ``init_inner_kl_penalty: 5e-4``;
    the class default is 1e-2)."""
    promp_adaptive_kl: bool = False
    """Halve eta after a meta-iteration whose inner KL is below ``promp_target_kl / 1.5``,
    double it above ``1.5 x promp_target_kl`` (ProMP code run scripts:
    ``adaptive_inner_kl_penalty: False``; the class default is True)."""
    promp_target_kl: float = 0.01
    """Target inner KL of the adaptive penalty (ProMP code: ``target_inner_step=0.01``)."""

    # -- returns, advantages, baseline ------------------------------------------------------
    gamma: float = 0.99
    """Discount (not stated in the paper; original code and pytorch-maml-rl: 0.99)."""
    gae_lambda: float = 1.0
    """GAE lambda; 1.0 is plain returns minus the baseline (original code, pytorch-maml-rl)."""
    normalize_advantages: bool = True
    """Centre and scale advantages per task over valid steps (original code, pytorch-maml-rl)."""
    baseline_ridge: float = 1e-5
    """Ridge coefficient of the linear feature baseline (rllab ``LinearFeatureBaseline``:
    1e-5, raised x10 up to 5 times while the solve is not finite)."""
    init_std: float = 1.0
    """Initial standard deviation of a Gaussian policy (original code: 1.0)."""

    # -- held-out test (the score) ----------------------------------------------------------
    test_tasks: int = 40
    """Held-out test tasks (original evaluation scripts: 40 test tasks)."""
    test_episodes: int = 40
    """Episodes per test task and adaptation step (original 2D-navigation evaluation: 4000
    env steps = 40 trajectories per gradient step)."""
    test_steps: int = 1
    """Adaptation steps whose return is the score (paper trains and scores with 1 step)."""
    report_steps: int = 3
    """Returns are also reported after each step up to this many (paper figures: 0..3)."""
    test_lr_scale: float = 0.5
    """Step size of test steps after the first, relative to ``fast_lr`` (paper App. A.2:
    alpha, then alpha/2; pytorch-maml-rl keeps alpha, i.e. 1.0)."""
    test_seed: int = 2017
    """Seed of the fixed held-out tasks and of their rollout noise; the same for every
    candidate so scores are comparable (common random numbers)."""

    # -- derived ----------------------------------------------------------------------------
    episodes_per_iteration: int = field(init=False)
    """Episodes sampled per meta-iteration: ``num_tasks x episodes_per_task x
    (inner_steps + 1)``."""

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ConfigurationError("invalid MAMLConfig: " + "; ".join(problems))
        object.__setattr__(
            self,
            "episodes_per_iteration",
            self.num_tasks * self.episodes_per_task * (self.inner_steps + 1),
        )

    def replace(self, **changes: Any) -> MAMLConfig:
        """A copy with ``changes`` applied.

        Raises:
            ConfigurationError: an unknown field (named, with the closest valid one) or a
                value that breaks a field's rule.
        """
        unknown = sorted(set(changes) - set(settable_fields()))
        if unknown:
            raise ConfigurationError(
                f"unknown MAMLConfig field(s) {', '.join(map(repr, unknown))}."
                f"{close_match_hint(unknown)} Valid names: {', '.join(settable_fields())}"
            )
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe view of every field, derived ones included."""
        return dataclasses.asdict(self)


def settable_fields() -> list[str]:
    """Names of the fields a user, a preset or a graph hyperparameter may set."""
    return [f.name for f in dataclasses.fields(MAMLConfig) if f.init]


def close_match_hint(names: list[str], known: list[str] | None = None) -> str:
    """`` Did you mean 'x'?`` for the first of ``names`` close to a known name, else ``""``."""
    known = settable_fields() if known is None else known
    for name in names:
        close = difflib.get_close_matches(str(name), known, n=1)
        if close:
            return f" Did you mean {close[0]!r}" + (f" for {name!r}?" if len(names) > 1 else "?")
    return ""


def check_space_hyperparameters(space: Any, config: MAMLConfig, owner: str) -> None:
    """Check that every hyperparameter of ``space`` is a valid :class:`MAMLConfig` setting.

    Each name must be a settable field, and every value the space can give it (its constant,
    its choices, or both ends of its range) must pass the field's rule. Each rule reads its
    own field alone, so a value is checked by :func:`field_problem` without building a
    configuration (a choice of 100,000 values is checked in a fraction of a second).

    Args:
        space: a :class:`~autometa.space.SearchSpace`.
        config: the configuration the hyperparameters override (its other fields do not
            change whether a value is valid).
        owner: who is checking, for the message (e.g. ``"MAMLEvaluator"``).

    Raises:
        ConfigurationError: one line naming the space, each bad name or value, and the valid
            names.
    """
    where = f"space {space.name!r}" + (f" ({space.source})" if space.source else "")
    constants = space.to_dict().get("hyperparameters") or {}
    names = list(constants)
    settable = settable_fields()
    unknown = [n for n in names if n not in settable]
    if unknown:
        what = (
            f"hyperparameter {unknown[0]!r} is not a setting"
            if len(unknown) == 1
            else f"hyperparameters {', '.join(map(repr, unknown))} are not settings"
        )
        raise ConfigurationError(
            f"{where}: {what} of {owner}.{close_match_hint(unknown)} "
            f"Valid names: {', '.join(settable)}"
        )
    dims = {d.name: d for d in space.dimensions}
    problems: dict[str, None] = {}  # in first-seen order, each once
    for name in names:
        for value in _space_values(dims.get(f"hp.{name}"), constants[name]):
            problem = field_problem(name, value)  # each rule reads its own field only
            if problem is not None:
                problems[problem] = None
    if problems:
        raise ConfigurationError(
            f"{where}: hyperparameter values {owner} cannot use: {'; '.join(problems)}"
        )


def _space_values(dim: Any, constant: Any) -> list[Any]:
    """The values to check for one hyperparameter: its constant (no dimension ``dim``), its
    choices, or its range ends."""
    if dim is None:
        return [constant]
    if hasattr(dim, "choices"):
        return list(dim.choices)
    if hasattr(dim, "low"):
        return [dim.low, dim.high]
    return [True, False]


def _problems(cfg: MAMLConfig) -> list[str]:
    """Every rule ``cfg`` breaks, as ``field: expected X, got Y``, in field-rule order."""
    out = []
    for name in ("meta_learner", *_RULES):
        problem = field_problem(name, getattr(cfg, name))
        if problem is not None:
            out.append(problem)
    return out


def field_problem(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for the field ``name``, as ``name: expected X, got Y``.

    Each field's rule reads that field alone, so one value is checked without building a
    configuration (a space may list 100,000 choices of one hyperparameter). None if it is
    fine or ``name`` has no rule.
    """
    if name == "meta_learner":
        if isinstance(value, str) and value in META_LEARNERS:
            return None
        return f"meta_learner: {META_LEARNERS.unknown_message(value)}"
    rule = _RULES.get(name)
    if rule is None or rule[0](value):
        return None
    return f"{name}: expected {rule[1]}, got {value!r}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


_Rule = tuple[Callable[[Any], bool], str]
_INT_1: _Rule = (lambda v: _is_int(v) and v >= 1, "an int >= 1")
_INT_0: _Rule = (lambda v: _is_int(v) and v >= 0, "an int >= 0")
_POSITIVE: _Rule = (lambda v: _is_real(v) and v > 0, "a finite number > 0")
_NON_NEGATIVE: _Rule = (lambda v: _is_real(v) and v >= 0, "a finite number >= 0")
_UNIT: _Rule = (lambda v: _is_real(v) and 0 < v <= 1, "a number in (0, 1]")
_BOOL: _Rule = (lambda v: isinstance(v, bool), "a bool")

#: Each field's rule and what it expects, in the order problems are reported (after
#: ``meta_learner``, which is checked against its registry).
_RULES: dict[str, _Rule] = {
    **dict.fromkeys(
        (
            "episodes_per_task",
            "num_tasks",
            "promp_steps",
            "cg_iters",
            "ls_max_steps",
            "test_tasks",
            "test_episodes",
        ),
        _INT_1,
    ),
    **dict.fromkeys(
        ("inner_steps", "meta_iterations", "test_steps", "report_steps", "test_seed"), _INT_0
    ),
    **dict.fromkeys(
        ("fast_lr", "max_kl", "adam_lr", "init_std", "promp_lr", "promp_clip", "promp_target_kl"),
        _POSITIVE,
    ),
    **dict.fromkeys(
        ("cg_damping", "baseline_ridge", "test_lr_scale", "promp_kl_coeff"), _NON_NEGATIVE
    ),
    **dict.fromkeys(("gamma", "gae_lambda", "ls_backtrack"), _UNIT),
    **dict.fromkeys(
        ("meta_sgd", "first_order", "normalize_advantages", "promp_adaptive_kl"), _BOOL
    ),
    "outer": (lambda v: isinstance(v, str) and v != "", "a registered outer step name"),
}


_NAV = MAMLConfig()
_LOCOMOTION = MAMLConfig(num_tasks=40, meta_iterations=500)

PRESETS: dict[str, MAMLConfig] = {
    # paper §5.3 / App. A.2: alpha 0.1, 1 step, 20 episodes x 20 tasks, horizon 100 (the
    # family's), TRPO max KL 0.01; 100 meta-iterations as in the original point script.
    "navigation2d": _NAV,
    "navigation2d-sparse": _NAV,
    # paper App. A.2: 40 tasks per meta-batch, 20 rollouts, up to 500 meta-iterations.
    "halfcheetah-vel": _LOCOMOTION,
    "halfcheetah-dir": _LOCOMOTION,
    "ant-vel": _LOCOMOTION,
    # paper App. A.2: AntDir uses 40 rollouts per step.
    "ant-dir": dataclasses.replace(_LOCOMOTION, episodes_per_task=40),
}
"""Paper settings per task family; families not listed use the 2D-navigation values."""


def config_for(family_name: str | None, **overrides: Any) -> MAMLConfig:
    """The preset for ``family_name`` (or the defaults) with ``overrides`` applied."""
    base = PRESETS.get(family_name or "", _NAV)
    return base.replace(**overrides) if overrides else base
