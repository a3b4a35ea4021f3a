"""ONNX Runtime vs PyTorch eager latency for the dense back-ends, measured in one run.

Batch 1, L = 64 tokens (T = 256 spike steps, window K = 4), d_model 128, 2 layers, for the transformer
(causal attention) and Mamba back-ends, each in its whole-sequence form. The two runtimes alternate
(one call each, repeated) so that machine noise hits both alike; the ratio of medians is printed.
Target (issue 4): ORT is not slower than eager for either (ratio eager / ORT >= 1).

    .venv/bin/python benchmarks/ort_vs_eager.py [--repeats 50]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from neurodeploy.exporters import INPUT_NAME, export_backend
from neurodeploy.exporters.onnx_session import make_session
from neurodeploy.models.backends import StreamingBackend

N_IN, N_OUT, K, TOKENS, D_MODEL = 128, 10, 4, 64, 128


def measure(blocks: list[str], repeats: int) -> dict:
    torch.manual_seed(0)
    backend = StreamingBackend(N_IN, N_OUT, K, blocks, d_model=D_MODEL, heads=4).eval()
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(1, TOKENS * K, N_IN, generator=g) < 0.2).float()
    examples = [(torch.rand(b, t, N_IN, generator=g) < 0.2).float() for b, t in ((2, 32), (1, TOKENS * K))]
    with tempfile.TemporaryDirectory() as tmp:
        exported = export_backend(backend, Path(tmp), examples)
        session = make_session(exported.sequence_path)
        feed = {INPUT_NAME: x.numpy()}
        ort_s, eager_s = [], []
        with torch.no_grad():
            for _ in range(5):  # warm-up
                session.run(None, feed)
                backend(x)
            for _ in range(repeats):
                t0 = time.perf_counter()
                session.run(None, feed)
                t1 = time.perf_counter()
                backend(x)
                t2 = time.perf_counter()
                ort_s.append(t1 - t0)
                eager_s.append(t2 - t1)
        return {"blocks": "+".join(blocks), "form": exported.sequence_form, "providers": session.get_providers(),
                "ort_ms": 1e3 * statistics.median(ort_s), "eager_ms": 1e3 * statistics.median(eager_s),
                "parity": max(c.max_abs_err for c in exported.sequence_parity)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(f"batch 1, L={TOKENS} tokens, d_model {D_MODEL}, 2 layers, torch threads {torch.get_num_threads()}")
    for blocks in (["attention", "attention"], ["mamba", "mamba"]):
        r = measure(blocks, args.repeats)
        print(f"{r['blocks']:<20} ORT ({r['form']}, {r['providers'][0]}) {r['ort_ms']:.3f} ms   eager {r['eager_ms']:.3f} ms   "
              f"eager/ORT = {r['eager_ms'] / r['ort_ms']:.2f}   (parity {r['parity']:.1e})")


if __name__ == "__main__":
    main()
