"""A bundle's spiking part as the plan a run executes: read from its file with the bundle's reading options,
fine-tuned weights applied (:mod:`neurodeploy.qat`), and in fixed mode on the integer grid it was compiled
on (the profile and quantizer options stored in the bundle)."""
from __future__ import annotations

import numpy as np

from neurodeploy.bundle import Bundle
from neurodeploy.errors import QuantizationError
from neurodeploy.exporters import load_spiking
from neurodeploy.spiking.plan import SpikingPlan


def load_plan(bundle: Bundle, mode: str) -> SpikingPlan:
    """The bundle's spiking plan; for fixed mode in the integers of the profile it was compiled for."""
    m = bundle.manifest
    bundle.require_spiking("a run of its spiking part")
    plan = load_spiking(bundle.spiking_path, m.spiking.dt_s, **m.spiking.reading)
    if m.spiking.weights_file:  # fine-tuned on the bundle's grid (neurodeploy.qat)
        with np.load(bundle.path / m.spiking.weights_file) as trained:
            for syn in plan.synapses:
                syn.weights = trained[syn.name]
    if mode == "fixed" and m.spiking.quantization_error:
        reasons = [line.strip().removeprefix("- ") for line in m.spiking.quantization_error.splitlines()[1:]]
        raise QuantizationError(reasons or [m.spiking.quantization_error],
                                f"bundle '{m.name}' has no fixed-point form (it runs in float mode)")
    if mode == "fixed" and not plan.is_quantized:
        from neurodeploy.spiking.quantize import quantize_for

        plan = quantize_for(plan, m.spiking.profile, **m.spiking.quantizer).plan
    if m.spiking.cut_reads == "v":  # the dense part reads the membrane: the cut population sends it
        plan.layer(plan.outputs[m.spiking.cut_output]).sends_v = True
    return plan
