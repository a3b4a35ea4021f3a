"""The emulator on the streaming runtime: emulator alone, dense part alone, the old replay and the stream.

On one zoo bundle (fixed point, its window schedule) and N generated samples, in one run, this prints:

- emulator alone: ``EmulatorRunner.run_many`` on the batch (the spiking part's compute);
- dense alone: the step model on every window of every sample's cut spikes, one sample after another;
- replay: the emulator on the batch, then the dense part per sample (the path before the emulator
  streamed, still taken with ``checkpoint=``);
- stream: ``nd.cosimulate(..., backend="emulator")``: the dense thread runs each window while the
  emulator computes the next.

Target: stream <= 1.10 x max(emulator, dense) (the two overlap); replay is about emulator + dense.
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
    from neurodeploy.runtime.cosim import StepRunner, _plan
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
    plan = _plan(bundle, "fixed")
    cut = plan.outputs[m.spiking.cut_output]
    with EmulatorRunner(plan, m.num_steps, "fixed") as runner:
        emulator_s, (spikes, _) = fastest(lambda: runner.run_many(x), args.repeat)
    stepper = StepRunner(bundle.path / m.dense.step_file, "window", m.adapter.window)
    cuts = spikes[cut].astype(np.float32)
    dense_s, y_dense = fastest(lambda: np.stack([stepper.run(cuts[b: b + 1]) for b in range(len(x))]), args.repeat)
    replay_s, replayed = fastest(lambda: nd.cosimulate(bundle, x, mode="fixed", backend="emulator", schedule="window",
                                                       checkpoint=tempfile.mkdtemp(dir=tmp)), args.repeat)
    stream_s, streamed = fastest(lambda: nd.cosimulate(bundle, x, mode="fixed", backend="emulator",
                                                       schedule="window"), args.repeat)
    assert np.array_equal(streamed.y, replayed.y) and np.array_equal(streamed.y, y_dense)
    assert all(np.array_equal(s, replayed.spikes[k]) for k, s in streamed.spikes.items())
    depth = max(w["queue_depth"] for w in streamed.timeline["windows"])
    print(f"{args.model}: {args.samples} samples x {m.num_steps} steps, fixed point, window schedule "
          f"(K = {m.adapter.window}); fastest of {args.repeat}; outputs equal")
    print(f"  emulator alone {emulator_s:.3f} s, dense alone {dense_s:.3f} s")
    print(f"  replay (emulator, then dense): {replay_s:.3f} s = {replay_s / max(emulator_s, dense_s):.2f} x max")
    print(f"  stream: {stream_s:.3f} s = {stream_s / max(emulator_s, dense_s):.2f} x max(emulator, dense) "
          f"(target <= 1.10); {replay_s / stream_s:.2f}x faster than replay; deepest dense queue {depth} windows")


if __name__ == "__main__":
    main()
