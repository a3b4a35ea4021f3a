"""How fast the CLI answers ``--help`` and a bad argument (target: under 1 s), beside an ``import torch``.

Each command runs as a fresh process, ``--rounds`` times, interleaved; medians are printed, with the
ratio to ``python -c "import torch"`` measured in the same run (what the CLI would cost if it imported
torch eagerly).

    .venv/bin/python benchmarks/cli_startup.py [--rounds 5]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMAND = str(Path(sys.executable).with_name("neurodeploy"))
CASES = {
    "neurodeploy --help": [COMMAND, "--help"],
    "neurodeploy cosim --help": [COMMAND, "cosim", "--help"],
    "neurodeploy energy (missing BUNDLE)": [COMMAND, "energy"],
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
}


def wall_s(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=False)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(args.rounds):
        for name, argv in CASES.items():
            times[name].append(wall_s(argv))
    torch_s = statistics.median(times["python -c 'import torch'"])
    for name, runs in times.items():
        median = statistics.median(runs)
        verdict = "" if name.startswith("python") else f"  {'OK' if median < 1.0 else 'SLOW'} (target < 1 s)"
        print(f"{name:38s} median {median:.3f} s over {args.rounds} runs; / import torch {median / torch_s:.2f}{verdict}")


if __name__ == "__main__":
    main()
