"""Layer-by-layer parity: float reference (PyTorch) vs the float and the fixed-point run of a back-end
(Lava ``floating_pt`` / ``fixed_pt``, or the emulator's float and bit-exact fixed models), on one
sample or a batch, with the accuracy of every stage where labels are given.

For every population, in network order, the spike mismatches of each Lava run against the float
reference and the first aligned step where they differ; the first population that diverges is named,
so a user sees where quantization (or a mapping) starts to change the network's behaviour.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from neurodeploy.exporters import load_spiking
from neurodeploy.runtime.runners import run_spikes
from neurodeploy.spiking.quantize import dequantized, quantize_for
from neurodeploy.spiking.float_simulation import simulate_batch


@dataclass
class LayerParity:
    name: str
    reference_spikes: int | None
    mismatches: dict[str, int | None]  # "<backend>_float" / "<backend>_fixed" -> spike mismatches vs the reference
    first_step: dict[str, int | None]  # first aligned step with a mismatch
    module: str = ""  # the user's module it came from (a bundle's), e.g. "lif1 (Leaky)"; "" for a graph file


@dataclass
class ParityResult:
    layers: list[LayerParity]
    first_divergent: dict[str, str | None]  # run -> first population with any mismatch
    quantization: list[dict] | None
    accuracy: dict[str, float] | None = None  # with labels: "reference" and each run -> fraction correct

    def as_dict(self) -> dict:
        return asdict(self)

    def named(self, module_paths: dict[str, str]) -> ParityResult:
        """The same result with each population's module of the user's model (a bundle's ``module_paths``),
        in the table and in ``first_divergent``."""
        for layer in self.layers:
            layer.module = module_paths.get(layer.name, "")
        self.first_divergent = {k: v and module_paths.get(v, v) for k, v in self.first_divergent.items()}
        return self


def _first_step(a: np.ndarray, b: np.ndarray) -> int | None:
    """The first step (axis 1 of (B, T, ...)) where any sample differs."""
    bad = np.flatnonzero((a != b).reshape(a.shape[0], a.shape[1], -1).any(axis=(0, 2)))
    return int(bad[0]) if len(bad) else None


def _accuracy(plan, runs: dict[str, dict[str, np.ndarray]], labels: np.ndarray, dense=None) -> dict[str, float]:
    """Per run, the fraction of samples classified as labelled: for a spiking graph, the first Output
    population that fired most (summed over time); with ``dense`` (a hybrid bundle's GPU part, cut spikes
    -> model output), the whole model's prediction with that run's spikes crossing the cut (as evaluate
    predicts: :func:`neurodeploy.analysis.evaluate.predictions`)."""
    from neurodeploy.analysis.evaluate import predictions

    out = next(iter(plan.outputs.values()))

    def predicted(spikes: np.ndarray) -> np.ndarray:
        if dense is None:
            return spikes.sum(axis=1).reshape(len(labels), -1).argmax(-1)
        return predictions(dense(spikes), spiking_only=False)
    return {key: float(np.mean(predicted(r[out]) == labels)) for key, r in runs.items() if out in r}


def compare_layers(source: str | Path, x: np.ndarray, dt: float | None = None, backend: str = "lava",
                   profile: str = "loihi2", reading: dict | None = None, quantizer: dict | None = None,
                   labels: np.ndarray | None = None, dense=None) -> ParityResult:
    """Run ``x`` (T, *input_shape), or a batch (B, T, *input_shape), through the reference and ``backend`` in
    float and fixed mode (in the integers of the neuromorphic ``profile``, with the quantizer's options
    ``quantizer``: a bundle's, or precision ``auto``); compare per layer, stage by stage as hls4ml's trace:
    ``"<backend>_float"``, then ``"<backend>_float_quantized_weights"`` (the float model with only its
    weights on the fixed-point grid), then ``"<backend>_fixed"``; where the options are not plain 8-bit
    weights, ``"<backend>_fixed_single"`` is the fixed run without them (single precision, no calibration):
    the per-layer disagreement before and after. With ``labels`` (B,), the accuracy of every stage (of the
    whole model where ``dense`` maps the cut's spikes to the model output: a hybrid bundle).
    ``reading`` is how the file is read (``discretisation``, ``fixes``)."""
    plan = load_spiking(source, dt, **(reading or {}))
    x = np.asarray(x, dtype=np.float64)
    batch = x if x.ndim == len(plan.input_shape) + 2 or (x.ndim == 3 and x.shape[2:] == (plan.n_in,)) else x[None]
    reference = simulate_batch(plan, batch)[0]
    runs: dict[str, dict[str, np.ndarray]] = {}
    keys = [f"{backend}_float", f"{backend}_fixed"]
    report = None
    if all(p.model in ("lif", "li") for p in plan.neurons):
        runs[keys[0]] = run_spikes(backend, plan, batch, "float")
    fixed_plans = {keys[1]: plan}
    if not plan.is_quantized:
        q = quantize_for(plan, profile, **(quantizer or {}))
        fixed_plans[keys[1]], report = q.plan, q.as_dict()
        if keys[0] in runs:
            keys.insert(1, f"{backend}_float_quantized_weights")
            runs[keys[1]] = run_spikes(backend, dequantized(plan, q), batch, "float")
        if q.precision != "single" or q.peaks is not None:
            keys.append(f"{backend}_fixed_single")
            fixed_plans[keys[-1]] = quantize_for(plan, profile, precision="single").plan
    for key, fixed_plan in fixed_plans.items():
        runs[key] = run_spikes(backend, fixed_plan, batch, "fixed")
    layers, first = [], dict.fromkeys(keys)
    for pop in plan.neurons:
        ref = reference.get(pop.name)
        mism, step = {}, {}
        for key in keys:
            got = runs.get(key, {}).get(pop.name)
            if ref is None or got is None or (pop.model == "li" and "_fixed" in key):
                mism[key] = step[key] = None  # a fixed-point voltage is in Loihi's integer units
                continue
            if pop.model == "li":  # a voltage readout: equal to float rounding
                got = np.where(np.isclose(got, ref, rtol=1e-9, atol=1e-12), ref, got)
            mism[key] = int(np.sum(got != ref))
            step[key] = _first_step(got, ref)
            if mism[key] and first[key] is None:
                first[key] = pop.name
        layers.append(LayerParity(pop.name, None if ref is None else int(np.sum(ref != 0)), mism, step))
    accuracy = None if labels is None else \
        _accuracy(plan, {"reference": reference, **runs}, np.asarray(labels), dense)
    return ParityResult(layers, first, report, accuracy)


def print_parity(result: ParityResult, console: Console | None = None) -> None:
    console = console or Console()
    keys = list(result.first_divergent)
    table = Table(title="layer-by-layer parity against the float64 reference (spike mismatches, first step)")
    for col in ("population", "reference spikes", *keys):
        table.add_column(col.replace("_", " "), justify="right")  # words, so that narrow terminals wrap them
    for layer in result.layers:
        cells = [f"{layer.mismatches[k]} (t={layer.first_step[k]})" if layer.mismatches[k] else
                 ("n/a" if layer.mismatches[k] is None else "0") for k in keys]
        table.add_row(layer.module or layer.name, str(layer.reference_spikes), *cells)
    console.print(table)
    for run, name in result.first_divergent.items():
        console.print(f"{run}: " + (f"first diverges at population {name}" if name else "no divergence"))
    if result.accuracy:
        console.print("accuracy per stage: " + ", ".join(f"{k.replace('_', ' ')} {v:.2%}" for k, v in result.accuracy.items()))
