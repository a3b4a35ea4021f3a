"""Spike disagreement of fixed-point plans with the float model, per population, on the emulator.

For inputs x (B, T, *input_shape), per population: the spike entries (sample, step, neuron) where a
fixed-point run differs from the float run, as a fraction of the float run's spikes::

    disagreement = sum |s_fixed - s_float| / sum s_float

The quantizer's report uses it on calibration inputs to show each population before (8-bit weights,
the worst-case scale) and after the chosen options.
"""
from __future__ import annotations

import numpy as np

from neurodeploy.runtime.emulator import EmulatorRunner
from neurodeploy.spiking.plan import SpikingPlan


def disagreement(float_plan: SpikingPlan, fixed_plans: dict[str, SpikingPlan], x: np.ndarray) -> dict[str, dict[str, float]]:
    """{population: {name of a fixed plan: its disagreement with the float run}} for LIF populations."""
    x = np.asarray(x, dtype=np.float64)
    with EmulatorRunner(float_plan, x.shape[1], "float") as runner:
        reference = runner.run_many(x)[0]
    runs = {}
    for key, plan in fixed_plans.items():
        with EmulatorRunner(plan, x.shape[1], "fixed") as runner:
            runs[key] = runner.run_many(x)[0]
    return {p.name: {key: float(np.sum(run[p.name] != reference[p.name]) / max(int(np.sum(reference[p.name])), 1))
                     for key, run in runs.items()}
            for p in float_plan.neurons if p.model == "lif"}
