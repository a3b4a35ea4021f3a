"""Emulator vs Lava ``fixed_pt``: steady-state throughput on the same network, measured in one run.

Throughput is sample-steps per second with process start-up excluded:

- Lava: a :class:`~neurodeploy.runtime.lava_runner.LavaRunner` is built and runs one warm-up sample; then
  ``--lava-samples`` samples are timed by their ``run_s`` (the Lava run alone: no reset, no read-back).
- Emulator: one warm-up batch, then ``--batch`` samples in one batch, timed (on the GPU when present).
- CLI path: ``run_cosim(..., backend=...)`` on a batch of inputs of a spiking-only bundle (what
  ``neurodeploy cosim BUNDLE --input X.npy --backend emulator`` does), whole-command wall time per
  sample, Lava on ``--lava-samples`` of them.

Every emulator output is compared with Lava's for the samples both ran (must be 0 mismatches).
Target (issue 7): emulator / Lava >= 100 for the NIR paper's CNN and a zoo model.

    .venv/bin/python benchmarks/emulator_vs_lava.py [--batch 256] [--lava-samples 3] [--steps 100]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import neurodeploy as nd
from neurodeploy.exporters import load_spiking, read_plan
from neurodeploy.runtime.emulator import EmulatorRunner  # the two runners, measured side by side
from neurodeploy.runtime.lava_compat import install
from neurodeploy.runtime.lava_runner import LavaRunner
from neurodeploy.spiking.quantize import quantize

CNN = Path(__file__).resolve().parents[2] / "shared" / "cases" / "nir" / "02_cnn" / "cnn_sinabs.nir"


def spikes_in(rng, batch: int, steps: int, shape, rate: float) -> np.ndarray:
    return (rng.random((batch, steps, *shape)) < rate).astype(np.float64)


def lava_throughput(plan, x: np.ndarray) -> tuple[float, dict]:
    """Sample-steps per second of Lava's run (start-up excluded), and the last sample's spikes."""
    steps = x.shape[1]
    with LavaRunner(plan, steps, "fixed") as runner:
        runner.run_sample(x[0])  # build and compile
        runs = [runner.run_sample(sample) for sample in x[1:]]
    return len(runs) * steps / sum(r.timings["run_s"] for r in runs), runs[-1].spikes


def emulator_throughput(plan, x: np.ndarray) -> tuple[float, dict, str]:
    with EmulatorRunner(plan, x.shape[1], "fixed") as emu:
        emu.run_batch(x[:8])  # warm-up (allocations, kernels)
        run = emu.run_batch(x)
        return x.shape[0] * x.shape[1] / run.wall_s, run.spikes, str(emu.device)


def compare(name: str, plan, x: np.ndarray, lava_samples: int) -> float:
    lava_rate, lava_last = lava_throughput(plan, x[:lava_samples + 1])
    emu_rate, emu_spikes, device = emulator_throughput(plan, x)
    bad = sum(int(np.sum(emu_spikes[k][lava_samples] != v)) for k, v in lava_last.items())
    ratio = emu_rate / lava_rate
    print(f"{name}: Lava {lava_rate:,.0f} sample-steps/s; emulator ({device}, batch {len(x)}) {emu_rate:,.0f} "
          f"sample-steps/s; ratio {ratio:,.0f}x (target >= 100); spike mismatches vs Lava: {bad}")
    return ratio


def cli_path(plan_source: Path, x: np.ndarray, lava_samples: int, dt: float | None) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        bundle = nd.compile(plan_source, Path(tmp) / "b", dt_s=dt)
        per_sample = {}
        for backend, inputs in (("lava", x[:lava_samples]), ("emulator", x)):
            t0 = time.perf_counter()
            result = nd.cosimulate(bundle, inputs, mode="fixed", backend=backend)
            per_sample[backend] = (time.perf_counter() - t0) / len(inputs)
            if backend == "lava":
                want = result.spikes
        got = result.spikes
        bad = sum(int(np.sum(got[k][:lava_samples] != v)) for k, v in want.items())
    ratio = per_sample["lava"] / per_sample["emulator"]
    print(f"CLI path (cosim --backend emulator, {len(x)} samples, whole command per sample): Lava "
          f"{per_sample['lava'] * 1e3:,.1f} ms, emulator {per_sample['emulator'] * 1e3:,.2f} ms; ratio {ratio:,.0f}x; "
          f"spike mismatches {bad}")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lava-samples", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--zoo", default="liquidspikeformer", help="zoo model whose spiking part is measured")
    args = parser.parse_args()
    install()
    rng = np.random.default_rng(0)
    cnn = quantize(read_plan(CNN, dt=1.0)).plan  # sinabs writes IF per step (dt = 1)
    x_cnn = spikes_in(rng, args.batch, args.steps, cnn.input_shape, 0.05)
    compare("NIR paper CNN (cnn_sinabs.nir)", cnn, x_cnn, args.lava_samples)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = nd.compile(args.zoo, Path(tmp) / "z", samples=2)
        zoo_plan = quantize(load_spiking(bundle.spiking_path, bundle.manifest.spiking.dt_s)).plan
    x_zoo = spikes_in(rng, args.batch, args.steps, zoo_plan.input_shape, 0.2)
    compare(f"zoo model {args.zoo} (spiking part)", zoo_plan, x_zoo, args.lava_samples)
    cli_path(CNN, x_cnn, args.lava_samples, 1.0)


if __name__ == "__main__":
    main()
