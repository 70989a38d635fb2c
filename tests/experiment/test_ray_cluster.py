"""Searches on a multi-node Ray cluster the tests start themselves, and its faults.

One cluster per module (Ray takes seconds to start): a head with no CPUs, so nothing runs
on the driver's node, and two worker nodes with one CPU each; the first also declares one
GPU, which Ray schedules by its count alone (no GPU is needed to test placement). A test
that removes a worker runs last or adds one back first (the fault tests come last, so
that as few nodes as possible are started again). The driver of the in-process
tests is this process; the command-line tests run ``autometa`` in subprocesses against the
same cluster.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from autometa.cli import main
from autometa.experiment import EVALUATORS, Budget, Final, InMemoryStorage, TrialState, search
from autometa.space import shipped_spaces

ray = pytest.importorskip("ray")
from _ray_evaluators import NodeLog, read_log  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402 - only once Ray is known to be there

# Importing ``_ray_evaluators`` registers ``node-log``; collection alone must not leave it in
# the registry of a process whose other tests list the built-in names (with ``pytest -n``
# every worker collects this module), so it is registered only while this module runs.
EVALUATORS.unregister("node-log")

# One cluster, in one test process: the module stays on one worker under ``pytest -n``.
pytestmark = [pytest.mark.ray, pytest.mark.xdist_group("ray-cluster")]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DAG = shipped_spaces()["dag_cell"]
# a node that stops answering is declared dead within about a second
FAST = {"health_check_period_ms": 300, "health_check_failure_threshold": 3,
        "health_check_initial_delay_ms": 0}  # fmt: skip


class Nodes:
    """The module's cluster: its address and its worker nodes, kept at two."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.address = cluster.address
        self.gpu_node = ""

    def workers(self) -> set[str]:
        return {node.node_id for node in self.cluster.worker_nodes}

    def head(self) -> str:
        return self.cluster.head_node.node_id

    def add_workers(self) -> None:
        while len(self.cluster.worker_nodes) < 2:
            gpus = 0 if self.cluster.worker_nodes else 1
            node = self.cluster.add_node(num_cpus=1, num_gpus=gpus, resources={"worker": 1})
            if gpus:
                self.gpu_node = node.node_id
        self.cluster.wait_for_nodes()

    def remove(self, node_id: str) -> None:
        node = next(n for n in self.cluster.worker_nodes if n.node_id == node_id)
        self.cluster.remove_node(node, allow_graceful=False)


@pytest.fixture(scope="module")
def nodes():
    """Start the module's own cluster (never an instance already running on this machine)
    and connect this process to it; shut both down at the end."""
    address_file = Path(ray._private.utils.get_ray_address_file(None))
    before = address_file.read_text() if address_file.exists() else None
    with pytest.MonkeyPatch.context() as mp:
        paths = [str(HERE), str(ROOT), os.environ.get("PYTHONPATH", "")]
        mp.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))  # for Ray's workers
        mp.delenv("RAY_ADDRESS", raising=False)
        cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 0, "include_dashboard": False, "_system_config": FAST,
        })  # fmt: skip
        # Cluster records its address as this machine's current one; put back what was there,
        # so that other Ray users here never join this cluster by accident
        if before is None:
            address_file.unlink(missing_ok=True)
        else:
            address_file.write_text(before)
        try:
            shared = Nodes(cluster)
            shared.add_workers()
            ray.init(address=cluster.address, log_to_driver=False)
            yield shared
        finally:
            ray.shutdown()
            cluster.shutdown()


@pytest.fixture(scope="module", autouse=True)
def _node_log_registered():
    """``node-log`` is a registered name while this module's tests run (searches record it),
    and is taken out at the end, so later tests see only the built-in evaluator names."""
    EVALUATORS.register("node-log", NodeLog, overwrite=True)
    yield
    if "node-log" in EVALUATORS:
        EVALUATORS.unregister("node-log")


@pytest.fixture
def two_workers(nodes):
    nodes.add_workers()
    return nodes


