"""NNI 3.0 tuners driven in-process through their own interface.

Each strategy builds an NNI tuner, gives it the translated space with
``update_search_space``, asks with ``generate_multiple_parameters([id])`` and reports with
``receive_trial_result(id, parameters, value)`` then ``trial_end(id, True)``, as NNI's
dispatcher would; a failed or invalid trial is reported as the worst score seen so far.
When an ask's first ``STUCK_ROUNDS`` (5) rounds of tuner proposals all hit recorded or
pending architectures (tuners that do not avoid repeats, e.g. on a nearly exhausted space),
the rest of that ask is filled with random architectures that the tuner is not told about.
Tuners that draw from unseeded or global generators (Evolution, Anneal, GP, Regularized
Evolution) get generators seeded from the strategy's seed, and Python's global ``random``
is swapped for the strategy's own state around every call, so runs are reproducible.

nni is imported only when an NNI strategy is made; its console handler is removed and its
``nni`` logger set to propagate with no level of its own, so NNI's messages go through
Python ``logging`` like everyone else's.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from autometa.errors import ConfigurationError
from autometa.space.dims import Float
from autometa.strategies._global_random import global_random_from
from autometa.strategies._grid_count import grid_levels
from autometa.strategies._nni_gp import seeded_gp_tuner
from autometa.strategies._nni_space import from_nni, to_nni
from autometa.strategies.base import BaseStrategy, Value

STUCK_ROUNDS = 5

__all__ = [
    "NNIStrategy",
    "TPEStrategy",
    "EvolutionStrategy",
    "AnnealStrategy",
    "GPTunerStrategy",
    "NNIRandomStrategy",
    "NNIGridStrategy",
    "NNIRegularizedEvolutionStrategy",
    "PolicyRLStrategy",
]


def import_nni() -> Any:
    """Import nni with its log output routed to Python logging instead of the terminal."""
    import nni
    from nni.runtime.log import silence_stdout

    silence_stdout()
    logger = logging.getLogger("nni")
    logger.setLevel(logging.NOTSET)
    logger.propagate = True
    return nni


class NNIStrategy(BaseStrategy):
    """Base of the NNI strategies: space translation, seeding, the tuner protocol.

    Subclasses set :attr:`nested` (nested or flat search space, see
    :mod:`autometa.strategies._nni_space`), :attr:`numeric` (categorical choices as
    indices) and implement :meth:`_tuner`. Options not listed by the base are passed to the
    tuner's constructor.
    """

    nested: ClassVar[bool] = True
    numeric: ClassVar[bool] = False
    max_rounds = 50

    def _tuner(self) -> Any:
        """A fresh, seeded tuner (search space not yet set)."""
        raise NotImplementedError

    def _nni_space(self) -> dict[str, Any]:
        return to_nni(self.space, nested=self.nested, numeric=self.numeric)

    def _setup(self) -> None:
        self._nni = import_nni()
        self._py_random = random.Random(self.seed)
        self._rng = np.random.default_rng(self.seed)
        self._serial = 0
        self._params: dict[int, Any] = {}
        self._pushed: list[tuple[int, Any]] = []
        if self._one_point:  # the base proposes the point; some tuners fail on such a space
            return
        with global_random_from(self._py_random):
            self.tuner = self._tuner()
            self.tuner.update_search_space(self._nni_space())
            self._after_space()

    def _after_space(self) -> None:
        """Hook run right after ``update_search_space`` (e.g. to seed what it created)."""
        return None

    def _after_generate(self, pid: int) -> None:
        """Hook run right after the tuner generated parameters ``pid``."""
        return None

    def _propose(self, n: int) -> list[tuple[Mapping[str, Any], Any]]:
        if self._round >= STUCK_ROUNDS:  # the tuner keeps proposing known architectures
            return [(self.space.sample_values(self._rng), None) for _ in range(n)]
        out = []
        while self._pushed and len(out) < n:  # configurations NNI pushed through its callback
            pid, params = self._pushed.pop(0)
            out.append((self._to_values(params), (pid, params)))
        with global_random_from(self._py_random):
            for _ in range(n - len(out)):
                self._serial += 1
                pid = self._serial
                batch = self.tuner.generate_multiple_parameters(
                    [pid], st_callback=lambda i, p: self._pushed.append((i, p))
                )
                if not batch:  # NoMoreTrialError: the tuner has nothing now (or at all)
                    break
                params = _plain_tree(batch[0])
                self._after_generate(pid)
                out.append((self._to_values(params), (pid, params)))
        return out

    def _to_values(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return from_nni(self.space, params, numeric=self.numeric)

    def _observe(self, token: Any, values: Mapping[str, Any], value: Value) -> None:
        if token is None:  # a random fill-in the tuner never proposed
            return
        pid, params = token
        score = self._worst_value() if value is None else value
        with global_random_from(self._py_random):
            self.tuner.receive_trial_result(pid, params, float(score))
            self.tuner.trial_end(pid, True)


def _plain_tree(value: Any) -> Any:
    """``value`` with numpy scalars replaced by Python ones, through dicts and lists."""
    if isinstance(value, dict):
        return {k: _plain_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_tree(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


class TPEStrategy(NNIStrategy):
    """NNI's TPE tuner (``nni.algorithms.hpo.tpe_tuner.TpeTuner``), nested space."""

    name = "nni-tpe"
    defaults: ClassVar[dict[str, Any]] = {"tpe_args": None}

    def _tuner(self) -> Any:
        from nni.algorithms.hpo.tpe_tuner import TpeTuner

        return TpeTuner(
            optimize_mode="maximize", seed=self.seed, tpe_args=self.options["tpe_args"]
        )


