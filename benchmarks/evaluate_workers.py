"""Evaluate throughput on 1 vs 2 workers, on the same bundle and data, in one run.

``neurodeploy.evaluate`` (fixed point, emulator) runs a zoo bundle over N generated test samples in
chunks, first in this process (1 worker), then on a local pool of 2 processes, then, where Ray is
installed, on a local Ray cluster of 2 CPUs; it prints samples per second and the speed-up over one
worker. Each parallel run's first chunk pays a worker's start-up (importing torch, unpacking the bundle),
so the speed-up is printed with and without a warm-up run. On a 2-core machine expect less than 2x:
the emulator and ONNX Runtime already use more than one thread in a single process, the workers share
those cores, and the chunks' outputs travel back through pickling.

    python benchmarks/evaluate_workers.py [--model liquidspikeformer] [--samples 512] [--chunk 64]
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np


def rate(bundle, x, labels, chunk: int, **where) -> tuple[float, float]:
    import neurodeploy as nd

    t0 = time.perf_counter()
    result = nd.evaluate(bundle, x, labels, chunk=chunk, **where)
    return len(x) / (time.perf_counter() - t0), result.accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="liquidspikeformer")
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--chunk", type=int, default=64)
    args = parser.parse_args()
    import neurodeploy as nd
    from neurodeploy.models import zoo

    bundle = nd.compile(args.model, tempfile.mkdtemp() + "/b")
    x, labels = zoo.get(args.model).dataset("test", args.samples)
    x = np.asarray(x, dtype=np.float32)
    one, acc1 = rate(bundle, x, labels, args.chunk)
    runs = {"pool, 2 workers": dict(workers=2)}
    try:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        runs["Ray, 2 CPUs"] = dict(ray="auto")
    except ImportError:
        print("Ray not installed: pip install 'neurodeploy[ray]' to measure it")
    print(f"{args.model}, {args.samples} samples, chunks of {args.chunk}, fixed point on the emulator")
    print(f"  1 worker (this process): {one:8.1f} samples/s  accuracy {acc1:.4f}")
    for name, where in runs.items():
        cold, acc = rate(bundle, x, labels, args.chunk, **where)
        if "workers" in where:  # a pool is started per call: warm = without the start-up of an empty-ish call
            t0 = time.perf_counter()
            nd.evaluate(bundle, x[:2], labels[:2], chunk=1, **where)
            startup_s = time.perf_counter() - t0
            warm = len(x) / max(len(x) / cold - startup_s, 1e-9)
            print(f"  pool start-up (2 spawned processes importing torch): {startup_s:.1f} s")
        else:
            warm, acc = rate(bundle, x, labels, args.chunk, **where)  # Ray's workers stay up
        assert acc == acc1, (acc, acc1)
        print(f"  {name}: {cold:8.1f} samples/s cold, {warm:8.1f} warm; speed-up {cold / one:.2f}x cold, "
              f"{warm / one:.2f}x warm (same accuracy)")
    if "Ray, 2 CPUs" in runs:
        ray.shutdown()


if __name__ == "__main__":
    main()