def remove_when_running(nodes: Nodes, log: Path, after: int) -> threading.Thread:
    """Remove, from a thread, the worker node of the first evaluation that starts once
    ``after`` evaluations have started, while it runs."""

    def watch() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            lines = read_log(log)
            starts = [(seed, node) for what, seed, node in lines if what == "start"]
            ended = {seed for what, seed, _ in lines if what == "end"}
            running = [(s, n) for s, n in starts[after:] if s not in ended]
            if running:
                nodes.remove(running[0][1])
                return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def ends_by_seed(log: Path) -> dict[int, int]:
    out: dict[int, int] = {}
    for what, seed, _ in read_log(log):
        if what == "end":
            out[seed] = out.get(seed, 0) + 1
    return out


def test_an_unreachable_cluster_is_one_line_and_writes_nothing(tmp_path, capsys):
    assert not ray.is_initialized()  # runs before the module's cluster is joined
    db = tmp_path / "study.db"
    code = main(["search", "dag_cell", "--objective", "synthetic", "--trials", "2",
                 "--executor", "ray", "--ray-address", "127.0.0.1:9", "--storage", str(db),
                 "--no-progress"])  # fmt: skip
    assert code == 2
    assert capsys.readouterr().err == (
        "autometa search: error: --ray-address 127.0.0.1:9: no Ray cluster answers there "
        "(connection refused); start its head with `ray start --head` or check the address\n"
    )
    assert list(tmp_path.iterdir()) == [] and not ray.is_initialized()


def test_evaluations_run_on_the_worker_nodes(two_workers, tmp_path):
    from autometa.experiment import RayExecutor

    log = tmp_path / "evaluations.log"
    executor = RayExecutor(two_workers.address)
    result = search(
        DAG, evaluator=NodeLog(log=str(log)), budget=Budget(trials=4), executor=executor,
        storage=InMemoryStorage(), final=Final(top=2, seeds=2), progress=False,
    )  # fmt: skip
    assert executor.capacity == 2  # one CPU per evaluation, on two one-CPU workers
    workers = two_workers.workers()
    runs = result.storage.get_final_runs()
    assert result.counts["DONE"] == 4 and len(runs) == 4
    for record in [*result.trials, *runs]:
        node = record.metrics["ray_node"]
        assert node in workers and node != two_workers.head()
        assert record.device == f"ray:{node[:8]}/cpu"
        assert record.metrics["ray_node_ip"] == two_workers.cluster.head_node.node_ip_address
    assert {node for _, _, node in read_log(log)} <= workers
    assert result.verdict is not None and result.verdict.complete


def test_a_fractional_gpu_request_is_what_each_task_gets(two_workers, tmp_path):
    from autometa.experiment import RayExecutor

    gpu_node = two_workers.gpu_node
    assert gpu_node in two_workers.workers()
    executor = RayExecutor(two_workers.address, num_gpus_per_trial=0.5, num_cpus_per_trial=0.5)
    result = search(
        DAG, evaluator=NodeLog(log=str(tmp_path / "evaluations.log")), budget=Budget(trials=2),
        executor=executor, storage=InMemoryStorage(), final=False, progress=False,
    )  # fmt: skip
    assert executor.capacity == 2  # one GPU in the cluster, half of it per evaluation
    assert result.counts["DONE"] == 2
    for trial in result.trials:
        assert trial.metrics["ray_node"] == gpu_node  # the only node with a GPU
        assert trial.device == f"ray:{gpu_node[:8]}/cuda:0"
        assert trial.metrics["ray_resources"] == {"CPU": 0.5, "GPU": 0.5}


def _autometa(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "AUTOMETA_HEARTBEAT_SECONDS": "0.2"}
    return subprocess.Popen(
        [sys.executable, "-m", "autometa", *args], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, **kwargs,
    )  # fmt: skip


def _done(db: Path) -> dict[int, tuple[int, float]]:
    """Finished trials in a study file, read without writing: number -> (seed, score)."""
    if not db.exists():
        return {}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        try:
            rows = conn.execute(
                "SELECT number, seed, score FROM trials WHERE state = ?", (int(TrialState.DONE),)
            ).fetchall()
        except sqlite3.OperationalError:  # not created yet
            return {}
    return {n: (s, v) for n, s, v in rows}