class NNIRandomStrategy(NNIStrategy):
    """NNI's random tuner (``RandomTuner``), nested space."""

    name = "nni-random"
    defaults: ClassVar[dict[str, Any]] = {}

    def _tuner(self) -> Any:
        from nni.algorithms.hpo.random_tuner import RandomTuner

        return RandomTuner(seed=self.seed)


class NNIGridStrategy(NNIStrategy):
    """NNI's grid-search tuner (``GridSearchTuner``), nested space; float ranges are
    bisected ever finer, so the grid never runs out on spaces with a float dimension."""

    name = "nni-grid"
    defaults: ClassVar[dict[str, Any]] = {}

    def _tuner(self) -> Any:
        from nni.algorithms.hpo.gridsearch_tuner import GridSearchTuner

        return GridSearchTuner()


class EvolutionStrategy(NNIStrategy):
    """NNI's evolution tuner (``EvolutionTuner``), nested space.

    The tuner draws its initial population from an unseeded ``RandomState`` inside
    ``update_search_space``; the population is redrawn here from one seeded by the seed.
    """

    name = "nni-evolution"
    max_seed = 2**32 - 1  # seeds numpy's RandomState, which takes 32 bits
    defaults: ClassVar[dict[str, Any]] = {"population_size": 32}

    def _tuner(self) -> Any:
        from nni.algorithms.hpo.evolution_tuner import EvolutionTuner

        return EvolutionTuner(
            optimize_mode="maximize", population_size=self.options["population_size"]
        )

    def _after_space(self) -> None:
        self.tuner.random_state = np.random.RandomState(self.seed)
        self.tuner.population = []
        for _ in range(self.tuner.population_size):
            self.tuner._random_generate_individual()


class AnnealStrategy(NNIStrategy):
    """NNI's hyperopt-based annealing tuner (``HyperoptTuner("anneal")``), nested space.

    The tuner's generator is reseeded from the seed, and its stored parameters are made
    plain Python values (its ``== []`` checks fail on numpy 2 scalars otherwise).
    """

    name = "nni-anneal"
    max_seed = 2**32 - 1  # seeds numpy's RandomState, which takes 32 bits
    defaults: ClassVar[dict[str, Any]] = {}

    def _tuner(self) -> Any:
        from nni.algorithms.hpo.hyperopt_tuner import HyperoptTuner

        return HyperoptTuner("anneal", optimize_mode="maximize")

    def _after_space(self) -> None:
        self.tuner.rval.rstate = np.random.RandomState(self.seed)

    def _after_generate(self, pid: int) -> None:
        # The tuner keeps numpy scalars (from q* ranges) in ``total_data``, and its
        # receive_trial_result compares values with ``== []``, which a numpy 2 scalar turns
        # into an empty, ambiguous array: the stored parameters become plain Python values.
        self.tuner.total_data[pid] = _plain_tree(self.tuner.total_data[pid])


