"""Evolutionary strategies on DEAP: a generational GA, regularized evolution and NSGA-II.

Selection and crossover come from ``deap.tools`` (``selTournament``, ``selBest``,
``selRandom``, ``selNSGA2``, ``selTournamentDCD``, ``cxUniform``), registered on a
``deap.base.Toolbox``; mutation is the type- and graph-aware operator of
:mod:`autometa.strategies._variation`. DEAP draws from Python's global ``random`` module, so
every DEAP call runs inside ``global_random_from``, which swaps in the strategy's own seeded
state and restores the global one afterwards: runs are reproducible and other code's random
streams are left alone. Classes are built with ``type`` rather than ``deap.creator`` so no
global registry is touched.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from deap import base, tools

from autometa.strategies._global_random import global_random_from
from autometa.strategies._variation import Variation
from autometa.strategies.base import BaseStrategy, Value

__all__ = ["GeneticStrategy", "RegularizedEvolutionStrategy", "NSGA2Strategy"]

_FITNESS: dict[int, type] = {}


def _fitness_class(n_objectives: int) -> type:
    """A ``deap.base.Fitness`` subclass maximising ``n_objectives`` values."""
    if n_objectives not in _FITNESS:
        _FITNESS[n_objectives] = type(
            f"MaxFitness{n_objectives}", (base.Fitness,), {"weights": (1.0,) * n_objectives}
        )
    return _FITNESS[n_objectives]


class Individual(list):
    """Decision values in space order, with a DEAP fitness and a failure flag."""

    def __init__(self, values: list[Any], fitness: base.Fitness) -> None:
        super().__init__(values)
        self.fitness = fitness
        self.failed = False


COMMON: dict[str, Any] = {"sigma": 0.2, "gene_prob": None, "graph_mutation_prob": 0.5}


class _Evolutionary(BaseStrategy):
    """Shared set-up: seeded generators, the variation operators and a DEAP toolbox."""

    def _check_options(self) -> None:
        for key, value in self.options.items():
            if key in ("sigma",) and not (isinstance(value, (int, float)) and value > 0):
                self._bad(key, "a positive number", value)
            if key in ("crossover_prob", "graph_mutation_prob") and not _is_prob(value):
                self._bad(key, "a number in [0, 1]", value)
            if key == "gene_prob" and value is not None and not _is_prob(value):
                self._bad(key, "None or a number in [0, 1]", value)
            if key in ("population_size", "tournament_size", "sample_size") and not (
                _is_int(value) and value >= 2
            ):
                self._bad(key, "an int >= 2", value)
            if key == "elitism" and not (_is_int(value) and value >= 0):
                self._bad(key, "an int >= 0", value)

    def _bad(self, key: str, expected: str, value: Any) -> None:
        raise ValueError(f"strategy {self.name!r}: option {key} must be {expected}, got {value!r}")

    def _setup(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._py_random = random.Random(self.seed)
        self._names = [d.name for d in self.space.dimensions]
        self._variation = Variation(
            self.space,
            self._rng,
            sigma=self.options["sigma"],
            gene_prob=self.options["gene_prob"],
            graph_mutation_prob=self.options["graph_mutation_prob"],
            is_new=lambda key: key not in self._record and key not in self._pending_keys,
        )
        self._fitness = _fitness_class(self.n_objectives)
        self.toolbox = base.Toolbox()
        self.toolbox.register("mate", tools.cxUniform, indpb=0.5)
        self.toolbox.register("mutate", self._variation.mutate)

    def _individual(self, values: Mapping[str, Any]) -> Individual:
        return Individual([values[n] for n in self._names], self._fitness())

    def _randoms(self, n: int) -> list[Individual]:
        """Up to ``n`` random unseen individuals (fewer when the space looks exhausted)."""
        out = []
        for _ in range(n):
            values = self._variation.random()
            if values is None:
                break
            out.append(self._individual(values))
        return out

    def _values(self, individual: list[Any]) -> dict[str, Any]:
        return dict(zip(self._names, individual))

    def _child(self, first: Individual, second: Individual | None) -> Individual | None:
        """Crossover (when ``second`` is given) then mutation; valid and unseen, or None."""

        def make() -> dict[str, Any]:
            a = list(first)
            if second is not None:
                b = list(second)
                with global_random_from(self._py_random):
                    self.toolbox.mate(a, b)
            return self.toolbox.mutate(self._values(a))

        values = self._variation.offspring(make)
        return None if values is None else self._individual(values)

    def _score(self, individual: Individual, value: Value) -> None:
        if value is None:
            individual.failed = True
            individual.fitness.values = (float("-inf"),) * self.n_objectives
        else:
            individual.fitness.values = value if isinstance(value, tuple) else (value,)

    def _observe(self, token: Any, values: Mapping[str, Any], value: Value) -> None:
        self._score(token, value)
        self._told.append(token)


class GeneticStrategy(_Evolutionary):
    """Generational GA: tournament selection, elitism, uniform crossover, typed mutation.

    Generation 0 is ``population_size`` random valid architectures. Each later generation is
    bred from the parents: ``tournament_size`` tournaments pick two parents, uniform crossover
    (``crossover_prob``) and one mutation make a child; children are valid and not yet seen.
    After a generation is handed out, the next parents are the ``elitism`` best of parents and
    told children together, then the best told children, topped up from the old parents.
    ``ask(n)`` hands out the current generation's children in order and breeds the next one
    when it runs out, using whatever results have arrived (late results join the next
    breeding). Failed trials never become parents.
    """

    name = "ga"
    defaults: ClassVar[dict[str, Any]] = {
        "population_size": 16,
        "tournament_size": 3,
        "elitism": 2,
        "crossover_prob": 0.5,
        **COMMON,
    }

    def _setup(self) -> None:
        super()._setup()
        size = self.options["population_size"]
        self.toolbox.register(
            "select", tools.selTournament, tournsize=self.options["tournament_size"]
        )
        self._parents: list[Individual] = []
        self._told: list[Individual] = []
        self._queue = deque(self._randoms(size))

    def _propose(self, n: int) -> list[tuple[Mapping[str, Any], Any]]:
        out = []
        while len(out) < n:
            if not self._queue:
                self._breed()
                if not self._queue:  # no unseen child: the space looks exhausted
                    break
            individual = self._queue.popleft()
            out.append((self._values(individual), individual))
        return out

    def _breed(self) -> None:
        size = self.options["population_size"]
        children = [i for i in self._told if not i.failed]
        pool = self._parents + children
        self._told = []
        if not pool:
            self._queue.extend(self._randoms(size))
            return
        with global_random_from(self._py_random):
            elite = tools.selBest(pool, min(self.options["elitism"], len(pool)))
            kept = {id(i) for i in elite}
            rest = [i for i in tools.selBest(children, len(children)) if id(i) not in kept]
            old = [
                i for i in tools.selBest(self._parents, len(self._parents)) if id(i) not in kept
            ]
            self._parents = (elite + rest + old)[:size]
            pairs = [self.toolbox.select(self._parents, 2) for _ in range(size)]
        for first, second in pairs:
            mate = self._rng.random() < self.options["crossover_prob"]
            child = self._child(first, second if mate else None)
            if child is not None:
                self._queue.append(child)


class RegularizedEvolutionStrategy(_Evolutionary):
    """Regularized (aging) evolution (Real et al. 2019, "Regularized Evolution for Image
    Classifier Architecture Search").

    The first ``population_size`` candidates are random. After that each child mutates the
    best of ``sample_size`` architectures drawn at random from the population of the most
    recent ``population_size`` told results; each told result joins the population and
    pushes out the oldest, so good architectures must keep being rediscovered. Children are
    valid and not yet seen; a failed trial joins the population with the worst fitness.
    """

    name = "regularized-evolution"
    defaults: ClassVar[dict[str, Any]] = {"population_size": 20, "sample_size": 5, **COMMON}

    def _setup(self) -> None:
        super()._setup()
        self._population: deque[Individual] = deque(maxlen=self.options["population_size"])
        self._told = self._population  # told individuals join the aging population
        self._n_random = 0

    def _propose(self, n: int) -> list[tuple[Mapping[str, Any], Any]]:
        out = []
        for _ in range(n):
            scored = [i for i in self._population if not i.failed]
            if self._n_random < self.options["population_size"] or not scored:
                self._n_random += 1
                children = self._randoms(1)
                child = children[0] if children else None
            else:
                with global_random_from(self._py_random):
                    sample = tools.selRandom(list(self._population), self.options["sample_size"])
                    parent = tools.selBest(sample, 1)[0]
                child = self._child(parent, None)
            if child is None:  # no unseen child: the space looks exhausted
                break
            out.append((self._values(child), child))
        return out


class NSGA2Strategy(GeneticStrategy):
    """NSGA-II (Deb et al. 2002) for multi-objective search, e.g. ``(score, -params)``.

    :meth:`tell` takes a tuple of ``n_objectives`` floats, each maximised (negate what should
    be small). Survivors are chosen from parents and told children by ``tools.selNSGA2``
    (non-dominated fronts, then crowding distance); mating parents by
    ``tools.selTournamentDCD``; children by uniform crossover (``crossover_prob``) and typed
    mutation. Generations are handed out as in the GA.
    """

    name = "nsga2"
    defaults: ClassVar[dict[str, Any]] = {
        "population_size": 16,
        "crossover_prob": 0.9,
        "n_objectives": 2,
        **COMMON,
    }

    def __init__(self, space: Any, *, seed: int = 0, **options: Any) -> None:
        n = options.get("n_objectives", self.defaults["n_objectives"])
        if not (_is_int(n) and n >= 2):
            raise ValueError(
                f"strategy 'nsga2': option n_objectives must be an int >= 2, got {n!r}"
            )
        self.n_objectives = n
        super().__init__(space, seed=seed, **options)

    def _setup(self) -> None:
        _Evolutionary._setup(self)
        size = self.options["population_size"]
        self._parents = []
        self._told = []
        self._queue = deque(self._randoms(size))

    def _breed(self) -> None:
        size = self.options["population_size"]
        pool = self._parents + [i for i in self._told if not i.failed]
        self._told = []
        if not pool:
            self._queue.extend(self._randoms(size))
            return
        with global_random_from(self._py_random):
            self._parents = tools.selNSGA2(pool, min(size, len(pool)))
            chosen: list[Individual] = []
            while len(chosen) < size:
                if len(self._parents) >= 4:
                    k = 4 * (len(self._parents) // 4)
                    chosen += tools.selTournamentDCD(self._parents, k)
                else:
                    chosen += tools.selRandom(self._parents, size)
        for i in range(size):
            first, second = chosen[i], chosen[(i + 1) % len(chosen)]
            mate = self._rng.random() < self.options["crossover_prob"]
            child = self._child(first, second if mate else None)
            if child is not None:
                self._queue.append(child)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_prob(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1
