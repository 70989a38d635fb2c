"""Memory safety: estimates before a candidate runs, the limit, and OOM kills of workers."""

from __future__ import annotations

import re

import pytest
from _scripted_evaluators import Scripted

from autometa.cli import main
from autometa.errors import ConfigurationError, SearchFailedError
from autometa.experiment import (
    BaseExecutor,
    Budget,
    InlineExecutor,
    InMemoryStorage,
    ProcessExecutor,
    TrialState,
    search,
)
from autometa.experiment._memory import format_size, total_memory
from autometa.experiment.search import load_result
from autometa.experiment.trial import trial_seed
from autometa.graph import from_json, mlp_graph
from autometa.meta import MAMLEvaluator
from autometa.space import shipped_spaces

DAG = str(shipped_spaces()["dag_cell"])
SMALL = dict(num_tasks=4, episodes_per_task=4, test_tasks=4, test_episodes=4)


def _evaluator(horizon: int = 20, **changes) -> MAMLEvaluator:
    options = {**SMALL, **changes}
    return MAMLEvaluator("navigation2d", 1, family_options={"horizon": horizon}, **options)


def test_estimate_grows_with_widths_batch_and_horizon():
    small = _evaluator().estimate_memory(mlp_graph((32, 32)))
    assert _evaluator().estimate_memory(mlp_graph((512, 512))) > small
    assert _evaluator(num_tasks=10, test_tasks=10).estimate_memory(mlp_graph((32, 32))) > small
    assert _evaluator(episodes_per_task=10).estimate_memory(mlp_graph((32, 32))) > small
    assert _evaluator(horizon=100).estimate_memory(mlp_graph((32, 32))) > small
    assert _evaluator(inner_steps=2).estimate_memory(mlp_graph((32, 32))) > small


def test_tiny_limit_fails_every_candidate_before_it_runs(tmp_path, capsys):
    db = tmp_path / "s.db"
    argv = ["search", DAG, "--meta-iterations", "1", "--trials", "3", "--workers", "0",
            "--no-progress", "--storage", str(db), "--max-memory", "1MiB"]  # fmt: skip
    assert main(argv) == 1
    # resume takes its own limit: the fourth trial is checked against 2 MiB
    assert main(["resume", str(db), "--trials", "4", "--max-memory", "2MiB"]) == 1
    capsys.readouterr()
    trials = load_result(str(db)).trials
    assert len(trials) == 4
    evaluator = MAMLEvaluator("navigation2d", 1)
    for trial, limit in zip(trials, ["1 MiB"] * 3 + ["2 MiB"]):
        needed = evaluator.estimate_memory(from_json(trial.graph_json))
        assert trial.state == TrialState.FAILED
        assert trial.error == (
            f"out of memory: needs ~{format_size(needed)}, limit {limit} "
            "(estimate; raise --max-memory to try it)"
        )
        assert trial.wall_time == 0.0 and trial.attempts == 0
        assert trial.metrics["meta_iterations_spent"] == 0
        assert trial.metrics["memory_estimate"] == needed
        assert trial.metrics["memory_limit"] == (2 if limit == "2 MiB" else 1) * 2**20


def test_no_limit_and_evaluators_without_an_estimate_are_not_checked():
    result = search(DAG, evaluator=Scripted(), budget=Budget(trials=2), workers=0,
                    storage=InMemoryStorage(), progress=False, max_memory=1,
                    final=False)  # fmt: skip
    assert [t.state for t in result.trials] == [TrialState.DONE] * 2


@pytest.mark.parametrize("value", [0, -5, 1.5, "8GiB", True])
def test_a_bad_limit_stops_the_search_before_it_starts(value):
    with pytest.raises(ConfigurationError) as info:
        search(DAG, evaluator=Scripted(), workers=0, storage=InMemoryStorage(), max_memory=value)
    assert str(info.value) == (
        f"`max_memory` must be a number of bytes >= 1, 'auto' or None, got {value!r}"
    )


@pytest.mark.parametrize("text", ["lots", "0", "8 parsecs", "-1GiB"])
def test_a_bad_max_memory_option_is_a_usage_error(text, capsys):
    with pytest.raises(SystemExit) as info:
        main(["search", DAG, f"--max-memory={text}"])
    assert info.value.code == 2
    assert capsys.readouterr().err == (
        "autometa search: error: argument --max-memory: expected a size such as 8GiB, 512MiB "
        f"or a number of bytes, none or auto; got {text!r}\n"
    )


def test_a_worker_killed_at_high_resident_memory_is_out_of_memory_and_not_retried():
    evaluator = Scripted({trial_seed(0, 0): "hog", trial_seed(0, 1): "kill"})
    executor = ProcessExecutor(1, oom_resident=300 * 2**20)  # idle: ~180 MiB
    with pytest.raises(SearchFailedError) as info:  # no trial succeeded
        search(DAG, evaluator=evaluator, budget=Budget(trials=2), executor=executor,
               storage=InMemoryStorage(), progress=False, final=False)  # fmt: skip
    result = info.value.result
    hog, killed = sorted(result.trials, key=lambda t: t.number)
    assert hog.state == TrialState.FAILED and hog.attempts == 0
    assert re.fullmatch(
        r"out of memory: worker killed by the OS \(signal 9\) at ~\d+(\.\d+)? MiB resident",
        hog.error,
    ), hog.error
    assert "lost" not in hog.metrics
    # A SIGKILL at a small resident set is a dead worker, retried as before.
    assert killed.error == "worker died (signal 9); gave up after 2 attempts"
    assert killed.attempts == 1


def test_the_default_limit_is_half_the_ram_shared_by_the_workers():
    total = total_memory()
    assert total is not None and total > 0
    assert InlineExecutor(device="cpu").memory_limit() == total // 2
    assert ProcessExecutor(2, devices=["cpu"]).memory_limit() == total // 2 // 2
    assert BaseExecutor.memory_limit(ProcessExecutor(1)) is None  # e.g. Ray: no default
