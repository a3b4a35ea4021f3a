"""Compile time of a wide spiking net grows as N^2 (the weights), not N^3.

A NIR graph of three 4096-wide ``Affine -> LIF`` layers compiled by ``neurodeploy.compile`` twice in one
run: as today (each Affine taken as its own matrix, ``nir_chains._dense_product``; the NIR file written
uncompressed) and as before (every chain composed by pushing a 4096 x 4096 identity through it in float64,
``W = f(I) - f(0)``; the NIR file gzip-compressed, ``nir.write``'s default). Prints both wall times, their
ratio and that the two bundles hold identical integers.

    python benchmarks/compile_wide.py [--width 4096] [--layers 3]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import nir
import numpy as np


def wide_graph(width: int, layers: int) -> nir.NIRGraph:
    rng = np.random.default_rng(0)
    nodes = {"input": nir.Input(input_type={"input": np.array([width])})}
    edges, previous = [], "input"
    for i in range(layers):
        nodes[f"fc{i}"] = nir.Affine(weight=rng.normal(0, 1 / np.sqrt(width), (width, width)), bias=np.zeros(width))
        nodes[f"lif{i}"] = nir.LIF(tau=np.full(width, 0.01), r=np.full(width, 10.0), v_leak=np.zeros(width),
                                   v_threshold=np.ones(width))
        edges += [(previous, f"fc{i}"), (f"fc{i}", f"lif{i}")]
        previous = f"lif{i}"
    nodes["output"] = nir.Output(output_type={"output": np.array([width])})
    edges.append((previous, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-3})


@contextmanager
def as_before():
    """The identity composition and gzip-compressed NIR files of the compile before this change."""
    from neurodeploy.compiler import pipeline
    from neurodeploy.spiking import nir_chains

    product, write = nir_chains._dense_product, pipeline.write_nir
    nir_chains._dense_product = lambda chain, in_shape: None
    pipeline.write_nir = lambda graph, path, compression="gzip": write(graph, path, compression)
    try:
        yield
    finally:
        nir_chains._dense_product, pipeline.write_nir = product, write


def timed_compile(graph: nir.NIRGraph, out: Path) -> tuple[float, object]:
    import neurodeploy as nd

    t0 = time.perf_counter()
    bundle = nd.compile(graph, out)
    return time.perf_counter() - t0, bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--layers", type=int, default=3)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    graph = wide_graph(args.width, args.layers)
    with tempfile.TemporaryDirectory() as tmp:
        now_s, now = timed_compile(graph, Path(tmp) / "now")
        with as_before():
            before_s, before = timed_compile(graph, Path(tmp) / "before")
        from neurodeploy.runtime.bundle_plan import load_plan

        fixed_now, fixed_before = load_plan(now, "fixed").fixed, load_plan(before, "fixed").fixed
        same = all(np.array_equal(fixed_now[k].weights, fixed_before[k].weights)
                   for k in fixed_now if hasattr(fixed_now[k], "weights"))
    print(f"{args.layers} x {args.width}-wide Affine -> LIF, one thread: compile {now_s:.1f} s now, "
          f"{before_s:.1f} s as before: {before_s / now_s:.1f}x faster; identical integers: {same}")


if __name__ == "__main__":
    main()
