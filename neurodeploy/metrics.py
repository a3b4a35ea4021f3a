"""Counts from a run: spikes per population and synaptic operations per synaptic layer.

Synaptic operations follow NeuroBench's ``SynapticOperations`` (REFERENCE.md section 5), per sample
summed over time steps:

    dense_l     = T * n_in_l * n_out_l                                  (every input x weight pair)
    effective_l = sum_t sum_i [s_l[t, i] != 0] * nnz(W_l[:, i])         (nonzero input x weight pairs)

For binary spikes each effective operation is an accumulate (AC).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurodeploy.spiking_plan import SpikingPlan


@dataclass
class LayerSops:
    layer: str
    dense: float  # per sample
    effective: float  # per sample


def synaptic_ops(plan: SpikingPlan, inputs: np.ndarray, spikes: dict[str, np.ndarray]) -> list[LayerSops]:
    """SOPs per synaptic layer, averaged over samples. inputs (B, T, n_in); spikes[pop] (B, T, n)."""
    result = []
    for syn in plan.synapses:
        s_in = inputs if syn.source == "input" else spikes[syn.source]
        active = (s_in != 0).astype(np.float64)  # (B, T, n_in)
        fan_out = np.count_nonzero(syn.weights, axis=0).astype(np.float64)  # (n_in,)
        batch, steps = active.shape[:2]
        effective = float((active @ fan_out).sum() / batch)
        dense = float(steps * syn.weights.shape[0] * syn.weights.shape[1])
        result.append(LayerSops(syn.name, dense, effective))
    return result


def spike_rates(spikes: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean spikes per neuron per step, per population."""
    return {name: float(np.mean(s != 0)) for name, s in spikes.items()}


def sops_summary(sops: list[LayerSops]) -> dict:
    """Totals and per-layer figures, as they appear in the JSON reports."""
    effective = sum(s.effective for s in sops)
    return {"total": effective, "dense": sum(s.dense for s in sops), "effective": effective,
            "per_layer": {s.layer: {"dense": s.dense, "effective": s.effective} for s in sops},
            "unit": "synaptic operations per sample (NeuroBench)"}
