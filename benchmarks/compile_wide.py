"""Compile time of a wide spiking net grows as N^2 (the weights), not N^3: today's compile beside the old one.

A NIR graph of three 4096-wide ``Affine -> LIF`` layers compiled by ``neurodeploy.compile``, in one run,
by this checkout and by the revision before the compile work (``--against``, default ``7ea153e~1``:
every chain composed by pushing a 4096 x 4096 identity through it in float64, ``W = f(I) - f(0)``;
precision ``auto`` quantizing single and double separately on full copies of the plan; the NIR file
gzip-compressed by ``nir.write``, which copies every array). That revision is installed (``pip install
--no-deps --target``) into a temporary folder and run by this venv's Python. Each compile runs in a process
of its own, imports done before the clock starts, best of ``--repeat``. Prints both times, their ratio
and whether the two bundles hold identical integers.

    python benchmarks/compile_wide.py [--width 4096] [--layers 3] [--against REV] [--repeat 2]
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def wide_graph(width: int, layers: int, gain: float = 1.0):
    """``layers`` x (``Affine -> LIF``), ``width`` wide, random weights of std ``gain / sqrt(width)``."""
    import nir
    import numpy as np

    rng = np.random.default_rng(0)
    nodes, edges, previous = {"input": nir.Input(input_type={"input": np.array([width])})}, [], "input"
    for i in range(layers):
        nodes[f"fc{i}"] = nir.Affine(weight=rng.normal(0, gain / np.sqrt(width), (width, width)), bias=np.zeros(width))
        nodes[f"lif{i}"] = nir.LIF(tau=np.full(width, 0.01), r=np.full(width, 10.0), v_leak=np.zeros(width),
                                   v_threshold=np.ones(width))
        edges += [(previous, f"fc{i}"), (f"fc{i}", f"lif{i}")]
        previous = f"lif{i}"
    nodes["output"] = nir.Output(output_type={"output": np.array([width])})
    edges.append((previous, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-3})


RUN = inspect.getsource(wide_graph) + """
import json, sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
import neurodeploy as nd
import neurodeploy.compiler.pipeline, neurodeploy.spiking.quantize  # imports before the clock starts
width, layers, repeat, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
graph = wide_graph(width, layers)
times = []
for r in range(repeat):
    t0 = time.perf_counter()
    nd.compile(graph, out / f"b{r}")
    times.append(time.perf_counter() - t0)
print(json.dumps({"best_s": min(times), "times_s": times, "file": nd.__file__}))
"""


def install(rev: str, into: Path) -> Path:
    """The package at git revision ``rev``, installed without dependencies into ``into``/site."""
    source = into / "source"
    source.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                    "--no-compile", "--target", str(into / "site"), str(source)], check=True, capture_output=True)
    return into / "site"


def timed(site: Path | None, width: int, layers: int, repeat: int, out: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if site is not None:
        env["PYTHONPATH"] = str(site)  # ahead of this venv's editable install
    out.mkdir()
    done = subprocess.run([sys.executable, "-c", RUN, str(width), str(layers), str(repeat), str(out)], env=env,
                          capture_output=True, text=True, check=True, cwd=out)
    return json.loads(done.stdout.strip().splitlines()[-1])


def same_integers(a: Path, b: Path) -> bool:
    import numpy as np

    from neurodeploy.runtime.bundle_plan import load_plan
    import neurodeploy as nd

    fixed_a, fixed_b = load_plan(nd.load(a), "fixed").fixed, load_plan(nd.load(b), "fixed").fixed
    return fixed_a.keys() == fixed_b.keys() and all(
        np.array_equal(fixed_a[k].weights, fixed_b[k].weights) for k in fixed_a if hasattr(fixed_a[k], "weights"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--against", default="7ea153e~1", help="the git revision to compare with")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old_site = install(args.against, Path(tmp) / "old")
        now = timed(None, args.width, args.layers, args.repeat, Path(tmp) / "now")
        old = timed(old_site, args.width, args.layers, args.repeat, Path(tmp) / "then")
        assert now["file"].startswith(str(ROOT)) and old["file"].startswith(str(old_site)), (now, old)
        same = same_integers(Path(tmp) / "now" / "b0", Path(tmp) / "then" / "b0")
    print(f"{args.layers} x {args.width}-wide Affine -> LIF, one thread, best of {args.repeat}: compile "
          f"{now['best_s']:.1f} s now, {old['best_s']:.1f} s at {args.against}: {old['best_s'] / now['best_s']:.1f}x "
          f"faster; identical integers: {same}")


if __name__ == "__main__":
    main()
