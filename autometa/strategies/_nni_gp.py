"""A compatibility shim that lets NNI 3.0's ``GPTuner`` run under current SciPy.

``nni.algorithms.hpo.gp_tuner.util.acq_max`` calls ``scipy.optimize.minimize`` with a
starting point of shape ``(1, d)`` and reads ``res.fun[0]``; SciPy >= 1.11 requires a 1-D
``x0`` (and returns a scalar ``fun``), so every call after the cold start raises
``ValueError: 'x0' must only have one dimension.``. :func:`acq_max` below is the same
search with 1-D starting points: ``num_warmup`` random points scored by the acquisition,
then L-BFGS-B from ``num_starting_points`` random starts within the bounds, keeping the
best point, snapped to legal values (``_match_val_type``) and clipped to the bounds.
``SeededGPTuner`` is ``GPTuner`` whose ``generate_parameters`` uses it; nothing in NNI is
patched.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.optimize import minimize

__all__ = ["acq_max", "seeded_gp_tuner"]


def acq_max(
    f_acq: Any,
    gp: Any,
    y_max: float,
    bounds: Any,
    space: Any,
    num_warmup: int,
    num_starting_points: int,
) -> np.ndarray:
    """Maximise the acquisition ``f_acq`` over the tuner's target space (see module doc)."""
    from nni.algorithms.hpo.gp_tuner.util import _match_val_type

    x_tries = np.array([space.random_sample() for _ in range(int(num_warmup))])
    ys = f_acq(x_tries, gp=gp, y_max=y_max)
    x_max, max_acq = x_tries[ys.argmax()], float(ys.max())
    limits = np.array(
        [
            [b["_value"][0], b["_value"][1 if b["_type"] in ("quniform", "qloguniform") else -1]]
            for b in bounds
        ],
        dtype=float,
    )
    for x_start in [space.random_sample() for _ in range(int(num_starting_points))]:
        res = minimize(
            lambda x: -float(f_acq(x.reshape(1, -1), gp=gp, y_max=y_max)[0]),
            np.asarray(x_start, dtype=float).ravel(),
            bounds=limits,
            method="L-BFGS-B",
        )
        if res.success and -float(res.fun) >= max_acq:
            x_max, max_acq = _match_val_type(res.x, bounds), -float(res.fun)
    return np.clip(x_max, limits[:, 0], limits[:, 1])


def seeded_gp_tuner(
    seed: int,
    *,
    utility: str,
    kappa: float,
    xi: float,
    cold_start_num: int,
    selection_num_warm_up: int,
    selection_num_starting_points: int,
    n_restarts_optimizer: int,
) -> Any:
    """A ``GPTuner`` (maximising) using :func:`acq_max`, its generators seeded by ``seed``."""
    from nni.algorithms.hpo.gp_tuner.gp_tuner import GPTuner
    from nni.algorithms.hpo.gp_tuner.util import UtilityFunction

    class SeededGPTuner(GPTuner):
        """``GPTuner`` with the 1-D-start acquisition search of :func:`acq_max`."""

        def generate_parameters(self, parameter_id: int, **kwargs: Any) -> dict[str, Any]:
            if self._space.len() < self._cold_start_num:
                return self._space.array_to_params(self._space.random_sample())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._gp.fit(self._space.params, self._space.target)
            util = UtilityFunction(kind=self._utility, kappa=self._kappa, xi=self._xi)
            best = acq_max(
                f_acq=util.utility,
                gp=self._gp,
                y_max=self._space.target.max(),
                bounds=self._space.bounds,
                space=self._space,
                num_warmup=self._selection_num_warm_up,
                num_starting_points=self._selection_num_starting_points,
            )
            return self._space.array_to_params(best)

    tuner = SeededGPTuner(
        optimize_mode="maximize",
        utility=utility,
        kappa=kappa,
        xi=xi,
        cold_start_num=cold_start_num,
        selection_num_warm_up=selection_num_warm_up,
        selection_num_starting_points=selection_num_starting_points,
    )
    state = np.random.RandomState(seed)
    tuner._random_state = state
    tuner._gp.random_state = state
    tuner._gp.n_restarts_optimizer = n_restarts_optimizer
    return tuner
