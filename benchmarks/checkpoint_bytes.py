"""Bytes a checkpointed co-simulation writes grow linearly with the samples.

``neurodeploy.cosimulate(..., checkpoint=DIR)`` on N = 50 and N = 200 samples of a zoo bundle (emulator,
fixed point; a checkpoint runs sample by sample), each in a fresh folder; this prints the bytes the process
passed to ``write`` during each run (``wchar`` of ``/proc/self/io``: the checkpoint records, ``progress.json``
and nothing else of size) and their ratio. Linear: about 4.0; the format before appended nothing and
rewrote every sample's arrays after each one (quadratic: about 16, 6.3 GB for 200 samples of the demo).

    python benchmarks/checkpoint_bytes.py [--model tiny_hybrid] [--small 50] [--large 200]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def written_bytes() -> int:
    return int(next(line for line in Path("/proc/self/io").read_text().splitlines()
                    if line.startswith("wchar")).split()[1])


def checkpointed(bundle, samples: int, folder: Path) -> int:
    import neurodeploy as nd

    shape = (samples, bundle.manifest.num_steps, *bundle.manifest.spiking.input_shape)
    x = (np.random.default_rng(0).random(shape) < 0.2).astype(np.float64)
    before = written_bytes()
    nd.cosimulate(bundle, x, mode="fixed", backend="emulator", checkpoint=folder)
    return written_bytes() - before


def main() -> None:
    import neurodeploy as nd

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny_hybrid")
    parser.add_argument("--small", type=int, default=50)
    parser.add_argument("--large", type=int, default=200)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    bundle = nd.compile(args.model, tmp / "b", samples=2)
    small = checkpointed(bundle, args.small, tmp / "small")
    large = checkpointed(bundle, args.large, tmp / "large")
    print(f"{args.model}: {args.small} samples wrote {small / 1e6:.2f} MB, {args.large} samples {large / 1e6:.2f} MB; "
          f"ratio {large / small:.2f} for {args.large / args.small:.1f}x the samples (linear: "
          f"{args.large / args.small:.1f}, quadratic: {(args.large / args.small) ** 2:.1f})")


if __name__ == "__main__":
    main()
