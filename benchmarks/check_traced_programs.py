"""Every candidate the eager TRPO step accepts, the traced TRPO program accepts too.

Samples ``--samples`` candidates from every shipped space, builds each policy for
``navigation2d`` as a program of ``--members`` members (its seeds; default 2, so that the
member axis is exercised: a candidate alone is a program of one), samples one small
meta-batch and runs one TRPO step of every member with the eager products
(``trpo_step(..., traced=False)``) and one with the traced program (``traced=True``), then
compares the members' losses and new meta-parameters. The traced program is what a
default-size evaluation uses (``autometa.meta.backend``); reduced-size runs never reach it,
so this is the check that a candidate accepted at a reduced size does not fail at the
default one. Prints a table per space (candidates, eager failures, traced failures, eager
fallbacks, largest relative difference) and saves
``benchmarks/results/check_traced_programs.json``.

    python benchmarks/check_traced_programs.py                 # 200 per space
    python benchmarks/check_traced_programs.py --samples 20    # a quick look
    python benchmarks/check_traced_programs.py --quick         # 1 per space, horizon 5
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import print_table, save  # noqa: E402
from _members import build_program  # noqa: E402

from autometa.meta import config_for  # noqa: E402
from autometa.meta.linalg import flatten  # noqa: E402
from autometa.meta.trpo import trpo_step  # noqa: E402
from autometa.space import load_space, shipped_spaces  # noqa: E402
from autometa.tasks import make_task  # noqa: E402


class _Fallbacks(logging.Handler):
    """Counts the warnings the traced path logs when it falls back to the eager products."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def check(graph, family, seed: int, members: int) -> dict:
    """One candidate: an eager and a traced TRPO step of its members on one meta-batch."""
    hyper = dict(graph.graph.get("hyperparameters") or {})
    cfg = config_for("navigation2d", num_tasks=3, episodes_per_task=3, **hyper)
    program = build_program(graph, family, cfg, [seed * members + k for k in range(members)])
    mb = program.meta_batch(0)
    out = {}
    for name, traced in (("eager", False), ("traced", True)):
        try:
            new, loss, _ = trpo_step(
                program.policy, mb, program.meta, cfg, program.knobs, program.active,
                traced=traced,
            )  # fmt: skip
            out[name] = (torch.func.vmap(flatten)(new), loss)
        except Exception as exc:  # noqa: BLE001 - recorded, that is the point
            out[name] = f"{type(exc).__name__}: {exc}"
    if isinstance(out["eager"], str) or isinstance(out["traced"], str):
        return {
            "eager_error": out["eager"] if isinstance(out["eager"], str) else None,
            "traced_error": out["traced"] if isinstance(out["traced"], str) else None,
        }
    (a, la), (b, lb) = out["eager"], out["traced"]
    rel = float((a - b).abs().max() / a.abs().max().clamp_min(1e-12))
    return {"rel_diff": max(rel, float(((la - lb).abs() / la.abs().clamp_min(1e-12)).max()))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--spaces", nargs="+", default=sorted(shipped_spaces()))
    parser.add_argument("--horizon", type=int, default=20)
    parser.add_argument("--members", type=int, default=2, help="members per program")
    parser.add_argument("--quick", action="store_true", help="1 per space, horizon 5")
    args = parser.parse_args()
    if args.quick:
        args.samples, args.horizon = min(args.samples, 1), min(args.horizon, 5)
    family = make_task("navigation2d", horizon=args.horizon)
    fallbacks = _Fallbacks()
    logging.getLogger("autometa.meta").addHandler(fallbacks)
    rows, details = [], {}
    for space_name in args.spaces:
        space = load_space(space_name)
        start = time.perf_counter()
        n_fallback_before = len(fallbacks.messages)
        results = []
        rng = np.random.default_rng(0)
        for i in range(args.samples):
            results.append(check(space.sample(rng), family, i, args.members))
        eager_failed = [r for r in results if r.get("eager_error")]
        traced_failed = [r for r in results if not r.get("eager_error") and r.get("traced_error")]
        diffs = [r["rel_diff"] for r in results if "rel_diff" in r]
        fell_back = len(fallbacks.messages) - n_fallback_before
        rows.append([space_name, len(results), len(eager_failed), len(traced_failed), fell_back,
                     max(diffs, default=float("nan")), time.perf_counter() - start])  # fmt: skip
        details[space_name] = {
            "samples": len(results),
            "eager_failed": [r["eager_error"] for r in eager_failed],
            "traced_failed": [r["traced_error"] for r in traced_failed],
            "fallbacks": fallbacks.messages[n_fallback_before:],
            "max_rel_diff": max(diffs, default=None),
        }
        print(f"{space_name}: {rows[-1]}", flush=True)
    print()
    print_table(["space", "candidates", "eager failed", "traced failed", "fell back to eager",
                 "max rel diff", "seconds"], rows)  # fmt: skip
    save(
        "check_traced_programs" + ("_quick" if args.quick else ""),
        {"settings": vars(args), "spaces": details},
    )


if __name__ == "__main__":
    main()
