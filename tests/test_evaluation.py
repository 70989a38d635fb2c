"""The evaluator contract module: light to import, one definition, abilities read once."""

from __future__ import annotations

import subprocess
import sys

import autometa
import autometa.meta
import autometa.meta.reporting
import autometa.meta.result
from autometa.evaluation import (
    Abilities,
    EvalResult,
    Evaluator,
    Reporter,
    abilities,
    default_iterations,
    failed_result,
)
from autometa.experiment._pruning import PruneContext, PruneHook
from autometa.experiment.pruners import make_pruner
from autometa.meta import MAMLEvaluator, SyntheticObjective

NOTHING = dict.fromkeys(
    (
        "fidelity", "reporter", "resume_from", "keep_training_state", "seeds",
        "seeds_reporters", "population", "population_reporters", "seeds_states",
        "population_states", "memory_estimate", "space_check", "settings", "to_config", "costs",
    ),
    False,
)  # fmt: skip


def test_importing_the_contract_loads_neither_torch_nor_the_algorithm_nor_the_search():
    code = (
        "import sys\n"
        "import autometa.evaluation\n"
        "heavy = ('torch', 'numpy', 'networkx', 'autometa.meta', 'autometa.experiment')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_the_algorithm_package_re_exports_the_one_definition():
    assert autometa.meta.EvalResult is EvalResult
    assert autometa.EvalResult is EvalResult
    assert autometa.meta.failed_result is failed_result
    assert autometa.meta.Evaluator is Evaluator
    for module in (autometa.meta.result, autometa.meta.reporting):  # one import path each
        assert not {"EvalResult", "failed_result", "Evaluator", "Reporter"} & set(module.__all__)
    result = failed_result("nan in loss", seed=3)
    assert (result.status, result.error, result.metrics, result.ok) == (
        "failed", "nan in loss", {"seed": 3}, False,
    )  # fmt: skip


def test_the_built_in_evaluators_satisfy_the_protocols():
    assert isinstance(SyntheticObjective(), Evaluator)
    assert not isinstance(3, Evaluator)
    assert isinstance(PruneHook(PruneContext(make_pruner("median"))), Reporter)
    assert not isinstance(SyntheticObjective(), Reporter)


def test_the_maml_evaluator_offers_every_ability():
    assert abilities(MAMLEvaluator("navigation2d", meta_iterations=7)) == Abilities(
        **{name: True for name in NOTHING}, default_iterations=7
    )


def test_the_synthetic_objective_offers_fidelity_space_checks_and_its_config():
    assert abilities(SyntheticObjective()) == Abilities(
        **{**NOTHING, "fidelity": True, "space_check": True, "to_config": True, "costs": True},
        default_iterations=None,
    )


def test_a_plain_function_offers_nothing_beyond_a_call():
    def evaluate(graph, *, seed, device=None):
        return EvalResult("ok", score=1.0)

    assert abilities(evaluate) == Abilities(**NOTHING, default_iterations=None)


def test_a_catch_all_takes_every_keyword_but_not_the_training_state():
    def evaluate(graph, *, seed, device=None, **options):
        return EvalResult("ok", score=1.0)

    assert abilities(evaluate) == Abilities(
        **{**NOTHING, "fidelity": True, "reporter": True}, default_iterations=None
    )


def test_without_a_readable_signature_fidelity_may_try_and_no_keyword_is_passed():
    assert abilities(max) == Abilities(**{**NOTHING, "fidelity": True}, default_iterations=None)


class Forwarding:
    """A wrapper that forwards its attributes to the evaluator it wraps."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, graph, **kwargs):
        return self.inner(graph, **kwargs)

    def __getattr__(self, name):
        return getattr(self.__dict__["inner"], name)


def test_a_forwarding_wrapper_offers_the_methods_it_forwards():
    can = abilities(Forwarding(MAMLEvaluator("navigation2d", meta_iterations=5)))
    assert can == Abilities(
        **{name: True for name in NOTHING} | {"resume_from": False, "keep_training_state": False},
        default_iterations=5,
    )


class WithConfig:
    """An evaluator whose default length is on its ``config``."""

    class config:  # noqa: N801 - an attribute, spelled like one
        meta_iterations = 12

    meta_iterations = "long"

    def __call__(self, graph, *, seed, device=None):
        return EvalResult("ok", score=1.0)


def test_default_iterations_come_from_the_evaluator_or_its_config():
    assert default_iterations(WithConfig()) == 12
    assert abilities(WithConfig()).default_iterations == 12
    assert default_iterations(SyntheticObjective()) is None
    assert default_iterations(MAMLEvaluator("navigation2d", meta_iterations=3)) == 3