def test_a_killed_driver_resumes_only_what_was_unfinished(two_workers, tmp_path):
    db, log = tmp_path / "study.db", tmp_path / "evaluations.log"
    plugin = HERE / "_ray_evaluators.py"
    driver = _autometa(
        "search", "dag_cell", "--import", str(plugin), "--objective", "node-log",
        "--eval-option", f"log={log}", "--eval-option", "pause=0.5", "--trials", "6",
        "--final-top", "0", "--workers", "1", "--executor", "ray", "--ray-address",
        two_workers.address, "--storage", str(db), "--no-progress",
    )  # fmt: skip
    deadline = time.monotonic() + 300  # a loaded machine starts Ray's workers slowly
    while len(_done(db)) < 2 and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.1)
    driver.send_signal(signal.SIGKILL)
    driver.communicate(timeout=30)
    assert driver.returncode == -signal.SIGKILL
    finished = _done(db)
    assert 2 <= len(finished) < 6
    started_before = len([line for line in read_log(log) if line[0] == "start"])
    resume = _autometa("resume", str(db), "--import", str(plugin), "--take-over",
                       "--no-progress", "--ray-address", two_workers.address)  # fmt: skip
    out, err = resume.communicate(timeout=300)
    assert resume.returncode == 0, err
    after = _done(db)
    assert len(after) == 6
    assert {n: after[n] for n in finished} == finished  # same numbers, seeds and scores
    starts = [seed for what, seed, _ in read_log(log) if what == "start"]
    resumed = set(starts[started_before:])
    assert resumed == {seed for n, (seed, _) in after.items() if n not in finished}
    assert all(ends_by_seed(log)[seed] == 1 for seed, _ in finished.values())


def test_a_worker_node_lost_mid_search_loses_nothing_finished(two_workers, tmp_path):
    from autometa.experiment import RayExecutor

    log = tmp_path / "evaluations.log"
    watcher = remove_when_running(two_workers, log, after=2)
    result = search(
        DAG, evaluator=NodeLog(log=str(log), pause=1.0), budget=Budget(trials=6),
        executor=RayExecutor(two_workers.address), storage=InMemoryStorage(), final=False,
        progress=False,
    )  # fmt: skip
    watcher.join(5)
    assert len(two_workers.workers()) == 1  # the node was removed while trials ran
    assert {state: n for state, n in result.counts.items() if n} == {"DONE": 6}
    lost = [t for t in result.trials if t.metrics.get("lost")]
    assert len(lost) == 1 and lost[0].attempts == 1
    assert lost[0].metrics["lost"][0].startswith("worker died (Ray: ")
    assert lost[0].metrics["ray_node"] in two_workers.workers()  # retried on the other node
    # every trial was evaluated to the end exactly once: nothing finished ran again
    assert ends_by_seed(log) == {t.seed: 1 for t in result.trials}


def test_a_worker_node_lost_in_the_final_stage_still_gives_a_verdict(two_workers, tmp_path):
    from autometa.experiment import RayExecutor

    log = tmp_path / "evaluations.log"
    watcher = remove_when_running(two_workers, log, after=4)  # after the search's trials
    result = search(
        DAG, evaluator=NodeLog(log=str(log), pause=0.5), budget=Budget(trials=4), batch=2,
        executor=RayExecutor(two_workers.address), storage=InMemoryStorage(),
        final=Final(top=2, seeds=2), progress=False,
    )  # fmt: skip
    watcher.join(5)
    assert len(two_workers.workers()) == 1
    runs = result.storage.get_final_runs()
    assert len(runs) == 4 and all(r.state == TrialState.DONE for r in runs)
    lost = [r for r in runs if r.metrics.get("lost")]
    assert 1 <= len(lost) <= 2 and all(r.attempts == 1 for r in lost)  # one batch of two
    assert all(r.metrics["ray_node"] in two_workers.workers() for r in lost)
    ends = ends_by_seed(log)
    assert all(ends[t.seed] == 1 for t in result.trials)
    assert result.verdict.complete and result.verdict.winner is not None
    assert result.verdict.pending == 0 and result.verdict.lost == 0
