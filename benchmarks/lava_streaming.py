"""Lava streaming: bare Lava steps, the old sample-by-sample replay, and the streaming co-simulation, one run.

On the same network and inputs (fixed point), this prints:

- bare Lava: the stream's network (every sample, one per period) run for all its steps in one blocking
  call, nothing read back: Lava's compute;
- replay: :class:`~neurodeploy.runtime.lava_runner.LavaRunner`, one sample at a time with ``Var.set``
  resets and ring-buffer read-back (the path before streaming, still used for feedback, checkpoints
  and recurrent plans);
- stream: :func:`~neurodeploy.runtime.lava_stream.stream_batch`, outputs received step by step;
- for a hybrid bundle, the streaming co-simulation (``nd.cosimulate(..., backend="lava")``) and the dense
  part alone (ONNX Runtime on the same cut spikes), to check co-simulation <= 1.10 x max(bare, dense).

Lava I/O = stream run - bare run (receiving every step), as a fraction of the bare run. Start-up
(compiling the Lava network) is printed apart: it is paid once per call.

    python benchmarks/lava_streaming.py [--samples 8] [--cnn-steps 17]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

CNN = Path(__file__).resolve().parents[2] / "shared" / "cases" / "nir" / "02_cnn" / "cnn_sinabs.nir"


def bare_lava(plan, x: np.ndarray, mode: str) -> tuple[float, float]:
    """(build s, run s) of the stream's network run in one blocking call, nothing received."""
    from neurodeploy.runtime.lava_compat import import_lava_core

    import_lava_core()
    from lava.magma.core.run_conditions import RunSteps

    from neurodeploy.runtime import lava_net
    from neurodeploy.runtime.lava_net import build_network
    from neurodeploy.runtime.lava_runner import stopped_on_exit
    from neurodeploy.runtime.lava_stream import run_config, stream_layout

    saved, lava_net.EXTRACTOR_STEPS = lava_net.EXTRACTOR_STEPS, 1 << 30  # channels that hold every step
    layout, data = stream_layout(plan, x)
    t0 = time.perf_counter()
    net = build_network(plan, len(x) * layout.period, data, mode, stream=layout)
    with stopped_on_exit(net.source):
        cfg = run_config(mode)
        net.source.create_runtime(run_cfg=cfg)
        t1 = time.perf_counter()
        net.source.run(condition=RunSteps(num_steps=len(x) * layout.period), run_cfg=cfg)
        t2 = time.perf_counter()
    lava_net.EXTRACTOR_STEPS = saved
    return t1 - t0, t2 - t1


def replay(plan, x: np.ndarray, mode: str) -> dict:
    from neurodeploy.runtime.lava_runner import LavaRunner

    t0 = time.perf_counter()
    parts = {"reset_and_load_s": 0.0, "run_s": 0.0, "readout_s": 0.0}
    with LavaRunner(plan, x.shape[1], mode) as runner:
        for sample in x:
            for k, v in runner.run_sample(sample).timings.items():
                parts[k] += v
    return parts | {"total_s": time.perf_counter() - t0}


def compare(title: str, plan, x: np.ndarray, mode: str = "fixed", repeat: int = 3) -> None:
    """Bare and streamed runs alternate ``repeat`` times; the fastest of each is kept (the noise on a
    2-core machine shared by a dozen Lava processes is larger than the I/O measured)."""
    from neurodeploy.runtime.lava_stream import stream_batch

    old = replay(plan, x, mode)
    bare, streams = [], []
    for _ in range(repeat):
        bare.append(bare_lava(plan, x, mode))
        t0 = time.perf_counter()
        _, times = stream_batch(plan, x, mode)
        streams.append((time.perf_counter() - t0, times))
    build_bare, run_bare = min(bare, key=lambda b: b[1])
    total, times = min(streams, key=lambda s: s[1].run_s)
    io = times.run_s - run_bare
    print(f"{title}: {len(x)} samples x {x.shape[1]} steps, {mode}; fastest of {repeat} bare and {repeat} streamed runs")
    print(f"  bare Lava: {run_bare:.2f} s of steps (+ {build_bare:.2f} s to compile)")
    print(f"  replay:    {old['total_s']:.2f} s (reset and load {old['reset_and_load_s']:.2f}, steps {old['run_s']:.2f}, "
          f"read-back {old['readout_s']:.2f}); Lava I/O {(old['reset_and_load_s'] + old['readout_s']) / old['run_s']:.0%} "
          "of its steps")
    print(f"  stream:    {total:.2f} s (compile {times.build_s:.2f}, steps and receiving {times.run_s:.2f}); "
          f"Lava I/O {io:.2f} s = {io / run_bare:.0%} of the bare steps (target <= 10 %); "
          f"{old['total_s'] / total:.1f}x faster than replay")


def cosim(name: str, samples: int) -> None:
    import neurodeploy as nd
    from neurodeploy.exporters.onnx_session import make_session
    from neurodeploy.runtime.bundle_plan import load_plan

    bundle = nd.compile(name, Path(__import__("tempfile").mkdtemp()) / "b", samples=samples)
    x = bundle.reference_inputs().astype(np.float64)
    plan = load_plan(bundle, "fixed")
    compare(f"{name} (spiking part)", plan, x)
    build_bare, run_bare = bare_lava(plan, x, "fixed")
    t0 = time.perf_counter()
    result = nd.cosimulate(bundle, mode="fixed", backend="lava")
    wall = time.perf_counter() - t0
    cut = result.spikes[plan.outputs[bundle.manifest.spiking.cut_output]].astype(np.float32)
    session = make_session(bundle.dense_path)
    t1 = time.perf_counter()
    for b in range(len(cut)):
        session.run(None, {bundle.manifest.dense.input_name: cut[b: b + 1]})
    dense = time.perf_counter() - t1
    steps = result.timeline["spiking_run_s"]
    print(f"  co-simulation ({result.schedule}): {wall:.2f} s in all, {steps:.2f} s of Lava steps with the dense part "
          f"behind them; bare Lava {run_bare:.2f} s, dense alone {dense:.3f} s: steps / max(bare, dense) = "
          f"{steps / max(run_bare, dense):.2f} (target <= 1.10); compile {build_bare:.2f} s apart")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--cnn-steps", type=int, default=17)
    args = parser.parse_args()
    from neurodeploy.exporters import load_spiking
    from neurodeploy.spiking.quantize import quantize_for

    cnn = quantize_for(load_spiking(CNN, 1.0, "euler", ())).plan
    x = (np.random.default_rng(0).random((args.samples, args.cnn_steps, *cnn.input_shape)) < 0.05).astype(float)
    compare("NIR paper CNN (cnn_sinabs.nir)", cnn, x)
    cosim("liquidspikeformer", args.samples)


if __name__ == "__main__":
    main()
