"""The dense step model batched over samples against one call per sample, and a whole ``evaluate``.

On the demo model (``liquidspikeformer``: emulator, fixed point, its window schedule) and N generated
samples, in one run, this prints:

- dense step calls per N samples (ONNX Runtime calls) and the dense part's wall time (the sum of the
  timeline's dense steps), batched (one call per window for all samples of an emulator chunk, each
  sample's state in its row) and with one call per sample window, and that the outputs are identical;
- the whole ``nd.evaluate`` of the N samples with their labels, batched and one call per sample.

Torch and ONNX Runtime threads as the process has them (printed). Each figure is the fastest of
``--repeat`` runs (a 2-core machine is noisy).

    python benchmarks/dense_batching.py [--samples 1024] [--repeat 3]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from emulator_streaming import fastest  # benchmarks/ is the script's folder: on sys.path


def dense_alone(bundle, run, repeat: int, chunk: int = 256) -> tuple[float, float]:
    """Seconds of the step model alone on ``run``'s cut spikes: batches of ``chunk`` samples per call, and one
    sample per call (outputs checked equal)."""
    from neurodeploy.runtime.dense_step import StepRunner

    m = bundle.manifest
    stepper = StepRunner(bundle.path / m.dense.step_file, "window", m.adapter.window)
    cut = run.spikes[run.plan.outputs[m.spiking.cut_output]].astype(np.float32)
    cut = cut.reshape(*cut.shape[:2], -1)
    k = m.adapter.window

    def batched():
        ys = []
        for c in range(0, len(cut), chunk):
            part = cut[c: c + chunk]
            states, y = stepper.zero_states(len(part)), []
            for w in range(0, cut.shape[1], k):
                out, states = stepper.step_many(part[:, w: w + k], states)
                y.append(out)
            ys.append(np.stack(y, axis=1))
        return np.concatenate(ys)

    fast_s, y_fast = fastest(batched, repeat)
    slow_s, y_slow = fastest(lambda: np.stack([stepper.run(cut[b: b + 1]) for b in range(len(cut))]), repeat)
    assert np.array_equal(y_fast, y_slow)
    return fast_s, slow_s


def main() -> None:
    import torch

    import neurodeploy as nd
    from neurodeploy.runtime import streaming
    from neurodeploy.runtime.cosim import run_cosim

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bundle = nd.compile("liquidspikeformer", Path(tempfile.mkdtemp()) / "b", samples=8)
    m = bundle.manifest
    x = (np.random.default_rng(0).random((args.samples, m.num_steps, *m.spiking.input_shape)) < 0.2).astype(float)
    labels = np.random.default_rng(1).integers(0, 4, args.samples)
    batching = streaming.DenseWorker.can_batch
    results = {}
    for name, rule in (("batched", batching), ("one call per sample", lambda self, items: False)):
        streaming.DenseWorker.can_batch = rule
        runs = [run_cosim(bundle, x, mode="fixed", backend="emulator", schedule="window") for _ in range(args.repeat)]
        dense_s = min(sum(w["dense_end_s"] - w["dense_start_s"] for w in r.timeline["windows"]) for r in runs)
        evaluate_s, _ = fastest(lambda: nd.evaluate(bundle, x, labels), args.repeat)
        results[name] = (runs[-1], dense_s, evaluate_s)
    streaming.DenseWorker.can_batch = batching
    (fast, fast_dense, fast_eval), (slow, slow_dense, slow_eval) = results.values()
    assert np.array_equal(fast.y, slow.y), "batched outputs differ from one call per sample"
    alone = dense_alone(bundle, fast, args.repeat)
    print(f"liquidspikeformer: {args.samples} samples x {m.num_steps} steps, fixed point, window schedule "
          f"(K = {m.adapter.window}); torch threads {torch.get_num_threads()}; fastest of {args.repeat}; outputs identical")
    print(f"  dense step calls: batched {fast.timeline['dense_calls']:,}, one per sample window "
          f"{slow.timeline['dense_calls']:,} ({fast.dense_invocations:,} sample windows either way)")
    print(f"  dense part wall time: batched {fast_dense:.3f} s, one call per sample window {slow_dense:.3f} s "
          f"({slow_dense / fast_dense:.1f}x less)")
    print(f"  the step model alone on the run's cut spikes (no emulator beside it): batches of 256 {alone[0]:.3f} s, "
          f"one sample at a time {alone[1]:.3f} s ({alone[1] / alone[0]:.1f}x less)")
    print(f"  whole evaluate: batched {fast_eval:.2f} s, one call per sample window {slow_eval:.2f} s "
          f"({slow_eval / fast_eval:.2f}x)")


if __name__ == "__main__":
    main()
