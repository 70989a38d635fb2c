"""Env-steps per second of batched 2D navigation against gymnasium's SyncVectorEnv.

For T tasks x E episodes in {20x20, 40x20, 100x50} it times

- ``batched``: ``make_task("navigation2d")`` stepping all T x E slots as one tensor batch
  (on CUDA when there is one, else CPU; ``--device`` overrides);
- ``sync numpy``: ``gymnasium.vector.SyncVectorEnv`` over T x E copies of a plain NumPy
  single-instance 2D navigation env (the form pytorch-maml-rl and learn2learn step);
- ``sync view``: ``SyncVectorEnv`` over T x E copies of ``family.single_env(...)``, the
  family's own single-instance gymnasium view.

Usage: ``python benchmarks/bench_tasks.py [--device cuda] [--repeats 3]``. Prints a table
and writes ``benchmarks/results/bench_tasks.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from autometa.tasks import make_task

SIZES = [(20, 20), (40, 20), (100, 50)]
RESULTS = Path(__file__).resolve().parent / "results" / "bench_tasks.json"


class NumpyNavigation2D(gym.Env):
    """The single-instance 2D navigation env in NumPy: same dynamics as ``navigation2d``."""

    def __init__(self, goal: np.ndarray) -> None:
        self.observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.goal = np.asarray(goal, np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = np.zeros(2, np.float32)
        return self.position.copy(), {}

    def step(self, action):
        self.position = self.position + np.clip(0.1 * action, -0.1, 0.1).astype(np.float32)
        dx, dy = self.position - self.goal
        reward = -float(np.sqrt(dx * dx + dy * dy))
        terminated = abs(dx) < 0.01 and abs(dy) < 0.01
        return self.position.copy(), reward, terminated, False, {}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_batched(family, num_tasks: int, num_episodes: int, repeats: int) -> float:
    """Best steps/s over ``repeats`` full rollouts (reset + ``horizon`` steps)."""
    params = family.sample_tasks(num_tasks, seed=0)
    gen = torch.Generator(device=family.device).manual_seed(0)
    shape = (family.horizon, num_tasks, num_episodes, 2)
    actions = 2 * torch.rand(shape, generator=gen, device=family.device) - 1
    best = 0.0
    for _ in range(repeats + 1):  # the first rollout warms up
        _sync(family.device)
        start = time.perf_counter()
        state, _ = family.reset(params, num_episodes=num_episodes, seed=0)
        for t in range(family.horizon):
            state, obs, reward, terminated, truncated, _ = family.step(state, actions[t])
        _sync(family.device)
        best = max(best, num_tasks * num_episodes * family.horizon / (time.perf_counter() - start))
    return best


def time_sync_vector(env_fns, steps: int, repeats: int) -> float:
    """Best steps/s of a SyncVectorEnv over ``steps`` steps (after its reset)."""
    envs = SyncVectorEnv(env_fns, autoreset_mode=AutoresetMode.SAME_STEP)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (steps, envs.num_envs, 2)).astype(np.float32)
    best = 0.0
    for _ in range(repeats):
        envs.reset(seed=0)
        start = time.perf_counter()
        for t in range(steps):
            envs.step(actions[t])
        best = max(best, envs.num_envs * steps / (time.perf_counter() - start))
    envs.close()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", default=default, help=f"batched device ({default})")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats, best kept")
    parser.add_argument("--sync-steps", type=int, default=20, help="steps timed per SyncVectorEnv")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON output path")
    args = parser.parse_args()

    family = make_task("navigation2d", device=args.device)
    cpu_family = make_task("navigation2d", device="cpu")
    rows = []
    header = (
        f"{'T x E':>9} | {'batched':>12} | {'sync numpy':>11} | {'ratio':>7} | "
        f"{'sync view':>10} | {'ratio':>7}"
    )
    print(f"navigation2d env-steps/s, batched on {family.device}, horizon {family.horizon}")
    print(header)
    print("-" * len(header))
    for num_tasks, num_episodes in SIZES:
        batched = time_batched(family, num_tasks, num_episodes, args.repeats)
        goals = cpu_family.sample_tasks(num_tasks, seed=0)["goal"]
        slots = [goals[i] for i in range(num_tasks) for _ in range(num_episodes)]
        numpy_fns = [lambda g=g: NumpyNavigation2D(g.numpy()) for g in slots]
        view_fns = [lambda g=g: cpu_family.single_env({"goal": g}) for g in slots]
        sync_numpy = time_sync_vector(numpy_fns, args.sync_steps, args.repeats)
        sync_view = time_sync_vector(view_fns, max(2, args.sync_steps // 4), 1)
        row = {
            "tasks": num_tasks,
            "episodes": num_episodes,
            "batched_steps_per_s": batched,
            "sync_numpy_steps_per_s": sync_numpy,
            "ratio_vs_sync_numpy": batched / sync_numpy,
            "sync_view_steps_per_s": sync_view,
            "ratio_vs_sync_view": batched / sync_view,
        }
        rows.append(row)
        print(
            f"{num_tasks:>4} x {num_episodes:<3} | {batched:>12,.0f} | {sync_numpy:>11,.0f} | "
            f"{batched / sync_numpy:>6,.0f}x | {sync_view:>10,.0f} | {batched / sync_view:>6,.0f}x"
        )
    record = {
        "benchmark": "bench_tasks",
        "family": "navigation2d",
        "horizon": family.horizon,
        "device": str(family.device),
        "device_name": (
            torch.cuda.get_device_name(family.device)
            if family.device.type == "cuda"
            else platform.processor() or platform.machine()
        ),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "gymnasium": gym.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "repeats": args.repeats,
        "sync_steps": args.sync_steps,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