class GPTunerStrategy(NNIStrategy):
    """NNI's GP tuner (``GPTuner``) on the flat numeric space, through a compatibility shim.

    Under current SciPy, ``GPTuner`` fails once its Gaussian process is in use: its
    acquisition search hands ``scipy.optimize.minimize`` a 2-D starting point. The tuner
    here is ``GPTuner`` with ``generate_parameters`` running the same search (random warm-up
    points, then L-BFGS-B from random starts, best point snapped to legal values) with 1-D
    starting points; see :mod:`autometa.strategies._nni_gp`. Categorical choices are passed
    as indices, since the tuner snaps choices to the nearest number. ``n_restarts_optimizer``
    sets the GP's kernel-fit restarts (25 in GPTuner, where it is not an argument).
    """

    name = "nni-gp"
    max_seed = 2**32 - 1  # seeds numpy's RandomState, which takes 32 bits
    nested = False
    numeric = True
    defaults: ClassVar[dict[str, Any]] = {
        "utility": "ei",
        "kappa": 5.0,
        "xi": 0.0,
        "cold_start_num": 10,
        "selection_num_warm_up": 2000,
        "selection_num_starting_points": 5,
        "n_restarts_optimizer": 25,
    }

    def _tuner(self) -> Any:
        return seeded_gp_tuner(self.seed, **self.options)


class NNIRegularizedEvolutionStrategy(NNIStrategy):
    """NNI's NAS regularized-evolution tuner (``RegularizedEvolutionTuner``), in-process.

    The tuner takes NAS choice types only, so every dimension becomes a flat
    ``layer_choice`` over its values, float ranges discretised to ``float_points`` values
    (log-spaced for ``log`` ranges) and integer ranges with more values to as many.
    """

    name = "nni-regularized-evolution"
    nested = False
    defaults: ClassVar[dict[str, Any]] = {
        "population_size": 20,
        "sample_size": 5,
        "float_points": 8,
    }

    def _tuner(self) -> Any:
        from nni.algorithms.hpo.regularized_evolution_tuner import RegularizedEvolutionTuner

        o = self.options
        return RegularizedEvolutionTuner(
            optimize_mode="maximize",
            population_size=o["population_size"],
            sample_size=o["sample_size"],
        )

    def _nni_space(self) -> dict[str, Any]:
        points = self.options["float_points"]
        return {
            d.name: {"_type": "layer_choice", "_value": grid_levels(d, points)}
            for d in self.space.dimensions
            if d.cardinality > 1
        }

    def _to_values(self, params: Mapping[str, Any]) -> dict[str, Any]:
        values = {d.name: d.default for d in self.space.dimensions}
        values.update({k: v["_value"] for k, v in params.items()})
        for d in self.space.dimensions:
            if isinstance(d, Float):
                values[d.name] = float(values[d.name])
        return values


class PolicyRLStrategy(NNIStrategy):
    """NNI's policy-based RL NAS strategy: not available in-process.

    Registered so that the name is known, it raises :class:`ConfigurationError` when made
    (before nni is imported), so a search with it stops before anything is created.
    """

    name = "nni-policy-rl"
    defaults: ClassVar[dict[str, Any]] = {}

    def _setup(self) -> None:
        raise ConfigurationError(
            "strategy 'nni-policy-rl' is unavailable: NNI 3.0's PolicyBasedRL lives in nni.nas, "
            "which needs pytorch_lightning and NNI's model-space and execution engine; it "
            "cannot be driven as an ask/tell tuner over an autometa space. Use 'nni-tpe', "
            "'nni-evolution' or 'nni-regularized-evolution'"
        )
