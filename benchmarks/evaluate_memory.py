"""Peak memory of an emulator evaluation stays flat as the number of samples grows.

``neurodeploy.evaluate`` runs a zoo bundle (fixed point, emulator) on N = 200 and N = 2000 generated
samples, each in a fresh subprocess, and this prints each run's peak resident memory (``ru_maxrss``) and
their ratio. Target: 2000-sample peak <= 1.10 x the 200-sample peak. Evaluation runs in chunks (default
256 samples) and keeps only predictions between them, and the co-simulation stores binary spikes as uint8
(8x less than float64), so one chunk's spikes are all that is alive. The data set is held as uint8 so that
the input array itself (N x T x n, the caller's) does not dominate the figure.

    python benchmarks/evaluate_memory.py [--model liquidspikeformer] [--small 200] [--large 2000]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def child(bundle_path: str, samples: int) -> None:
    import neurodeploy as nd

    bundle = nd.load(bundle_path)
    shape = (samples, bundle.manifest.num_steps, *bundle.manifest.spiking.input_shape)
    x = (np.random.default_rng(0).random(shape, dtype=np.float32) < 0.2).astype(np.uint8)
    labels = np.zeros(samples, dtype=np.int64)
    result = nd.evaluate(bundle, x, labels, backend="emulator", mode="fixed", progress=False)
    spikes = nd.cosimulate(bundle, x[:1].astype(np.float64), backend="emulator", mode="fixed").spikes
    print(json.dumps({"samples": samples, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "accuracy": result.accuracy, "data_mib": x.nbytes / 2 ** 20,
                      "spike_bytes_per_sample": int(sum(s.nbytes for s in spikes.values())),
                      "spike_dtypes": sorted({str(s.dtype) for s in spikes.values()})}))


def measure(bundle_path: str, samples: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", bundle_path, str(samples)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="liquidspikeformer")
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=2000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    import neurodeploy as nd

    with tempfile.TemporaryDirectory() as tmp:
        bundle = nd.compile(args.model, Path(tmp) / "bundle", samples=2)
        small, large = measure(str(bundle.path), args.small), measure(str(bundle.path), args.large)
    for run in (small, large):
        print(f"{run['samples']:>5} samples: peak RSS {run['peak_rss_mib']:,.0f} MiB (data {run['data_mib']:.1f} MiB, "
              f"spikes {run['spike_bytes_per_sample']:,} B per sample as {', '.join(run['spike_dtypes'])})")
    ratio = large["peak_rss_mib"] / small["peak_rss_mib"]
    print(f"peak memory {args.large} / {args.small} samples: {ratio:.3f} (target <= 1.10) "
          f"{'PASS' if ratio <= 1.10 else 'FAIL'}")


if __name__ == "__main__":
    main()
