"""Option values that make no sense stop every command with exit code 2 and one line."""

import subprocess
import sys
from pathlib import Path

import pytest

from autometa.cli import main
from autometa.errors import StorageError
from autometa.experiment import SQLiteStorage
from autometa.space import shipped_spaces

ROOT = Path(__file__).parents[2]
DAG = str(shipped_spaces()["dag_cell"])
QUICK = ["--objective", "synthetic", "--workers", "0", "--no-progress", "--trials", "1"]


def _usage_error(argv, capsys):
    """Run the CLI; it must exit 2 and print exactly one line on stderr, which is returned."""
    try:
        code = main(argv)
    except SystemExit as exit_info:
        code = exit_info.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    return err.rstrip("\n")


SEARCH_CASES = [
    (["--trial-timeout", "-1"], "argument --trial-timeout: expected seconds > 0, got '-1'"),
    (["--trial-timeout", "0"], "argument --trial-timeout: expected seconds > 0, got '0'"),
    (["--trial-timeout", "nan"], "argument --trial-timeout: expected seconds > 0, got 'nan'"),
    (["--workers", "-1"], "argument --workers: expected an integer >= 0, got '-1'"),
    (["--workers", "two"], "argument --workers: expected an integer >= 0, got 'two'"),
    (["--trials", "0"], "argument --trials: expected an integer >= 1, got '0'"),
    (["--seconds", "-5"], "argument --seconds: expected seconds > 0, got '-5'"),
    (["--budget-meta-iterations", "0"],
     "argument --budget-meta-iterations: expected an integer >= 1, got '0'"),
    (["--gpus-per-trial", "-0.5"],
     "argument --gpus-per-trial: expected a number >= 0, got '-0.5'"),
    (["--meta-iterations", "0"], "argument --meta-iterations: expected an integer >= 1, got '0'"),
    (["--min-iterations", "-2"], "argument --min-iterations: expected an integer >= 1, got '-2'"),
    (["--eta", "1"], "argument --eta: expected an integer >= 2, got '1'"),
    (["--seed", "-1"], "argument --seed: expected an integer in [0, 2**63 - 1], got '-1'"),
    (["--eval-option", "delay=abc"],
     "argument --eval-option: `delay` must be a number, got 'abc' (str)"),
    (["--eval-option", "delay=-1"],
     "argument --eval-option: `delay >= 0` and `full_fidelity >= 1` must hold, got delay=-1, "
     "full_fidelity=100"),
    (["--eval-option", "dely=1"],
     "argument --eval-option: unknown synthetic objective option(s) 'dely'; valid names: "
     "obs_dim, act_dim, discrete, noise, optimum_params, optimum_depth, optimum_fast_lr, "
     "fail_fraction, delay, full_fidelity, seed_noise"),
    (["--fidelity", "hyperband", "--min-iterations", "500"],
     "argument --min-iterations: expected at most the 100 meta-iterations of a full evaluation "
     "(--meta-iterations), got 500"),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "message"), SEARCH_CASES)
def test_search_rejects_bad_numbers(extra, message, tmp_path, capsys):
    db = tmp_path / "s.db"
    err = _usage_error(["search", DAG, *QUICK, "--storage", str(db), *extra], capsys)
    assert err == f"autometa search: error: {message}"
    assert not db.exists()  # refused before anything was created


def test_search_rejects_a_storage_it_cannot_use(tmp_path, capsys):
    prefix = "autometa search: error: argument --storage: "
    cases = [
        (str(tmp_path), f"{tmp_path} is a folder; expected the path of a SQLite file (e.g. "
         f"{tmp_path / 'study.db'})"),
        (f"{DAG}/x.db", f"{DAG}/x.db: {DAG} is a file, not a folder; expected the path of a "
         "SQLite file"),
        ("/proc/x.db", "/proc/x.db: cannot create a file in /proc (No such file or directory); "
         "expected the path of a SQLite file in a writable folder"),
    ]  # fmt: skip
    for storage, message in cases:
        assert _usage_error(["search", DAG, *QUICK, "--storage", storage], capsys) == (
            prefix + message
        )


def test_storage_refuses_the_same_paths_from_python(tmp_path):
    cases = [
        (tmp_path, f"{tmp_path}: is a folder; expected the path of a SQLite file"),
        (Path(DAG) / "x.db", f"{DAG}/x.db: {DAG} is a file, not a folder"),
        (Path("/proc/x.db"),
         "/proc/x.db: cannot open or create a study database (unable to open database file)"),
    ]  # fmt: skip
    for path, message in cases:
        with pytest.raises(StorageError) as info:
            SQLiteStorage(path)
        assert str(info.value) == message


def test_resume_checks_its_options_too(tmp_path, capsys):
    db = tmp_path / "s.db"
    assert main(["search", DAG, *QUICK, "--storage", str(db)]) == 0
    capsys.readouterr()
    for extra, message in [
        (["--workers", "-1"], "argument --workers: expected an integer >= 0, got '-1'"),
        (["--trial-timeout", "0"], "argument --trial-timeout: expected seconds > 0, got '0'"),
    ]:
        err = _usage_error(["resume", str(db), *extra], capsys)
        assert err == f"autometa resume: error: {message}"
    assert _usage_error(["show", str(db), "--top", "-1"], capsys) == (
        "autometa show: error: argument --top: expected an integer >= 0, got '-1'"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sample", DAG, "-n", "-1"],
         "autometa sample: error: argument -n/--num: expected an integer >= 1, got '-1'"),
        (["sample", DAG, "-n", "0"],
         "autometa sample: error: argument -n/--num: expected an integer >= 1, got '0'"),
        (["sample", DAG, "--seed", "-3"],
         "autometa sample: error: argument --seed: expected an integer >= 0, got '-3'"),
        (["validate", DAG, "--samples", "-1"],
         "autometa validate: error: argument --samples: expected an integer >= 0, got '-1'"),
        (["export", "study.db", "--trial", "-1", "out"],
         "autometa export: error: argument --trial: expected an integer >= 0, got '-1'"),
    ],
)  # fmt: skip
def test_other_commands_reject_bad_numbers(argv, message, capsys):
    assert _usage_error(argv, capsys) == message


def test_a_bad_option_in_a_subprocess_has_no_traceback():
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from autometa.cli import main; sys.exit(main())",
         "search", DAG, "--trial-timeout", "-1"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr == (
        "autometa search: error: argument --trial-timeout: expected seconds > 0, got '-1'\n"
    )
