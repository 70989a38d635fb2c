"""Meta-training continued from a stored state ends exactly where one straight run ends."""

from __future__ import annotations

import pytest
import torch
from helpers import chain_graph

from autometa.meta import MAMLEvaluator
from autometa.meta.training_state import TrainingState

TINY = dict(
    num_tasks=3,
    episodes_per_task=3,
    test_tasks=3,
    test_episodes=3,
    family_options={"horizon": 8},
)
"""navigation2d small enough for a few meta-iterations in well under a second."""


def _same(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.mark.parametrize(
    "options",
    [{"outer": "trpo"}, {"outer": "adam"}, {"meta_learner": "promp"}],
    ids=["trpo", "adam", "promp"],
)
def test_rungs_of_2_then_5_iterations_equal_5_straight(options):
    evaluator = MAMLEvaluator("navigation2d", **TINY, **options)
    graph = chain_graph((8,))
    straight = evaluator(graph, seed=3, meta_iterations=5, keep_training_state=True)
    first = evaluator(graph, seed=3, meta_iterations=2, keep_training_state=True)
    stored = first.training_state
    assert TrainingState.from_tensors(stored).iteration == 2
    if options.get("outer") != "trpo":  # Adam's moments (ProMP's too) travel with the state
        assert any(name.startswith("outer.optimizer/") for name in stored)
    cont = evaluator(graph, seed=3, meta_iterations=5, resume_from=stored,
                     keep_training_state=True)  # fmt: skip
    assert straight.ok and cont.ok
    assert cont.score == straight.score
    for key in ("learning_curve", "learning_curve_pre", "returns_by_step",
                "meta_train_env_steps", "env_steps", "meta_iterations"):  # fmt: skip
        assert cont.metrics[key] == straight.metrics[key], key
    assert cont.metrics["resumed_from"] == 2 and "resumed_from" not in straight.metrics
    assert cont.fidelity == straight.fidelity == 5
    _same(cont.state_dict, straight.state_dict)
    _same(cont.training_state, straight.training_state)


def test_a_state_of_another_seed_or_candidate_is_refused():
    evaluator = MAMLEvaluator("navigation2d", **TINY)
    graph = chain_graph((8,))
    state = evaluator(graph, seed=1, meta_iterations=1, keep_training_state=True).training_state
    with pytest.raises(ValueError) as info:
        evaluator(graph, seed=2, meta_iterations=3, resume_from=state)
    assert str(info.value) == (
        "resume_from: the training state was made with another seed (stored 1, evaluating seed 2)"
    )
    with pytest.raises(ValueError) as info:
        evaluator(chain_graph((4,)), seed=1, meta_iterations=3, resume_from=state)
    assert str(info.value).startswith("resume_from: parameter ")
    assert str(info.value).endswith("the candidate's is torch.float32 (4, 2)")


def test_damaged_tensors_are_refused_with_one_line():
    evaluator = MAMLEvaluator("navigation2d", **TINY)
    good = evaluator(chain_graph((8,)), seed=0, meta_iterations=2,
                     keep_training_state=True).training_state  # fmt: skip
    cases = [
        ({k: v for k, v in good.items() if k != "generator"},
         "training state: entry 'generator' is missing"),
        ({**good, "counters": torch.tensor([1.0, 2.0, 3.0])},
         "training state: 'counters' must be 3 int64 values"),
        ({**good, "post_curve": torch.zeros(7, dtype=torch.float64)},
         "training state: 'post_curve' must be 2 float64 values (one per iteration), got "
         "torch.float64 of shape (7,)"),
        ({**good, "junk": torch.zeros(1)}, "training state: unexpected entry 'junk'"),
        ({k: v for k, v in good.items() if not k.startswith("meta.")},
         "training state: it holds no meta-parameters ('meta.<name>')"),
    ]  # fmt: skip
    for tensors, message in cases:
        with pytest.raises(ValueError) as info:
            TrainingState.from_tensors(tensors)
        assert str(info.value) == message


@pytest.mark.parametrize("options", [{"outer": "trpo"}, {"outer": "adam"}], ids=["trpo", "adam"])
def test_a_population_continues_its_members_states_as_each_alone(options):
    """Members that continue from one meta-iteration share a program (two seeds of one
    architecture and one of another) and end bitwise where each ends alone; a state that does
    not fit its pair fails that pair, not the others."""
    evaluator = MAMLEvaluator("navigation2d", **TINY, **options)
    pairs = [(chain_graph((8,)), 3), (chain_graph((8,)), 4), (chain_graph((6, 6)), 5)]
    states = [
        evaluator(g, seed=s, meta_iterations=2, keep_training_state=True).training_state
        for g, s in pairs
    ]
    together = evaluator.evaluate_population(
        pairs, meta_iterations=4, resume_from=states, keep_training_state=True
    )
    assert together[0].metrics["program"] == {
        "members": 3, "architectures": 2, "test_per_kernel": 3,
    }  # fmt: skip
    for (graph, seed), state, result in zip(pairs, states, together):
        alone = evaluator(graph, seed=seed, meta_iterations=4, resume_from=state,
                          keep_training_state=True)  # fmt: skip
        assert result.ok and result.metrics["resumed_from"] == 2
        assert result.score.hex() == alone.score.hex()
        assert result.metrics["learning_curve"] == alone.metrics["learning_curve"]
        _same(result.state_dict, alone.state_dict)
        _same(result.training_state, alone.training_state)
    wrong = [states[1], states[1], states[2]]  # the first pair gets seed 4's state
    mixed = evaluator.evaluate_population(pairs, meta_iterations=4, resume_from=wrong)
    assert mixed[0].status == "failed" and mixed[0].fidelity == 0
    assert mixed[0].error == (
        "ValueError: resume_from: the training state was made with another seed (stored 4, "
        "evaluating seed 3)"
    )
    assert [r.score for r in mixed[1:]] == [r.score for r in together[1:]]
    damaged = {k: v for k, v in states[0].items() if k != "generator"}
    first = evaluator.evaluate_population(pairs[:2], meta_iterations=4,
                                          resume_from=[damaged, states[1]])  # fmt: skip
    assert first[0].error == "ValueError: training state: entry 'generator' is missing"
    assert first[1].score == together[1].score
