"""Your own task family: a gymnasium env with a task parameter, scored with MAML.

A task family is a *distribution* of RL tasks. Any gymnasium env becomes one with three small
pieces: a function that builds the env, a sampler that draws task parameters, and a function
that puts one task on an env. This script

1. writes a small gymnasium env, ``PointReacher1D``: a point mass on a line, pushed by a force,
   that must stop at a target position against friction; the *task* is the pair
   (target, friction);
2. turns it into a task family with :class:`autometa.tasks.GymTaskFamily` and registers it
   under the name ``point-reacher-1d`` with :func:`autometa.register_task`;
3. checks it with :func:`autometa.tasks.check_task_family` (spaces, dtypes, seeding,
   absorbing termination), the same checks the built-in families pass;
4. scores one candidate architecture from the shipped ``tiny`` space on it with
   :class:`autometa.MAMLEvaluator`, and prints the returns before and after adaptation;
5. runs a small search on it with a worker process;
6. exports the best architecture, reloads it and adapts it to a new task.

Worker processes and registration: a search evaluates candidates in worker processes, and
each worker rebuilds the family from its registered *name*. Workers import the main module of
the script that started them (as ``__mp_main__``), so a ``register_task`` call at the top level
of this file, outside the ``if __name__ == "__main__":`` guard, runs in every worker too. The
same holds for a module of your package that registers on import. A registration made only
inside ``main()`` would be unknown to the workers; then use ``workers=0`` (evaluate in this
process) instead.

Run it from the repository root:

    python examples/custom_task_family.py --quick   # tiny sizes: a minute or two
    python examples/custom_task_family.py           # 30 meta-iterations of 20 tasks x 10
                                                    # episodes, then a 4-trial search (about
                                                    # half an hour on a 2-core CPU)

It writes ``search.db`` and ``best/`` (the export) under ``--out`` (default
``runs/examples/custom_task_family`` or ``runs/examples/custom_task_family-quick``).
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

import autometa
from autometa.tasks import GymTaskFamily, TaskParam, check_task_family

FAMILY = "point-reacher-1d"


# -- 1. A plain gymnasium env ----------------------------------------------------------------
class PointReacher1D(gym.Env):
    """A point mass on a line; reach ``target`` and stay there, against ``friction``.

    Observation ``[position, velocity]``; action: a force in [-1, 1]. Each step
    ``velocity += 0.1 * force - friction * velocity`` and ``position += 0.1 * velocity``; the
    reward is minus the distance to the target, minus a small cost on the force. The episode
    ends early once the mass rests within 0.02 of the target.
    """

    def __init__(self) -> None:
        self.observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.target, self.friction = 0.5, 0.1
        self.position, self.velocity = 0.0, 0.0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)  # seeds self.np_random: the family seeds every copy
        self.position = float(self.np_random.uniform(-0.05, 0.05))
        self.velocity = 0.0
        return self._obs(), {}

    def step(self, action):
        force = float(np.clip(action[0], -1.0, 1.0))
        self.velocity += 0.1 * force - self.friction * self.velocity
        self.position += 0.1 * self.velocity
        distance = abs(self.position - self.target)
        reward = -distance - 0.01 * force**2
        resting = distance < 0.02 and abs(self.velocity) < 0.02
        return self._obs(), reward, resting, False, {}

    def _obs(self) -> np.ndarray:
        return np.array([self.position, self.velocity], dtype=np.float32)


# -- 2. The task distribution and how one task is put on an env ------------------------------
def sample_tasks(n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """``n`` tasks: target uniform in [-1, 1], friction uniform in [0.05, 0.3]."""
    return {
        "target": 2.0 * torch.rand(n, generator=generator) - 1.0,
        "friction": 0.05 + 0.25 * torch.rand(n, generator=generator),
    }


def set_task(env: PointReacher1D, task: dict) -> None:
    """Put one task (``{name: numpy value}``) on an env made by ``PointReacher1D()``."""
    env.target = float(task["target"])
    env.friction = float(task["friction"])


# Registered at import time, outside the main guard, so that worker processes (which import
# this file) know the name too. ``functools.partial`` keeps the factory picklable; make_task
# calls it as ``factory(device=..., **options)``. ``task_params`` is optional: it declares the
# allowed ranges, so out-of-range tasks are refused with a clear message.
autometa.register_task(
    FAMILY,
    functools.partial(
        GymTaskFamily,
        PointReacher1D,
        sample_tasks,
        set_task,
        horizon=30,
        task_params={
            "target": TaskParam((), -1.0, 1.0),
            "friction": TaskParam((), 0.0, 1.0, open_low=True),
        },
    ),
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes: a minute or two on 2 CPU cores"
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for search.db and best/")
    parser.add_argument("--workers", type=int, default=1, help="worker processes of the search")
    parser.add_argument("--seed", type=int, default=0, help="evaluation and search seed")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    default = "custom_task_family-quick" if args.quick else "custom_task_family"
    out = args.out or Path("runs/examples") / default
    out.mkdir(parents=True, exist_ok=True)

    # 3. Make the family by name and run the conformance checks on it.
    family = autometa.make_task(FAMILY)
    check_task_family(family)
    print(f"task family {family.name!r} passes check_task_family")
    print(f"  observation {family.single_observation_space}, action {family.single_action_space}")
    print(f"  horizon {family.horizon}; task parameters: {', '.join(family.task_params)}")
    tasks = family.sample_tasks(3, seed=0)
    for i in range(3):
        print(
            f"  task {i}: target {tasks['target'][i].item():+.3f}, "
            f"friction {tasks['friction'][i].item():.3f}"
        )
    family.close()  # closes the gymnasium vector env behind the family

    # 4. Score one candidate from a shipped space. The space only fixes the hidden layers; the
    #    policy's input and output sizes come from the family (2 observations, 1 action).
    space = autometa.load_space("tiny")
    graph = space.sample(args.seed)
    #    Meta-iterations, tasks and episodes per meta-iteration, and the held-out test are
    #    all MAMLConfig fields; the family has no preset, so the navigation defaults apply.
    meta_iterations, tasks, episodes = (3, 4, 4) if args.quick else (30, 20, 10)
    evaluator = autometa.MAMLEvaluator(
        FAMILY,
        meta_iterations=meta_iterations,
        num_tasks=tasks,
        episodes_per_task=episodes,
        test_tasks=tasks,
        test_episodes=episodes,
    )
    result = evaluator(graph, seed=args.seed)
    print()
    print(f"candidate {space.encode(graph)}")
    if result.status != "ok":
        raise SystemExit(f"evaluation failed: {result.error}")
    by_step = result.metrics["returns_by_step"]
    print(
        f"  {result.metrics['params']} parameters, {result.fidelity} meta-iterations, "
        f"{result.metrics['env_steps']} env steps"
    )
    print(
        "  held-out return after k adaptation steps: "
        + ", ".join(f"k={k}: {r:.2f}" for k, r in enumerate(by_step))
    )
    print(f"  score {result.score:.2f} (adaptation gain {result.metrics['adaptation_gain']:+.2f})")

    # 5. A small search on the custom family. The evaluator is sent to a worker process by
    #    pickling: it carries the family's *name*, and the worker finds it in the registry
    #    because importing this file registers it (see the module docstring).
    trials = 2 if args.quick else 4
    study = autometa.search(
        space,
        strategy="random",
        evaluator=evaluator,
        budget=autometa.Budget(trials=trials),
        storage=out / "search.db",
        workers=args.workers,
        seed=args.seed,
    )
    where = "this process" if args.workers == 0 else f"{args.workers} worker process(es)"
    done = study.counts.get("DONE", 0)
    print()
    print(f"search on {FAMILY} in {where}: {done} of {len(study.trials)} trials done")
    for trial in study.trials:  # the leaderboard: the best first
        score = f"search score {trial.score:.2f}" if trial.has_score else trial.error
        final = "" if trial.final_mean is None else f", final mean {trial.final_mean:.2f}"
        print(f"  trial {trial.number}: {score}{final}  {trial.values}")
    if study.verdict is not None:
        print(study.verdict.sentence())
    if study.best_info is not None:
        print(study.best_info.describe())

    # 6. Export the best architecture with its meta-learned weights, reload it as a plain
    #    torch module, and adapt it to a task it was never trained on.
    if study.best is None:
        raise SystemExit("no trial succeeded; nothing to export")
    folder = autometa.export(study, out / "best", overwrite=True)
    policy = autometa.load(folder)
    new_task = {"target": 0.8, "friction": 0.2}
    adapted, returns = autometa.adapt(policy, FAMILY, task=new_task, steps=2, seed=args.seed)
    print()
    print(
        f"exported trial {study.best.number} ({study.best_info.label}) to {folder}; "
        f"adapted to {new_task}:"
    )
    print("  mean return " + ", ".join(f"after {k} steps: {r:.2f}" for k, r in enumerate(returns)))


if __name__ == "__main__":
    main()
