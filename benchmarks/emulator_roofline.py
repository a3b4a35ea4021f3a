"""The emulator against this CPU's own limits, in one run.

Prints, with one torch thread: the CPU's float32 GEMM throughput (``torch.mm``, 256 x 1024 x 1024) and its
8-bit integer GEMM throughput (torch's quantized ``Linear``, uint8 x int8 -> int32 on its x86/fbgemm engine,
the same sizes; ``torch._int_mm`` is printed beside it: its CPU path is no optimised kernel), in multiply-
accumulates per second; then the emulator's synaptic operations per second (fixed point, on the CPU) on a
1024-1024-1024 LIF net (NIR ``Affine -> LIF`` twice, random spikes in) and on the NIR paper's CNN
(``cnn_sinabs.nir`` from ``../shared/cases``, IF neurons, dt = 1) at batch 1 and 64. A synaptic operation
here is one input x weight pair of a synaptic layer of the plan per time step, every pair counted (a dense
product, whatever the spikes; both layers of a precision-double pair, as the chip computes them), so the
figure compares with the GEMM's MACs. The emulator may compute fewer: event-driven sums follow the spikes,
and a pair of convs runs over a block as one conv of the summed weights. Last, the 1024 net at batch 64
with torch's default threads against one thread. Beside each emulator figure, in the same run: the same run
step by step in torch (the emulator before the kernel work: blocks of steps, numba's LIF loop, event-driven
sums, channels-last float32 conv blocks), the same blocks with every sum as a matrix product (no
event-driven sums), and (where the plan has conv pairs) each conv of a pair computed on its own.

Targets (issue 30): feed-forward >= 1.0x and CNN >= 0.5x of the float32 GEMM figure at batch 64; batch 1
at least 3x the throughput recorded before the kernel work; default threads no more than 1.25x slower than
one thread.

    python benchmarks/emulator_roofline.py [--steps 32] [--repeat 3]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import nir
import numpy as np
import torch
from compile_wide import wide_graph  # the same graph the compile benchmark builds

ROOT = Path(__file__).resolve().parents[1]
CNN = ROOT.parent / "shared" / "cases" / "nir" / "02_cnn" / "cnn_sinabs.nir"


def best_s(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def gemm_rates(repeat: int, m: int = 256, k: int = 1024, n: int = 1024) -> dict[str, float]:
    """MACs per second of float32 and 8-bit matrix products of (m, k) x (k, n)."""
    import warnings

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(m, k, generator=g), torch.randn(k, n, generator=g)
    ai, bi = torch.randint(-127, 128, (m, k), dtype=torch.int8, generator=g), \
        torch.randint(-127, 128, (k, n), dtype=torch.int8, generator=g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch deprecates quantized tensors; fbgemm is still its 8-bit kernel
        linear = torch.ao.nn.quantized.Linear(k, n)
        aq = torch.quantize_per_tensor(a, 0.05, 128, torch.quint8)
    macs = m * k * n
    return {"float32": macs / best_s(lambda: torch.mm(a, b), repeat),
            "int8": macs / best_s(lambda: linear(aq), repeat),
            "int_mm": macs / best_s(lambda: torch._int_mm(ai, bi), 1)}


def fixed_plan(graph_or_path, dt: float | None = None):
    from neurodeploy.exporters import load_spiking
    from neurodeploy.exporters.nir_export import write_nir
    from neurodeploy.spiking.quantize import quantize_for
    import tempfile

    if isinstance(graph_or_path, nir.NIRGraph):
        with tempfile.TemporaryDirectory() as tmp:
            write_nir(graph_or_path, Path(tmp) / "g.nir")
            plan = load_spiking(Path(tmp) / "g.nir", dt)
    else:
        plan = load_spiking(graph_or_path, dt)
    return quantize_for(plan).plan


def dense_sops_per_sample(plan, steps: int) -> float:
    """Every input x weight pair of every synaptic layer, per step, summed over ``steps``."""
    from neurodeploy.cost.counts import fan_out

    return steps * float(sum(fan_out(s, nonzero=False).sum() for s in plan.synapses))


def emulator_rate(plan, steps: int, batch: int, repeat: int, step_by_step: bool = False,
                  products: bool = False, separate_convs: bool = False) -> float:
    """Synaptic operations per second of the emulator (fixed point, CPU) on ``batch`` samples of random spikes;
    ``step_by_step``: its torch path one step at a time (the emulator before the kernel work, still the path of
    recurrent plans); ``products``: every synaptic sum as a matrix product (no event-driven sums);
    ``separate_convs``: each conv of a pair (the quantizer's precision double) computed on its own, not the
    pair as one conv of the summed weights."""
    from neurodeploy.runtime.emulator import EmulatorRunner, _ConvGroup

    rng = np.random.default_rng(1)
    x = (rng.random((batch, steps, *plan.input_shape)) < 0.2).astype(np.float64)
    runner = EmulatorRunner(plan, steps, mode="fixed", device="cpu")
    if step_by_step or products:
        for syn in runner.synapses:
            syn.events = None
    if step_by_step:
        runner.order, runner._compiled = None, lambda population: False
    if separate_convs:
        runner.conv_groups = {name: [_ConvGroup([syn], syn.weights) for group in groups for syn in group.synapses]
                              for name, groups in runner.conv_groups.items()}
    return dense_sops_per_sample(plan, steps) * batch / best_s(lambda: runner.run_batch(x), repeat)


def conv_pairs(plan, steps: int) -> int:
    """Conv pairs (precision double) that the emulator runs as one conv over a block."""
    from neurodeploy.runtime.emulator import EmulatorRunner

    groups = EmulatorRunner(plan, steps, mode="fixed", device="cpu").conv_groups.values()
    return sum(len(group.synapses) > 1 for population in groups for group in population)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    default_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    limits = gemm_rates(args.repeat)
    print(f"one thread: float32 GEMM {limits['float32'] / 1e9:.1f} GMAC/s, int8 GEMM {limits['int8'] / 1e9:.1f} "
          f"GMAC/s (quantized Linear; torch._int_mm {limits['int_mm'] / 1e9:.2f}), 256 x 1024 x 1024")
    nets = {"1024-1024-1024 LIF": fixed_plan(wide_graph(1024, 2, gain=3.0))}
    if CNN.is_file():
        nets["NIR paper CNN"] = fixed_plan(CNN, dt=1.0)
    for name, plan in nets.items():
        for batch in (1, 64):
            rate = emulator_rate(plan, args.steps, batch, args.repeat)
            products = emulator_rate(plan, args.steps, batch, args.repeat, products=True)
            before = emulator_rate(plan, args.steps, batch, args.repeat, step_by_step=True)
            pairs, separate = conv_pairs(plan, args.steps), ""
            if pairs:
                alone = emulator_rate(plan, args.steps, batch, args.repeat, separate_convs=True)
                separate = f"; each conv of its {pairs} pairs on its own {alone / 1e9:.2f} GSOP/s"
            print(f"{name}, batch {batch}: {rate / 1e9:.2f} GSOP/s = {rate / limits['float32']:.2f} x float32 GEMM, "
                  f"{rate / limits['int8']:.2f} x int8 GEMM; every sum a product {products / 1e9:.2f} GSOP/s; "
                  f"step by step in torch {before / 1e9:.2f} GSOP/s ({rate / before:.1f}x){separate}")
    plan = nets["1024-1024-1024 LIF"]
    one = emulator_rate(plan, args.steps, 64, args.repeat)
    torch.set_num_threads(default_threads)
    default = emulator_rate(plan, args.steps, 64, args.repeat)
    print(f"1024-1024-1024 LIF, batch 64: default threads ({default_threads}) {default / 1e9:.2f} GSOP/s against "
          f"one thread {one / 1e9:.2f}: {one / default:.2f}x slower with the default (target <= 1.25)")


if __name__ == "__main__":
    main()
