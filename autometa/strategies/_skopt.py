"""Bayesian optimisation with scikit-optimize's ``Optimizer`` over the space's flat encoding.

The space becomes a fixed-length vector, one coordinate per dimension with more than one
value: categorical and boolean dimensions as ``skopt.space.Categorical`` over choice indices
(one-hot for the surrogate), integer ranges as ``Integer`` and float ranges as ``Real``, both
with a ``log-uniform`` prior where the dimension is ``log``.

Conditional dimensions: every proposal is decoded through its active dimensions only, and
the point told back to the optimiser is ``space.complete(active values)``, i.e. each
inactive coordinate set to its dimension's default. Vectors keep a fixed length and nothing
crashes; the cost is a mild bias: for a one-layer chain the surrogate sees the second
layer's width "at its default" although it played no part, so it may credit or blame the
default value for outcomes of shallower architectures. Tree surrogates (RF, ET, GBRT) can
split the shallow points off on the count coordinate and suffer least; a GP smooths over it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from autometa.space.dims import Boolean, Categorical, Dimension, Float, Integer
from autometa.strategies.base import BaseStrategy, Value

__all__ = ["SkoptStrategy", "GPStrategy", "RFStrategy", "ETStrategy", "GBRTStrategy"]

ACQ_FUNCS = ("gp_hedge", "EI", "PI", "LCB")
LIARS = ("cl_min", "cl_mean", "cl_max")
STUCK_ROUNDS = 3
GENERATORS = ("random", "sobol", "halton", "hammersly", "lhs", "grid")


class SkoptStrategy(BaseStrategy):
    """``skopt.Optimizer`` ask/tell with a ``base_estimator`` surrogate (set by subclasses).

    Scores are maximised (the optimiser minimises their negation); a failed or invalid
    trial is told as the worst score seen so far. When an ask's first ``STUCK_ROUNDS`` (3)
    rounds of proposals all hit recorded or pending architectures, the rest of that ask draws
    random points (still told to the optimiser), as skopt itself does for a repeated point.
    ``ask(n)`` asks for ``n`` points with the
    constant-liar strategy ``liar``; candidates still pending from earlier asks are first
    told to a copy of the optimiser with the lie, so parallel workers asking one at a time
    get different points too.

    Options:
        n_initial_points: random points before the surrogate is used.
        initial_point_generator: ``random``, ``sobol``, ``halton``, ``hammersly``, ``lhs``
            or ``grid``.
        acq_func: ``gp_hedge``, ``EI``, ``PI`` or ``LCB``.
        acq_optimizer: ``auto``, ``sampling`` or ``lbfgs`` (skopt's meaning).
        liar: ``cl_min``, ``cl_mean`` or ``cl_max`` for batch and pending points.
        acq_func_kwargs: passed to skopt (e.g. ``{"xi": 0.01, "kappa": 1.96}``).
        acq_optimizer_kwargs: passed to skopt; the default samples 2000 points to optimise
            the acquisition (skopt's own default, 10000, makes each step several times
            slower for little gain on these spaces).
    """

    estimator: ClassVar[str] = "GP"
    categorical_transform: ClassVar[str] = "onehot"
    defaults: ClassVar[dict[str, Any]] = {
        "n_initial_points": 10,
        "initial_point_generator": "random",
        "acq_func": "EI",
        "acq_optimizer": "auto",
        "liar": "cl_min",
        "acq_func_kwargs": None,
        "acq_optimizer_kwargs": {"n_points": 2000},
    }
    max_rounds = 30
    max_seed = 2**32 - 1  # scikit-learn seeds numpy's RandomState, which takes 32 bits

    def _check_options(self) -> None:
        o = self.options
        n = o["n_initial_points"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            self._bad("n_initial_points", "an int >= 1", n)
        for key, allowed in (
            ("initial_point_generator", GENERATORS),
            ("acq_func", ACQ_FUNCS),
            ("acq_optimizer", ("auto", "sampling", "lbfgs")),
            ("liar", LIARS),
        ):
            if o[key] not in allowed:
                self._bad(key, "one of " + ", ".join(allowed), o[key])
        for key in ("acq_func_kwargs", "acq_optimizer_kwargs"):
            if o[key] is not None and not isinstance(o[key], dict):
                self._bad(key, "None or a dict", o[key])

    def _bad(self, key: str, expected: str, value: Any) -> None:
        raise ValueError(f"strategy {self.name!r}: option {key} must be {expected}, got {value!r}")

    def _setup(self) -> None:
        from skopt import Optimizer

        self._coded = [d for d in self.space.dimensions if d.cardinality > 1]
        self._outstanding: dict[int, list[Any]] = {}
        self._serial = 0
        if self._one_point or not self._coded:  # skopt cannot model a space with no dimension
            self._opt = None
            return
        o = self.options
        self._opt = Optimizer(
            [_skopt_dimension(d, self.categorical_transform) for d in self._coded],
            base_estimator=self._estimator(),
            n_initial_points=o["n_initial_points"],
            initial_point_generator=o["initial_point_generator"],
            acq_func=o["acq_func"],
            acq_optimizer=o["acq_optimizer"],
            acq_func_kwargs=o["acq_func_kwargs"],
            acq_optimizer_kwargs=o["acq_optimizer_kwargs"],
            random_state=self.seed,
        )

    def _estimator(self) -> Any:
        """The ``base_estimator`` argument of ``skopt.Optimizer``."""
        return self.estimator

    def _propose(self, n: int) -> list[tuple[Mapping[str, Any], Any]]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skopt warns about repeated points; we handle them
            if self._round >= STUCK_ROUNDS:  # the model keeps proposing known architectures
                points = self._opt.space.rvs(n_samples=n, random_state=self._opt.rng)
            elif n == 1 and not self._outstanding:
                points = [self._opt.ask()]  # the point chosen at the last tell, no refit
            else:
                # Constant liar (what ``Optimizer.ask(n_points)`` does, which also copies and
                # refits for one point and tells one lie too many): a copy holding the
                # outstanding points at the lie, then one lie per further point.
                opt = self._copy_with_lies()
                points = []
                for i in range(n):
                    points.append(opt.ask())
                    if i < n - 1:
                        opt._tell(points[-1], self._lie())
        out = []
        for x in points:
            x = [_plain(v) for v in x]
            self._serial += 1
            self._outstanding[self._serial] = x
            out.append((self._decode(x), self._serial))
        return out

    def _observe(self, token: Any, values: Mapping[str, Any], value: Value) -> None:
        self._outstanding.pop(token, None)
        try:
            x = self._encode(self.space.complete(values))
        except (KeyError, ValueError):  # an invalid proposal: tell the point as asked
            x = self._encode(values)
        y = -(self._worst_value() if value is None else value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._opt.tell(x, y)

    def _copy_with_lies(self) -> Any:
        """A throw-away optimiser that also holds the outstanding points at the lie value.

        Like ``Optimizer.copy`` followed by ``tell``, but fitting the surrogate once.
        """
        from skopt import Optimizer

        opt = self._opt
        copy = Optimizer(
            dimensions=opt.space.dimensions,
            base_estimator=opt.base_estimator_,
            n_initial_points=opt.n_initial_points_,
            initial_point_generator=opt._initial_point_generator,
            acq_func=opt.acq_func,
            acq_optimizer=opt.acq_optimizer,
            acq_func_kwargs=opt.acq_func_kwargs,
            acq_optimizer_kwargs=opt.acq_optimizer_kwargs,
            random_state=opt.rng.randint(0, np.iinfo(np.int32).max),
        )
        copy._initial_samples = opt._initial_samples
        if hasattr(opt, "gains_"):
            copy.gains_ = np.copy(opt.gains_)
        pending = list(self._outstanding.values())
        if opt.Xi or pending:
            copy._tell(list(opt.Xi) + pending, list(opt.yi) + [self._lie()] * len(pending))
        return copy

    def _lie(self) -> float:
        ys = self._opt.yi
        if not ys:
            return 0.0
        pick = {"cl_min": np.min, "cl_mean": np.mean, "cl_max": np.max}[self.options["liar"]]
        return float(pick(ys))

    def _decode(self, x: list[Any]) -> dict[str, Any]:
        values = {d.name: d.default for d in self.space.dimensions}
        for dim, v in zip(self._coded, x):
            if isinstance(dim, (Categorical, Boolean)):
                values[dim.name] = dim.values()[int(v)]
            elif isinstance(dim, Integer):
                values[dim.name] = int(v)
            else:
                values[dim.name] = float(v)
        return values

    def _encode(self, values: Mapping[str, Any]) -> list[Any]:
        x = []
        for dim in self._coded:
            v = values.get(dim.name, dim.default)
            if isinstance(dim, Categorical):
                x.append(dim.index(v))
            elif isinstance(dim, Boolean):
                x.append(int(bool(v)))
            elif isinstance(dim, Integer):
                x.append(int(v))
            else:
                x.append(float(v))
        return x


def _skopt_dimension(dim: Dimension, transform: str) -> Any:
    from skopt.space import Categorical as SkCategorical
    from skopt.space import Integer as SkInteger
    from skopt.space import Real

    if isinstance(dim, (Categorical, Boolean)):
        return SkCategorical(list(range(int(dim.cardinality))), name=dim.name, transform=transform)
    prior = "log-uniform" if dim.log else "uniform"
    if isinstance(dim, Integer):
        return SkInteger(dim.low, dim.high, prior=prior, name=dim.name)
    if isinstance(dim, Float):
        return Real(dim.low, dim.high, prior=prior, name=dim.name)
    raise TypeError(f"scikit-optimize cannot encode dimension {dim.name!r} of type {type(dim)}")


def _plain(value: Any) -> Any:
    value = value.item() if isinstance(value, np.generic) else value
    return value if not isinstance(value, float) or math.isfinite(value) else 0.0


class GPStrategy(SkoptStrategy):
    """Gaussian-process surrogate (skopt's Matern kernel; ``gp_hedge`` acquisition)."""

    name = "bo-gp"
    estimator = "GP"
    defaults: ClassVar[dict[str, Any]] = {**SkoptStrategy.defaults, "acq_func": "gp_hedge"}


class _TreeStrategy(SkoptStrategy):
    """Forest surrogates as skopt's ``cook_estimator`` builds them (``min_samples_leaf=3``),
    with the number of trees as the ``n_estimators`` option and seeded from the seed."""

    defaults: ClassVar[dict[str, Any]] = {**SkoptStrategy.defaults, "n_estimators": 100}
    categorical_transform = "label"  # trees split on choice indices; one-hot only slows them

    def _check_options(self) -> None:
        super()._check_options()
        n = self.options["n_estimators"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            self._bad("n_estimators", "an int >= 1", n)

    def _estimator(self) -> Any:
        from skopt import learning

        forest = getattr(learning, self.estimator)
        return forest(
            n_estimators=self.options["n_estimators"], min_samples_leaf=3, random_state=self.seed
        )


class RFStrategy(_TreeStrategy):
    """Random-forest surrogate (skopt's ``RandomForestRegressor``; std across trees)."""

    name = "bo-rf"
    estimator = "RandomForestRegressor"


class ETStrategy(_TreeStrategy):
    """Extra-trees surrogate (skopt's ``ExtraTreesRegressor``; std across trees)."""

    name = "bo-et"
    estimator = "ExtraTreesRegressor"


class GBRTStrategy(_TreeStrategy):
    """Gradient-boosted trees surrogate with quantile loss (skopt's ``GBRT`` model).

    Two upstream incompatibilities are mended here. skopt 0.10's
    ``GradientBoostingQuantileRegressor`` lists ``RegressorMixin`` after ``BaseEstimator``, so
    scikit-learn >= 1.6 (which reads estimator tags through the MRO) does not see it as a
    regressor and ``Optimizer(base_estimator="GBRT")`` raises; and its ``predict(...,
    return_std=True)`` calls ``np.in1d``, which numpy 2.4 removed. The surrogate here is the
    same model built the way skopt's ``cook_estimator`` builds it (30 quantile-loss trees,
    quantiles 0.16/0.5/0.84), from a subclass whose ``__sklearn_tags__`` says "regressor" as
    ``RegressorMixin`` would and whose ``predict`` computes the same mean and half-spread of
    the outer quantiles without ``np.in1d``; it is seeded from the strategy's seed.
    """

    name = "bo-gbrt"
    estimator = "GBRT"
    defaults: ClassVar[dict[str, Any]] = {**SkoptStrategy.defaults, "n_estimators": 30}

    def _estimator(self) -> Any:
        from sklearn.ensemble import GradientBoostingRegressor

        gbrt = GradientBoostingRegressor(
            n_estimators=self.options["n_estimators"], loss="quantile"
        )
        return _quantile_gbrt_class()(base_estimator=gbrt, random_state=self.seed)


_QUANTILE_GBRT: list[type] = []


def _quantile_gbrt_class() -> type:
    """skopt's ``GradientBoostingQuantileRegressor`` with regressor tags (built once)."""
    if not _QUANTILE_GBRT:
        from sklearn.utils import RegressorTags
        from skopt.learning import GradientBoostingQuantileRegressor

        class QuantileGBRT(GradientBoostingQuantileRegressor):
            """skopt's quantile GBRT, tagged as a regressor, without ``np.in1d``."""

            def predict(self, X: Any, return_std: bool = False, return_quantiles: bool = False):
                if not return_std or return_quantiles:
                    return super().predict(X, return_quantiles=return_quantiles)
                if any(q not in self.quantiles for q in (0.16, 0.5, 0.84)):
                    raise ValueError("return_std needs the quantiles 0.16, 0.5 and 0.84")
                low, mean, high = (
                    self.regressors_[self.quantiles.index(q)].predict(X) for q in (0.16, 0.5, 0.84)
                )
                return mean, (high - low) / 2.0

            def __sklearn_tags__(self) -> Any:
                tags = super().__sklearn_tags__()
                tags.estimator_type = "regressor"
                tags.regressor_tags = RegressorTags()
                return tags

        _QUANTILE_GBRT.append(QuantileGBRT)
    return _QUANTILE_GBRT[0]
