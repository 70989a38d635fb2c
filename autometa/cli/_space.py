"""``autometa validate`` and ``autometa sample``: check a space file and look at its candidates.

Both build candidate graphs and count their parameters from each op's declared shapes, and
``validate`` checks the hyperparameters with the MAML evaluator's rules, all without torch:
checking a space file takes a fraction of a second, not the seconds torch takes to import.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from autometa._maml_config import check_space_hyperparameters, config_for
from autometa._task_names import TASKS
from autometa.cli._args import integer
from autometa.cli._spaces import space_help
from autometa.errors import ConfigurationError
from autometa.graph import (
    canonical_hash,
    count_macs,
    count_params,
    draw,
    to_dot,
    to_graphml,
    to_json,
)
from autometa.space import SearchSpace, load_space


def add_validate(sub: argparse._SubParsersAction) -> None:
    """Register ``autometa validate SPACE``."""
    p = sub.add_parser(
        "validate",
        help="check a search-space file and summarise it",
        description="Load a search-space file, report every problem with its key path, or "
        "print a summary of its dimensions and constraints. Its hyperparameters are checked "
        "against the MAML evaluator of --task, as `autometa search` would. Exit code 2 if it "
        "is malformed.",
    )
    p.add_argument("space", help=space_help())
    p.add_argument(
        "--samples", type=integer(0), default=20, help="candidates to sample and check (0: none)"
    )
    p.add_argument(
        "--task", default="navigation2d",
        help="task family whose MAML evaluator checks the hyperparameter names and values "
        "(default: navigation2d)",
    )  # fmt: skip
    p.set_defaults(handler=run_validate)


def run_validate(args: argparse.Namespace) -> int:
    """Load, check the hyperparameters, summarise, and check that sampled candidates build."""
    space = load_space(args.space)
    check_for_task(space, args.task)  # ConfigurationError: one line, exit code 2
    print(space.summary())
    params = []
    for seed in range(args.samples):
        graph = space.sample(seed)
        space.validate(graph)
        params.append(
            count_params(
                graph, space.io["obs_dim"], space.io["act_dim"], space.io.get("discrete", False)
            )
        )
    if params:
        print(
            f"\n{args.samples} sampled candidates are valid; parameters "
            f"(obs_dim={space.io['obs_dim']}, act_dim={space.io['act_dim']}): "
            f"min {min(params)}, median {sorted(params)[len(params) // 2]}, max {max(params)}"
        )
    print(f"hyperparameters are settings of MAMLEvaluator({args.task!r})")
    print(f"OK: {args.space}")
    return 0


def check_for_task(space: SearchSpace, task: str) -> None:
    """What ``MAMLEvaluator(task).check_space(space)`` checks, without making the evaluator
    (which imports torch): the task name, then every hyperparameter value the space can give
    against the rules of the task's preset configuration.

    Raises:
        ConfigurationError: an unknown task (with the closest name), or the evaluator's
            message for a hyperparameter it cannot use.
    """
    if task not in TASKS:
        raise ConfigurationError(TASKS.unknown_message(task))
    check_space_hyperparameters(space, config_for(task), "MAMLEvaluator")


def add_sample(sub: argparse._SubParsersAction) -> None:
    """Register ``autometa sample SPACE``."""
    p = sub.add_parser(
        "sample",
        help="draw seeded candidates from a space and print or save them",
        description="Draw candidates with a seed; print each one's decisions, canonical hash "
        "and size, and optionally write node-link JSON, GraphML, DOT and PNG files.",
    )
    p.add_argument("space", help=space_help())
    p.add_argument("-n", "--num", type=integer(1), default=3, help="how many candidates")
    p.add_argument("--seed", type=integer(0), default=0, help="seed of the first candidate")
    p.add_argument("--out", type=Path, default=None, help="folder to write the candidates to")
    p.add_argument("--json", action="store_true", help="print node-link JSON instead of text")
    p.set_defaults(handler=run_sample)


def run_sample(args: argparse.Namespace) -> int:
    """Sample ``--num`` candidates starting at ``--seed``."""
    space = load_space(args.space)
    io = space.io
    for i in range(args.num):
        seed = args.seed + i
        graph = space.sample(seed)
        key = canonical_hash(graph)
        if args.json:
            print(json.dumps({"seed": seed, "hash": key, "graph": to_json(graph)}))
        else:
            params = count_params(graph, io["obs_dim"], io["act_dim"], io.get("discrete", False))
            macs = count_macs(graph, io["obs_dim"], io["act_dim"], io.get("discrete", False))
            print(f"# candidate seed={seed} hash={key} params={params} macs={macs}")
            for name, value in space.encode(graph).items():
                print(f"  {name} = {value!r}")
        if args.out is not None:
            folder = args.out / f"candidate-{seed}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "architecture.json").write_text(json.dumps(to_json(graph), indent=2))
            to_graphml(graph, folder / "architecture.graphml")
            (folder / "architecture.dot").write_text(to_dot(graph))
            try:
                draw(graph, folder / "architecture.png", title=f"{space.name} seed={seed}")
            except ImportError:
                pass
    if args.out is not None:
        print(f"wrote {args.num} candidates to {args.out}")
    return 0
