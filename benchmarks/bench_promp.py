"""MAML-TRPO vs ProMP on 2D navigation: held-out returns at equal env steps, time per iteration.

Both meta-learners train the same 2x64 tanh policy from the same initial weights with the
same tasks, episodes and meta-iterations (so the same env steps): ``meta_learner="maml"``
(the paper's preset: REINFORCE inner step, TRPO through it) and ``meta_learner="promp"``
(LVC inner step, ``promp_steps`` Adam steps on the clipped surrogate with the inner-KL
penalty; the ProMP code's settings). Their meta-iterations run alternately in one process,
the order swapped every iteration, so both see the same machine state; each iteration is
timed to its one host read. Then each initialisation is adapted on the evaluator's fixed
held-out tasks exactly as ``MAMLEvaluator`` scores it (same seeds: the rows equal what the
evaluator returns for these settings), next to the random initialisation (no
meta-training). The MAML benchmark's ordering should hold for both learners: adapted (1..3
steps) > meta-learned init (0 steps) > random init.

Each learner runs as a program of one member (the two cannot share a program: members of one
program share every setting but their step sizes, ``autometa.meta.members``); ProMP's Adam
steps run over the member axis as MAML's TRPO step does.

Usage: ``python benchmarks/bench_promp.py [--quick | --tiny] [--iterations N] [--seed S]``.
``--quick`` runs a reduced size (10 tasks x 10 episodes, 30 meta-iterations, 20 x 20 test
episodes) in a few minutes on a CPU; ``--tiny`` (4 x 4 x horizon 20, 2 meta-iterations, 4 x 4
test episodes) runs in seconds, to check that the script runs. Prints the table and writes
``benchmarks/results/bench_promp[_quick|_tiny].json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, save  # noqa: E402
from _members import build_program  # noqa: E402
from bench_maml_speed import mlp_graph  # noqa: E402

from autometa.meta import adapt_to_tasks, config_for  # noqa: E402
from autometa.meta.allocator import tune_cpu_allocator  # noqa: E402
from autometa.meta.maml import init_meta_params  # noqa: E402
from autometa.meta.members import Cohort  # noqa: E402
from autometa.meta.outer import check_finite, meta_iteration, outer_step_of  # noqa: E402
from autometa.tasks import make_task  # noqa: E402

LEARNERS = ("maml", "promp")


class Trainer:
    """One evaluation's meta-training state (a program of one member), advanced one
    meta-iteration at a time.

    Built as ``autometa.meta._evaluate`` builds a program (policy seed, generator, per-member
    settings, outer state), so the trained weights are those ``MAMLEvaluator`` would reach
    with the same settings.
    """

    def __init__(self, graph, family, cfg, seed: int) -> None:
        self.family, self.cfg, self.seed = family, cfg, seed
        self.program = build_program(graph, family, cfg, [seed])
        self.policy = self.program.policy
        outer = outer_step_of(cfg)
        meta = self.program.meta
        self.state = outer.init(meta, cfg) if outer.init is not None else None
        self.times: list[float] = []
        self.post: list[float] = []
        self.env_steps = 0

    @property
    def meta(self):
        """The member's meta-parameters (without the member axis)."""
        return {n: v[0] for n, v in self.program.meta.items()}

    def iteration(self, it: int) -> None:
        """One timed meta-iteration (to its host read of the finiteness flags)."""
        program = self.program
        start = time.perf_counter()
        (program.meta,), stats, steps = meta_iteration(
            [Cohort(self.policy, 1)],
            [program.meta],
            self.family,
            self.cfg,
            program.knobs,
            program.generators,
            program.seeds,
            it,
            [self.state],
            active=program.active,
        )
        values = {k: float(v[0]) for k, v in stats.items()}
        check_finite(values, it)
        self.times.append(time.perf_counter() - start)
        self.post.append(values["post_return"])
        self.env_steps += steps

    def test(self, meta=None) -> tuple[list[float], int]:
        """Mean held-out return after 0..report_steps steps, as the evaluator's test phase."""
        cfg = self.cfg
        tasks = self.family.test_tasks(cfg.test_tasks, cfg.test_seed)
        steps = max(cfg.test_steps, cfg.report_steps)
        params = self.meta if meta is None else meta
        result = adapt_to_tasks(
            self.policy, self.family, tasks, steps, params=params, config=cfg, seed=cfg.test_seed
        )
        return result.returns.mean(1).tolist(), result.env_steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="reduced size, a few minutes")
    size.add_argument("--tiny", action="store_true", help="a tiny size, seconds")
    parser.add_argument("--iterations", type=int, default=None, help="meta-iterations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.device == "cpu":
        tune_cpu_allocator()
    sizes: dict = {}
    horizon: dict = {}
    if args.quick:
        sizes = dict(num_tasks=10, episodes_per_task=10, test_tasks=20, test_episodes=20)
    if args.tiny:
        sizes = dict(num_tasks=4, episodes_per_task=4, test_tasks=4, test_episodes=4)
        horizon = {"horizon": 20}
    iterations = args.iterations or (30 if args.quick else 2 if args.tiny else 100)
    family = make_task("navigation2d", device=args.device, **horizon)
    graph = mlp_graph()
    trainers = {
        name: Trainer(
            graph,
            family,
            config_for("navigation2d", meta_learner=name, meta_iterations=iterations, **sizes),
            args.seed,
        )
        for name in LEARNERS
    }
    random_returns, test_steps = trainers["maml"].test(
        init_meta_params(trainers["maml"].policy, trainers["maml"].cfg)
    )
    for it in range(iterations):
        order = LEARNERS if it % 2 == 0 else LEARNERS[::-1]
        for name in order:
            trainers[name].iteration(it)
        if it % 10 == 9 or it == iterations - 1:
            print(
                f"iteration {it + 1}: "
                + ", ".join(f"{n} {trainers[n].post[-1]:.2f}" for n in LEARNERS),
                flush=True,
            )
    record = {
        "iterations": iterations,
        "sizes": {**sizes, **horizon},
        "seed": args.seed,
        "graph": "2x64 tanh",
        "random": {"returns_by_step": random_returns, "env_steps": test_steps},
        "runs": {},
    }
    rows = [["random init", "-", *random_returns, 0, "-", "-"]]
    for name, trainer in trainers.items():
        returns, steps = trainer.test()
        per_iteration = statistics.median(trainer.times)
        rows.append(
            [name, iterations, *returns, trainer.env_steps, per_iteration, sum(trainer.times)]
        )
        record["runs"][name] = {
            "returns_by_step": returns,
            "learning_curve": trainer.post,
            "meta_train_env_steps": trainer.env_steps,
            "test_env_steps": steps,
            "seconds_per_iteration": trainer.times,
            "median_seconds_per_iteration": per_iteration,
            "config": trainer.cfg.to_dict(),
        }
        ordered = returns[1] > returns[0] > random_returns[0] and min(returns[1:]) > returns[0]
        record["runs"][name]["adapted_gt_pretrained_gt_random"] = ordered
    print(
        f"\nnavigation2d, 2x64 tanh, held-out test tasks, mean return after k adaptation steps "
        f"(0 steps: the initialisation itself; seed {args.seed}, device {args.device}, "
        f"{torch.get_num_threads()} threads)"
    )
    print_table(
        [
            "init",
            "meta-iterations",
            "0 steps",
            "1 step",
            "2 steps",
            "3 steps",
            "meta-train env steps",
            "s / iteration (median)",
            "meta-train s",
        ],
        rows,
    )
    for name in LEARNERS:
        verdict = "holds" if record["runs"][name]["adapted_gt_pretrained_gt_random"] else "fails"
        print(f"{name}: adapted > meta-learned init > random init {verdict}")
    save("bench_promp" + ("_quick" if args.quick else "_tiny" if args.tiny else ""), record)


if __name__ == "__main__":
    main()
