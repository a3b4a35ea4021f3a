"""Co-simulation: the spiking part in Lava, its spikes through the adapter into ONNX Runtime.

Schedule ``end``: for each sample, Lava runs all T steps (plus the synaptic delay, compensated), then
the dense part (adapter included) runs once on the spikes at the cut. State is reset between samples.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import numpy as np
from rich.console import Console
from rich.progress import track

from exporters.nir_import import read_plan
from exporters.onnx_export import make_session
from neurodeploy.bundle import Bundle
from neurodeploy.lava_runner import LavaRunner
from neurodeploy.metrics import LayerSops, synaptic_ops


class InputShapeError(ValueError):
    """The input array does not have the shape the bundle expects."""


@dataclass
class Agreement:
    """Co-simulation vs the PyTorch reference stored in the bundle."""

    spike_mismatches: int  # over every population, every step, every sample
    spike_mismatches_per_layer: dict[str, int]
    max_abs_err: float  # of the final output y
    top1_match: float  # fraction of samples with the same argmax


@dataclass
class CosimResult:
    spikes: dict[str, np.ndarray]  # population -> (B, T, n), aligned to the input
    outputs: dict[str, np.ndarray]  # NIR Output node -> (B, T, n)
    y: np.ndarray  # (B, ...) final model output
    wall_s: dict[str, float]
    providers: list[str]
    sops: list[LayerSops]
    agreement: Agreement | None
    mode: str
    backend: str = "lava"
    schedule: str = "end"
    notes: list[str] = field(default_factory=list)


def normalize_inputs(x: np.ndarray, bundle: Bundle) -> np.ndarray:
    """(T, N) or (B, T, N) -> (B, T, N) float64."""
    m = bundle.manifest
    x = np.asarray(x)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[2] != m.spiking.n_in or x.shape[1] % m.adapter.window:
        raise InputShapeError(
            f"input of shape {x.shape} does not fit bundle '{m.name}': expected time-major (T, {m.spiking.n_in}) "
            f"or (B, T, {m.spiking.n_in}) with T a multiple of the adapter window {m.adapter.window} "
            f"(the bundle was compiled with T={m.num_steps})")
    if not np.all(np.isfinite(x)):
        raise InputShapeError("input contains NaN or inf values")
    return x.astype(np.float64)


def _agreement(spikes: dict[str, np.ndarray], y: np.ndarray, ref: dict[str, np.ndarray]) -> Agreement:
    per_layer = {name: int(np.sum(s != ref[f"spikes/{name}"])) for name, s in spikes.items()}
    ref_y = ref["y"]
    return Agreement(
        spike_mismatches=sum(per_layer.values()), spike_mismatches_per_layer=per_layer,
        max_abs_err=float(np.max(np.abs(y - ref_y))),
        top1_match=float(np.mean(np.argmax(y, axis=-1) == np.argmax(ref_y, axis=-1))),
    )


def run_cosim(bundle: Bundle, inputs: np.ndarray | None = None, mode: str = "float",
              backend: str = "lava", progress: bool = True) -> CosimResult:
    """Co-simulate ``inputs`` (default: the bundle's reference inputs) and compare with the reference."""
    if backend != "lava":
        raise ValueError(f"backend {backend!r} is not available yet; use 'lava'")
    use_reference = inputs is None
    x = normalize_inputs(bundle.reference_inputs() if use_reference else inputs, bundle)
    plan = read_plan(bundle.spiking_path)
    session = make_session(bundle.dense_path)
    m = bundle.manifest
    batch, steps = x.shape[:2]
    spikes = {n.name: np.zeros((batch, steps, n.n)) for n in plan.neurons}
    ys, wall = [], {"lava": 0.0, "dense": 0.0}
    t_start = time.perf_counter()
    show = progress and batch > 1 and sys.stderr.isatty()
    with LavaRunner(plan, steps, mode=mode) as runner:
        for b in track(range(batch), description="co-simulating", disable=not show,
                       console=Console(stderr=True)):
            sample = runner.run_sample(x[b])
            wall["lava"] += sample.wall_s
            for name, s in sample.spikes.items():
                spikes[name][b] = s
            cut = spikes[plan.outputs[m.spiking.cut_output]][b: b + 1].astype(np.float32)
            t0 = time.perf_counter()
            ys.append(session.run(None, {m.dense.input_name: cut})[0][0])
            wall["dense"] += time.perf_counter() - t0
    wall["total"] = time.perf_counter() - t_start
    y = np.stack(ys)
    agreement = None
    notes = []
    if use_reference or np.array_equal(x, bundle.reference_inputs().astype(np.float64)):
        agreement = _agreement(spikes, y, bundle.reference_outputs())
    else:
        notes.append("agreement not computed: the inputs are not the bundle's reference inputs")
    return CosimResult(spikes=spikes, outputs={o: spikes[p] for o, p in plan.outputs.items()}, y=y,
                       wall_s=wall, providers=list(session.get_providers()),
                       sops=synaptic_ops(plan, x, spikes), agreement=agreement, mode=mode, notes=notes)
