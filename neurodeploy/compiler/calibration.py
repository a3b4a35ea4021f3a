"""The fixed-point pass of a compile: quantization (calibrated where inputs are given) and the resource map.

Spike disagreement of fixed-point plans with the float model, per population, on the emulator.

For inputs x (B, T, *input_shape), per population: the spike entries (sample, step, neuron) where a
fixed-point run differs from the float run, as a fraction of the float run's spikes::

    disagreement = sum |s_fixed - s_float| / sum s_float

The quantizer's report uses it on calibration inputs to show each population before (8-bit weights,
the worst-case scale) and after the chosen options; :func:`calibrated` uses it to choose, population by
population in network order, the bound of its scale (the calibrated current or the worst case) that
disagrees least.
"""
from __future__ import annotations

import numpy as np

from neurodeploy.errors import QuantizationError
from neurodeploy.runtime.runners import run_spikes
from neurodeploy.spiking.plan import SpikingPlan
from neurodeploy.spiking.quantize import Quantized, calibration_peaks, quantize_for
from neurodeploy.spiking.resources import map_resources


def disagreement(plan: SpikingPlan, reference: dict[str, np.ndarray], runs: dict[str, dict[str, np.ndarray]]
                 ) -> dict[str, dict[str, float]]:
    """{population: {run: its disagreement with ``reference``}} for the LIF populations of ``plan``."""
    return {p.name: {key: float(np.sum(run[p.name] != reference[p.name]) / max(int(np.sum(reference[p.name])), 1))
                     for key, run in runs.items()}
            for p in plan.neurons if p.model == "lif"}


def calibrated(plan: SpikingPlan, profile: str, precision: str, x: np.ndarray
               ) -> tuple[Quantized, dict[str, dict[str, float]]]:
    """The quantization of ``plan`` on ``profile`` at ``precision`` whose populations each take the scale
    bound that makes their spikes on x (B, T, *input_shape) disagree least with the float model's: the
    calibrated current (:func:`~neurodeploy.spiking.quantize.calibration_peaks`, which usually allows a
    finer grid) or the worst case, chosen in network order with the populations before it fixed (a tie:
    calibrated); and per population its disagreement on x ``before`` (8-bit weights, the worst-case
    scale) and ``after``."""
    x = np.asarray(x, dtype=np.float64)
    peaks, reference, chosen = calibration_peaks(plan, x), run_spikes("emulator", plan, x, "float"), {}
    for population in (p for p in plan.neurons if p.model == "lif"):
        options = {}
        for use in (True, False):
            trial = {**chosen, population.name: peaks[population.name]} if use else dict(chosen)
            q = quantize_for(plan, profile, precision=precision, peaks=trial or None)
            options[use] = np.sum(run_spikes("emulator", q.plan, x, "fixed")[population.name] != reference[population.name])
        if options[True] <= options[False]:
            chosen[population.name] = peaks[population.name]
    q = quantize_for(plan, profile, precision=precision, peaks=chosen or None)
    plain = quantize_for(plan, profile, precision="single").plan
    runs = {"before": run_spikes("emulator", plain, x, "fixed"), "after": run_spikes("emulator", q.plan, x, "fixed")}
    return q, disagreement(plan, reference, runs)


def calibration_inputs(plan: SpikingPlan, calibration, inputs) -> np.ndarray | None:
    """Calibration inputs of the spiking part: ``True`` = the example ``inputs`` (a tensor), else an array
    (B, T, ...) in the bundle's layout; feedback channels (inputs the runtime adds) are zero."""
    if calibration is None or calibration is False:
        return None
    x = inputs.numpy() if calibration is True else np.asarray(calibration)
    x = x.reshape(*x.shape[:2], -1).astype(np.float64)
    if x.shape[2] < plan.n_in:
        x = np.concatenate([x, np.zeros((*x.shape[:2], plan.n_in - x.shape[2]))], axis=2)
    return x.reshape(*x.shape[:2], *plan.input_shape)


def fixed_point(plan: SpikingPlan, profile: str, precision: str = "auto", calibration: np.ndarray | None = None,
                max_chips: int | None = None) -> dict:
    """The quantization report, the quantizer's options and the resource map of the spiking part on
    ``profile``, for the manifest (the resources of the quantized plan: precision ``double`` stores more
    synapses). A plan with no fixed-point form keeps its float use: the reason is recorded, fixed runs refuse it.
    A plan that carries its own integers (netx) is only mapped. ``max_chips``: the chip budget (a named error past it)."""
    out = {"profile": profile, "resources": map_resources(plan, profile, max_chips).as_dict()}
    if plan.is_quantized:
        return out
    measured = {}  # per population, on the calibration inputs: spikes unlike float before and after
    try:
        if calibration is not None and all(p.model in ("lif", "li") for p in plan.neurons):
            q, measured = calibrated(plan, profile, precision, calibration)
        else:
            q = quantize_for(plan, profile, precision=precision, calibration=calibration)
    except QuantizationError as exc:
        out["quantization_error"] = str(exc)
        return out
    report = [{**population, "calibration_disagreement": measured.get(population["name"])} for population in q.as_dict()]
    out.update(quantization=report, quantizer=q.options,
               resources=map_resources(q.plan, profile, max_chips).as_dict())
    return out
