"""Co-simulation wall time over a bare Lava run of the same spiking network, measured in one run.

Bare Lava: the bundle's spiking part in Lava ``floating_pt`` with recorded input (RingBuffer) and
output (sinks read back), sample after sample with the reset between samples. Co-simulation: the same,
plus the dense part in ONNX Runtime (schedule ``window``: the step model once per window) and the
agreement check. Both include building the Lava network. They alternate, ``--rounds`` times each; the
ratio of medians is printed. Target (issue 5): at most 1.25.

    .venv/bin/python benchmarks/cosim_vs_lava.py [--model tiny_mamba] [--samples 8] [--rounds 3]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import neurodeploy as nd
from neurodeploy.exporters import load_spiking
from neurodeploy.runtime.inputs import normalize_inputs
from neurodeploy.runtime.lava_runner import LavaRunner  # the bare run: Lava with nothing of neurodeploy's around it


def bare_lava(bundle) -> float:
    x = normalize_inputs(bundle.reference_inputs(), bundle)
    plan = load_spiking(bundle.spiking_path, bundle.manifest.spiking.dt_s)
    t0 = time.perf_counter()
    with LavaRunner(plan, x.shape[1]) as runner:
        for sample in x:
            runner.run_sample(sample)
    return time.perf_counter() - t0


def cosim(bundle, schedule: str) -> float:
    t0 = time.perf_counter()
    result = nd.cosimulate(bundle, schedule=schedule)
    assert result.agreement.spike_mismatches == 0
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny_mamba")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--schedule", default="window")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = nd.compile(args.model, Path(tmp) / "b", samples=args.samples)
        bare, co = [], []
        for _ in range(args.rounds):
            bare.append(bare_lava(bundle))
            co.append(cosim(bundle, args.schedule))
    b, c = statistics.median(bare), statistics.median(co)
    print(f"{args.model}, {args.samples} samples, schedule {args.schedule}: bare Lava {b:.3f} s, "
          f"co-simulation {c:.3f} s, ratio {c / b:.3f} (target <= 1.25)")


if __name__ == "__main__":
    main()
