"""CPU time to read and validate a large space file: libyaml's parser against pure PyYAML.

The file is a valid space of 0.69 MB: a one-layer chain whose hyperparameter ``test_seed``
is a choice of 100,000 integers. Three measurements, each with the loader space files are
read with (``autometa.space._yaml.SpaceLoader``: libyaml when PyYAML has it) and with the
pure Python one (``PureLoader``, what every file was read with before libyaml was used):

- ``load_space yaml``: ``load_space`` on the YAML file, in this process;
- ``load_space json``: the same space as JSON (JSON files are also read as YAML, for marks);
- ``autometa validate``: the command ``autometa validate FILE --samples 0`` in a fresh Python
  process (its CPU time, imports included).

Then the whole command as a user runs it, ``autometa validate FILE`` (20 sampled candidates,
the default) and ``autometa validate tiny``, each in a fresh process with the default loader:
its CPU seconds (``resource.getrusage`` of the child) and whether it imported torch. The goal
is under 2 CPU seconds for the big file, without torch.

Usage: python benchmarks/bench_space_load.py [--repeats 3]
Writes ``benchmarks/results/bench_space_load.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, save  # noqa: E402

import autometa.space.load as load  # noqa: E402
from autometa.space._yaml import FastLoader, PureLoader  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHOICES = 100_000
HEAD = (
    "name: wide\n"
    "graph:\n  kind: chain\n  layers: 1\n  layer: {width: 8, activation: tanh}\n"
    "hyperparameters:\n"
)
# Runs ``autometa validate`` with the loader named by the first argument.
VALIDATE = (
    "import sys\n"
    "import autometa.space._yaml as y, autometa.space.load as load\n"
    "load.SpaceLoader = getattr(y, sys.argv[1])\n"
    "from autometa.cli import main\n"
    "sys.exit(main(['validate', sys.argv[2], '--samples', '0']))\n"
)


def write_files(folder: Path) -> tuple[Path, Path]:
    """The wide space as YAML and as JSON."""
    values = list(range(CHOICES))
    yaml_path = folder / "wide.yaml"
    yaml_path.write_text(HEAD + "  test_seed: {choice: [" + ", ".join(map(str, values)) + "]}\n")
    spec = {
        "name": "wide",
        "graph": {"kind": "chain", "layers": 1, "layer": {"width": 8, "activation": "tanh"}},
        "hyperparameters": {"test_seed": {"choice": values}},
    }
    json_path = folder / "wide.json"
    json_path.write_text(json.dumps(spec))
    return yaml_path, json_path


def cpu_of_load(path: Path, loader: type) -> float:
    """CPU seconds of one ``load_space(path)`` read with ``loader``."""
    saved = load.SpaceLoader
    load.SpaceLoader = loader
    try:
        start = time.process_time()
        space = load.load_space(path)
        spent = time.process_time() - start
    finally:
        load.SpaceLoader = saved
    assert len(space.dimensions[-1].choices) == CHOICES
    return spent


def cpu_of_validate(path: Path, loader: type) -> float:
    """CPU seconds of ``autometa validate path --samples 0`` in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", VALIDATE, loader.__name__, str(path)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert proc.returncode == 0, proc.stderr
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


# Runs ``autometa ARGS`` as the console script does, then says whether torch was imported.
PROCESS = (
    "import sys\n"
    "from autometa.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print('torch imported:', 'torch' in sys.modules)\n"
    "sys.exit(code)\n"
)


def cpu_of_command(args: list[str]) -> tuple[float, bool]:
    """CPU seconds of ``autometa ARGS`` in a fresh process, and whether it imported torch."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", PROCESS, *args], capture_output=True, text=True, env=env,
        check=False,
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert proc.returncode == 0, proc.stderr
    torch = proc.stdout.splitlines()[-1] == "torch imported: True"
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), torch


def whole_commands(yaml_path: Path, repeats: int) -> tuple[list[list], list[dict]]:
    """Table rows and records of the whole ``autometa validate`` process, as users run it."""
    rows, records = [], []
    for label, args in (
        (f"validate {yaml_path.name}", ["validate", str(yaml_path)]),
        ("validate tiny", ["validate", "tiny", "--task", "navigation2d"]),
    ):
        runs = [cpu_of_command(args) for _ in range(repeats)]
        times = [t for t, _ in runs]
        torch = any(imported for _, imported in runs)
        median = statistics.median(times)
        rows.append([label, median, min(times), "yes" if torch else "no"])
        records.append(
            {"command": f"autometa {label}", "cpu_s": times, "median_s": median, "torch": torch}
        )
    return rows, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (median)")
    args = parser.parse_args()
    if FastLoader is None:
        sys.exit("PyYAML has no libyaml here: there is nothing to compare")
    with tempfile.TemporaryDirectory() as tmp:
        yaml_path, json_path = write_files(Path(tmp))
        size = yaml_path.stat().st_size
        cases = [
            ("load_space yaml", lambda lo: cpu_of_load(yaml_path, lo)),
            ("load_space json", lambda lo: cpu_of_load(json_path, lo)),
            ("autometa validate", lambda lo: cpu_of_validate(yaml_path, lo)),
        ]
        rows, results = [], []
        for name, measure in cases:
            times: dict[str, list[float]] = {"pure": [], "libyaml": []}
            for _ in range(args.repeats):  # alternate, so drift affects both alike
                times["pure"].append(measure(PureLoader))
                times["libyaml"].append(measure(FastLoader))
            pure, fast = (statistics.median(times[k]) for k in ("pure", "libyaml"))
            rows.append([name, pure, fast, pure / fast])
            results.append({"case": name, "pure_cpu_s": times["pure"],
                            "libyaml_cpu_s": times["libyaml"], "pure_median_s": pure,
                            "libyaml_median_s": fast, "speedup": pure / fast})  # fmt: skip
        whole_rows, whole = whole_commands(yaml_path, args.repeats)
    print(f"a valid space of {size / 1e6:.2f} MB: one choice of {CHOICES:,} integers")
    print(f"CPU seconds, median of {args.repeats}\n")
    print_table(["case", "pure PyYAML", "libyaml", "speed-up"], rows)
    print("\nthe whole command in a fresh process (default loader, 20 samples): CPU seconds\n")
    print_table(["command", "median", "min", "imports torch"], whole_rows)
    save("bench_space_load", {"file_bytes": size, "choices": CHOICES,
                              "repeats": args.repeats, "results": results,
                              "whole_command": whole})  # fmt: skip


if __name__ == "__main__":
    main()
