"""Executors by name: the registry, one construction point, a new executor, resume."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from autometa.cli import main
from autometa.errors import ConfigurationError
from autometa.experiment import (
    EXECUTORS,
    Budget,
    InlineExecutor,
    ProcessExecutor,
    RayExecutor,
    SQLiteStorage,
    make_executor,
    search,
)
from autometa.meta.synthetic import SyntheticObjective
from autometa.plugins import import_module_or_file
from autometa.space import shipped_spaces

ROOT = Path(__file__).resolve().parents[2]
DAG = str(shipped_spaces()["dag_cell"])
VALID = "Valid names: inline, process, ray"

#: A whole new executor: this one file, whose last line is its one registration. It runs
#: every submitted job in this process on ``wait`` and marks where its outcomes ran.
LISTED = '''
from autometa.experiment.executors import EXECUTORS, BaseExecutor, run_jobs


class ListedExecutor(BaseExecutor):
    """Keeps submitted jobs in a list and evaluates them all on wait()."""

    def __init__(self, workers=1, timeout=None):
        self.capacity, self._jobs, self._evaluator = workers, [], None

    def start(self, evaluator):
        self._evaluator = evaluator

    def submit(self, job):
        self._jobs.append(job)

    @property
    def in_flight(self):
        return len(self._jobs)

    def wait(self, timeout=None):
        jobs, self._jobs = self._jobs, []
        outcomes = [o for job in jobs for o in run_jobs(self._evaluator, job, "cpu")]
        for outcome in outcomes:
            outcome.device = f"listed/{self.capacity}"
        return outcomes

    def cancel(self):
        keys = [k for job in self._jobs for k in job.keys]
        self._jobs = []
        return keys
'''


@pytest.fixture
def listed(tmp_path):
    """The file above, imported as ``--import`` would: ``listed`` is registered meanwhile."""
    path = tmp_path / "listed_executor.py"
    path.write_text(LISTED + '\nEXECUTORS.register("listed", ListedExecutor)\n')
    import_module_or_file(str(path))
    yield path
    EXECUTORS.unregister("listed")
    sys.modules.pop("listed_executor", None)
    sys.path.remove(str(tmp_path))


def test_the_built_in_names_and_the_default_choice():
    assert EXECUTORS.names() == ["inline", "process", "ray"]
    assert EXECUTORS.get("process") is ProcessExecutor
    assert isinstance(make_executor(None, workers=0, trial_timeout=2.0), InlineExecutor)
    process = make_executor(None, workers=3, trial_timeout=5.0)
    assert type(process) is ProcessExecutor and (process.capacity, process.timeout) == (3, 5.0)
    ray = make_executor("ray", workers=0, ray_address="auto", gpus_per_trial=0.5)
    assert type(ray) is RayExecutor  # built, not started: Ray is not imported for this
    assert (ray.address, ray.num_gpus_per_trial, ray._workers) == ("auto", 0.5, None)


def test_an_unknown_name_is_one_line_with_the_valid_names(tmp_path, capsys):
    with pytest.raises(ConfigurationError) as info:
        make_executor("proces")
    assert str(info.value) == f"unknown executor 'proces'. Did you mean 'process'? {VALID}"
    with pytest.raises(ConfigurationError) as info:
        search(DAG, evaluator=SyntheticObjective(), executor="rey", storage=":memory:")
    assert str(info.value) == f"`executor`: unknown executor 'rey'. Did you mean 'ray'? {VALID}"
    db = str(tmp_path / "x.db")
    args = ["search", DAG, "--objective", "synthetic", "--storage", db, "--executor", "slurm"]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"autometa search: error: argument --executor: unknown executor 'slurm'. {VALID}\n"
    )
    assert not Path(db).exists()


def test_a_new_executor_runs_a_search_and_resume_restores_it(listed, tmp_path, capsys):
    db = tmp_path / "py.db"
    first = search(DAG, evaluator=SyntheticObjective(), budget=Budget(trials=3), storage=db,
                   workers=2, executor="listed", final=False, progress=False)  # fmt: skip
    assert [t.device for t in first.trials] == ["listed/2"] * 3
    assert first.storage.get_study().settings["executor"] == "listed"
    first.storage.close()

    assert main(["resume", str(db), "--trials", "5", "--no-progress"]) == 0
    assert "  trials: 5 done\n" in capsys.readouterr().out
    assert main(["resume", str(db), "--trials", "6", "--executor", "inline", "--no-progress"]) == 0
    store = SQLiteStorage(db)
    assert [t.device for t in store.get_all_trials()] == ["listed/2"] * 5 + ["cpu"]
    assert store.get_study().settings["executor"] == "inline"  # the last run's choice
    store.close()


def test_the_command_line_runs_a_new_executor_by_import(listed, tmp_path, capsys):
    db = str(tmp_path / "cli.db")
    args = ["search", DAG, "--objective", "synthetic", "--trials", "2", "--storage", db,
            "--executor", "listed", "--workers", "3", "--final-top", "0", "--no-progress",
            "--import", str(listed)]  # fmt: skip
    assert main(args) == 0
    assert main(["resume", db, "--trials", "3", "--no-progress"]) == 0
    capsys.readouterr()
    store = SQLiteStorage(db)
    assert [t.device for t in store.get_all_trials()] == ["listed/3"] * 3
    store.close()


@pytest.mark.parametrize("cli", [False, True])
def test_a_stored_name_not_registered_is_one_line_and_not_imported(tmp_path, capsys, cli):
    db = tmp_path / "s.db"
    search(DAG, evaluator=SyntheticObjective(), budget=Budget(trials=1), storage=db, workers=0,
           final=False, progress=False)  # fmt: skip
    store = SQLiteStorage(db)
    settings = store.get_study().settings
    if cli:  # a command line that is complete but for the crafted executor
        recipe = {"space": DAG, "strategy": "random", "options": {}, "objective": "synthetic",
                  "task": "navigation2d", "meta_iterations": None, "eval_options": {},
                  "fidelity": None, "min_iterations": None, "eta": 3, "storage": str(db),
                  "seed": 0, "trials": 1, "seconds": None, "budget_meta_iterations": None,
                  "workers": 0, "executor": "evil_pkg_for_test:Executor", "ray_address": None,
                  "gpus_per_trial": None, "trial_timeout": None}  # fmt: skip
        store.update_study_settings({**settings, "cli": recipe})
    else:
        store.update_study_settings({**settings, "executor": "evil_pkg_for_test:Executor"})
    store.close()
    assert main(["resume", str(db), "--no-progress"]) == 2
    field = "settings.cli.executor" if cli else "settings.executor"
    assert capsys.readouterr().err == (
        f"autometa resume: error: {db}: table study, row 1, field '{field}': unknown executor "
        f"'evil_pkg_for_test:Executor'. {VALID}; pass --executor NAME, or --import the module "
        "that registers it\n"
    )
    assert "evil_pkg_for_test" not in sys.modules
    # naming one on the command line replaces the stored name
    assert main(["resume", str(db), "--trials", "2", "--executor", "inline", "--no-progress"]) == 0
    assert "  trials: 2 done\n" in capsys.readouterr().out


def test_installed_executors_come_from_the_entry_point_group(tmp_path):
    (tmp_path / "ep_executor_for_test.py").write_text(LISTED)
    info = tmp_path / "ep_executor_for_test-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-executor-for-test\n"
                                   "Version: 0.1\n")  # fmt: skip
    (info / "entry_points.txt").write_text(
        "[autometa.executors]\nlisted-ep = ep_executor_for_test:ListedExecutor\n"
        "broken-ep = no_such_module_for_test:Executor\n"
    )
    code = (
        "import sys\n"
        "from autometa.experiment import EXECUTORS, make_executor\n"
        "print('ep_executor_for_test' in sys.modules, EXECUTORS.names())\n"
        "executor = make_executor('listed-ep', workers=2)\n"
        "print(type(executor).__name__, executor.capacity)\n"
        "try:\n"
        "    make_executor('broken-ep')\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        "False ['broken-ep', 'inline', 'listed-ep', 'process', 'ray']\n"
        "ListedExecutor 2\n"
        "ConfigurationError executor 'broken-ep' could not be loaded: ModuleNotFoundError: "
        "No module named 'no_such_module_for_test'\n"
    )
