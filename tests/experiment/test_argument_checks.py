"""search() and ``autometa search`` refuse arguments of the wrong type or range up front.

Each refusal is one line naming the argument (Python: a ``ConfigurationError``; command line:
exit code 2), and no study file is created.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from autometa.cli import main
from autometa.errors import ConfigurationError
from autometa.experiment import Budget, Final, search
from autometa.meta import SyntheticObjective
from autometa.space import shipped_spaces
from autometa.strategies import make_strategy

TINY = str(shipped_spaces()["tiny"])
SEED = "`seed` must be an int in [0, 2**63 - 1] (it is stored as a 64-bit integer), got "
WORKERS = "`workers` must be an int >= 0 (0 evaluates in this process), got "
TIMEOUT = "`trial_timeout` must be a finite number of seconds > 0 or None, got "

PYTHON_CASES = [
    ({"seed": 2**70}, SEED + str(2**70)),
    ({"seed": 2**63}, SEED + str(2**63)),
    ({"seed": -1}, SEED + "-1"),
    ({"seed": 1.5}, SEED + "1.5"),
    ({"seed": True}, SEED + "True"),
    ({"workers": -3}, WORKERS + "-3"),
    ({"workers": 1.5}, WORKERS + "1.5"),
    ({"workers": "2"}, WORKERS + "'2'"),
    ({"trial_timeout": -1}, TIMEOUT + "-1"),
    ({"trial_timeout": 0}, TIMEOUT + "0"),
    ({"trial_timeout": float("inf")}, TIMEOUT + "inf"),
    ({"trial_timeout": float("nan")}, TIMEOUT + "nan"),
    ({"trial_timeout": "10"}, TIMEOUT + "'10'"),
    ({"batch": 0}, "`batch` must be an int >= 1, got 0"),
    ({"batch": 2.0}, "`batch` must be an int >= 1, got 2.0"),
    ({"seeds": 0}, "`seeds` must be an int >= 1, got 0"),
    ({"seeds": True}, "`seeds` must be an int >= 1, got True"),
    ({"budget": 5}, "`budget` must be a Budget (e.g. Budget(trials=20)) or None, got 5"),
]


@pytest.mark.parametrize(("arguments", "message"), PYTHON_CASES)
def test_search_refuses_bad_arguments_before_creating_a_study(arguments, message, tmp_path):
    db = tmp_path / "s.db"
    options = {"budget": Budget(trials=1), "workers": 0, **arguments}
    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        search(TINY, evaluator=SyntheticObjective(), storage=db, progress=False, **options)
    assert list(tmp_path.iterdir()) == []


def test_the_largest_seed_and_numpy_ints_are_accepted(tmp_path):
    result = search(TINY, evaluator=SyntheticObjective(), storage=tmp_path / "s.db", workers=0,
                    seed=2**63 - 1, budget=Budget(trials=np.int64(1)), progress=False,
                    trial_timeout=np.float32(60), final=False)  # fmt: skip
    assert result.study.seed == 2**63 - 1 and result.counts["DONE"] == 1


def test_a_strategy_seeded_through_numpy_random_state_names_its_own_limit(tmp_path):
    pytest.importorskip("skopt")
    db = tmp_path / "s.db"
    message = "strategy 'bo-gp': seed must be an int in [0, 2**32 - 1], got 4294967296"
    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        search(TINY, strategy="bo-gp", evaluator=SyntheticObjective(), storage=db, workers=0,
               seed=2**32, progress=False)  # fmt: skip
    assert not db.exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"trials": 1.5}, "Budget `trials` must be an int >= 1 or None, got trials=1.5"),
        ({"trials": True}, "Budget `trials` must be an int >= 1 or None, got trials=True"),
        ({"trials": 0}, "Budget `trials` must be an int >= 1 or None, got trials=0"),
        ({"meta_iterations": 2.0},
         "Budget `meta_iterations` must be an int >= 1 or None, got meta_iterations=2.0"),
        ({"seconds": 0}, "Budget `seconds` must be a finite number > 0 or None, got seconds=0"),
        ({"seconds": float("inf")},
         "Budget `seconds` must be a finite number > 0 or None, got seconds=inf"),
        ({"seconds": float("nan")},
         "Budget `seconds` must be a finite number > 0 or None, got seconds=nan"),
        ({"seconds": "60"},
         "Budget `seconds` must be a finite number > 0 or None, got seconds='60'"),
        ({"seconds": True},
         "Budget `seconds` must be a finite number > 0 or None, got seconds=True"),
    ],
)  # fmt: skip
def test_budget_refuses_bad_limits(arguments, message):
    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        Budget(**arguments)


def test_budget_keeps_plain_numbers():
    budget = Budget(trials=np.int64(3), seconds=np.float32(2), meta_iterations=np.int32(9))
    assert budget.to_dict() == {"trials": 3, "seconds": 2.0, "meta_iterations": 9}
    assert [type(v) for v in budget.to_dict().values()] == [int, float, int]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"top": -1}, "final top: expected an int >= 0, got -1"),
        ({"top": 1.5}, "final top: expected an int >= 0, got 1.5"),
        ({"seeds": True}, "final seeds: expected an int >= 0, got True"),
    ],
)
def test_final_stage_counts_are_checked_before_a_search(arguments, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Final(**arguments)


QUICK = ["--objective", "synthetic", "--workers", "0", "--no-progress", "--trials", "1"]
CLI_CASES = [
    (["--seed", str(2**70)],
     f"argument --seed: expected an integer in [0, 2**63 - 1], got '{2**70}'"),
    (["--seed", str(2**63)],
     f"argument --seed: expected an integer in [0, 2**63 - 1], got '{2**63}'"),
    (["--workers", "-3"], "argument --workers: expected an integer >= 0, got '-3'"),
    (["--trial-timeout", "-1"], "argument --trial-timeout: expected seconds > 0, got '-1'"),
    (["--trial-timeout", "inf"], "argument --trial-timeout: expected seconds > 0, got 'inf'"),
    (["--trials", "1.5"], "argument --trials: expected an integer >= 1, got '1.5'"),
    (["--seconds", "inf"], "argument --seconds: expected seconds > 0, got 'inf'"),
    (["--batch", "0"], "argument --batch: expected an integer >= 1, got '0'"),
    (["--seeds", "0"], "argument --seeds: expected an integer >= 1, got '0'"),
    (["--final-top", "-1"], "argument --final-top: expected an integer >= 0, got '-1'"),
    (["--final-seeds", "1.5"], "argument --final-seeds: expected an integer >= 0, got '1.5'"),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "message"), CLI_CASES)
def test_the_command_line_refuses_the_same_in_one_line(extra, message, tmp_path, capsys):
    db = tmp_path / "s.db"
    try:
        code = main(["search", TINY, *QUICK, "--storage", str(db), *extra])
    except SystemExit as exit_info:
        code = exit_info.code
    assert code == 2
    assert capsys.readouterr().err == f"autometa search: error: {message}\n"
    assert list(tmp_path.iterdir()) == []


def test_the_command_line_takes_the_largest_seed(tmp_path, capsys):
    db = tmp_path / "s.db"
    assert main(["search", TINY, *QUICK, "--storage", str(db), "--seed", str(2**63 - 1)]) == 0
    assert "stopped: trials budget reached (1)" in capsys.readouterr().out


def test_a_strategy_made_directly_checks_its_seed_too():
    message = "strategy 'random': seed must be an int in [0, 2**63 - 1], got -1"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        make_strategy("random", shipped_spaces()["tiny"], seed=-1)
