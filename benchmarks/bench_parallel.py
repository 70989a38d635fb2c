"""Wall time of a search of slow-but-cheap trials with 1 and 2 workers, locally and on Ray.

Each trial is the synthetic objective with a fixed sleep (default 0.5 s), so the work is
perfectly parallel and the speed-up shows the executor's own overhead. "search s" is the
whole ``autometa.search`` call (worker start-up included); "span s" runs from the first
evaluation's start to the last one's end, which is what more workers divide. A one-trial
warm-up search first starts the forkserver (torch imported once, about a second), which
every later search reuses.

Usage: python benchmarks/bench_parallel.py [--trials 20] [--delay 0.5] [--no-ray]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, save  # noqa: E402

from autometa.experiment import Budget, search  # noqa: E402
from autometa.meta.synthetic import SyntheticObjective  # noqa: E402

SPACE = "dag_cell"


def run(executor: object, workers: int, trials: int, delay: float, folder: Path) -> dict:
    """One search; returns its timings."""
    name = f"{executor if isinstance(executor, str) else 'ray'}-{workers}"
    start = time.perf_counter()
    result = search(
        SPACE,
        evaluator=SyntheticObjective(delay=delay),
        budget=Budget(trials=trials),
        storage=folder / f"{name}-{trials}.db",
        workers=workers,
        executor=executor,
        progress=False,
    )
    wall = time.perf_counter() - start
    span = max(t.finished for t in result.trials) - min(t.started for t in result.trials)
    assert result.counts["DONE"] == trials, result.counts
    return {"executor": name, "workers": workers, "search_s": wall, "span_s": span}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.5)
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray executor")
    args = parser.parse_args()
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        run("process", 1, 1, 0.0, folder / "warm-up")  # starts the forkserver once
        for workers in (1, 2):
            records.append(run("process", workers, args.trials, args.delay, folder))
        if not args.no_ray:
            import ray

            from autometa.experiment import RayExecutor

            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            try:
                for workers in (1, 2):
                    executor = RayExecutor(workers=workers)
                    records.append(run(executor, workers, args.trials, args.delay, folder))
            finally:
                ray.shutdown()
    serial = args.trials * args.delay
    base = {r["executor"].split("-")[0]: r for r in records if r["workers"] == 1}
    rows = []
    for r in records:
        ref = base[r["executor"].split("-")[0]]
        r["speedup_search"] = ref["search_s"] / r["search_s"]
        r["speedup_span"] = ref["span_s"] / r["span_s"]
        rows.append([r["executor"], r["workers"], r["search_s"], r["span_s"],
                     r["speedup_search"], r["speedup_span"]])  # fmt: skip
    print(f"{args.trials} trials x {args.delay} s sleep ({serial:g} s of evaluation)\n")
    print_table(["executor", "workers", "search s", "span s", "speed-up", "span speed-up"], rows)
    save("bench_parallel", {"trials": args.trials, "delay": args.delay, "results": records})


if __name__ == "__main__":
    main()
