"""The emulator on the streaming runtime: emulator alone, dense part alone, the old replay and the stream.

On one zoo bundle (fixed point, its window schedule) and N generated samples, in one run, this prints:

- emulator alone: ``EmulatorRunner.run_many`` on the batch (the spiking part's compute);
- dense alone: the step model on every window of every sample's cut spikes, one sample after another;
- replay: the emulator on the batch, then the dense part per sample (the path before the emulator
  streamed, still taken with ``checkpoint=``);
- stream: the co-simulation (``run_cosim(..., backend="emulator")``) from its first emulator step to its
  last dense step: the dense thread runs each window while the emulator computes the next.

The two overlap only where PyTorch and ONNX Runtime release the GIL; the stream lies between
max(emulator, dense), full overlap, and their sum, none.
Each figure is the fastest of ``--repeat`` runs (a 2-core machine is noisy); outputs are checked equal.

    python benchmarks/emulator_streaming.py [--model liquidspikeformer] [--samples 256] [--repeat 3]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def fastest(fn, repeat: int):
    """(the fastest wall time of ``repeat`` calls, the last call's result)."""
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main() -> None:
    import neurodeploy as nd
    from neurodeploy.runtime.bundle_plan import load_plan
    from neurodeploy.runtime.cosim import run_cosim
    from neurodeploy.runtime.dense_step import StepRunner
    from neurodeploy.runtime.emulator import EmulatorRunner

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="liquidspikeformer")
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    bundle = nd.compile(args.model, tmp / "b", samples=8)
    m = bundle.manifest
    shape = (args.samples, m.num_steps, *m.spiking.input_shape)
    x = (np.random.default_rng(0).random(shape) < 0.2).astype(np.float64)
    plan = load_plan(bundle, "fixed")
    cut = plan.outputs[m.spiking.cut_output]
    with EmulatorRunner(plan, m.num_steps, "fixed") as runner:
        emulator_s, (spikes, _) = fastest(lambda: runner.run_many(x), args.repeat)
    stepper = StepRunner(bundle.path / m.dense.step_file, "window", m.adapter.window)
    cuts = spikes[cut].astype(np.float32)
    dense_s, y_dense = fastest(lambda: np.stack([stepper.run(cuts[b: b + 1]) for b in range(len(x))]), args.repeat)

    def replay():
        with EmulatorRunner(plan, m.num_steps, "fixed") as runner:
            cut_spikes = runner.run_many(x)[0][cut].astype(np.float32)
        return np.stack([stepper.run(cut_spikes[b: b + 1]) for b in range(len(x))])

    replay_s, y_replayed = fastest(replay, args.repeat)
    streams = []
    for _ in range(args.repeat):
        result = run_cosim(bundle, x, mode="fixed", backend="emulator", schedule="window", progress=False)
        streams.append((max(w["dense_end_s"] for w in result.timeline["windows"]), result))
    stream_s, streamed = min(streams, key=lambda s: s[0])
    assert np.array_equal(streamed.y, y_replayed) and np.array_equal(streamed.y, y_dense)
    assert all(np.array_equal(s, spikes[k]) for k, s in streamed.spikes.items())
    depth = max(w["queue_depth"] for w in streamed.timeline["windows"])
    whole = {}
    for name, stream in (("stream", True), ("replay", False)):
        whole[name], _ = fastest(lambda: run_cosim(bundle, x, mode="fixed", backend="emulator", schedule="window",
                                                   progress=False, stream=stream), args.repeat)
    print(f"{args.model}: {args.samples} samples x {m.num_steps} steps, fixed point, window schedule "
          f"(K = {m.adapter.window}); fastest of {args.repeat}; outputs equal")
    print(f"  emulator alone {emulator_s:.3f} s, dense alone {dense_s:.3f} s")
    print(f"  replay (emulator on the batch, then dense per sample): {replay_s:.3f} s")
    print(f"  stream (from the first step to the last dense step): {stream_s:.3f} s = "
          f"{stream_s / max(emulator_s, dense_s):.2f} x max(emulator, dense), {stream_s / (emulator_s + dense_s):.2f} x "
          f"their sum; {replay_s / stream_s:.2f}x faster than replay; deepest dense queue {depth} windows")
    print(f"  the whole co-simulation (run_cosim): streamed {whole['stream']:.3f} s, sample by sample "
          f"{whole['replay']:.3f} s ({whole['replay'] / whole['stream']:.2f}x)")


if __name__ == "__main__":
    main()
