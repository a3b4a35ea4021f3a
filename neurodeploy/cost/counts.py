"""Counts from a run: spikes per population and synaptic operations per synaptic layer.

Synaptic operations follow NeuroBench 2.3.0's ``SynapticOperations`` (Effective: nonzero input x weight
pairs; Dense: every pair; Linear, Conv and RNN cells; reference figure: the GSC SNN 20-256-256-256-35 at
200 steps has 29,030,400 Dense SOPs), per sample
summed over time steps:

    dense_l     = T * (pre x post pairs of layer l)                      (every input x weight pair)
    effective_l = sum_t sum_i [s_l[t, i] != 0] * fan_out_l(i)            (nonzero input x weight pairs)

``fan_out_l(i)`` counts the nonzero weights leaving input i (for a conv, every kernel tap at every
output position it reaches). A bias line (an always-on input) counts as active from its start step.
For binary spikes each effective operation is an accumulate (AC).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from neurodeploy.spiking.plan import SpikingPlan, SynapseLayer


@dataclass
class LayerSops:
    layer: str
    dense: float  # per sample
    effective: float  # per sample


def fan_out(syn: SynapseLayer, nonzero: bool = True) -> np.ndarray:
    """Weights leaving each (flattened) input of ``syn``: the nonzero ones, or all of them."""
    mask = (syn.weights != 0).astype(np.float64) if nonzero else np.ones_like(syn.weights, dtype=np.float64)
    if syn.kind == "dense":
        return mask.sum(axis=0)
    x = torch.zeros((1, *syn.in_shape), dtype=torch.float64, requires_grad=True)
    x4 = x[:, :, None, :] if len(syn.in_shape) == 2 else x
    F.conv2d(x4, torch.as_tensor(mask), None, syn.stride, syn.padding, syn.dilation, syn.groups).sum().backward()
    return x.grad.reshape(-1).numpy()


def synaptic_ops(plan: SpikingPlan, inputs: np.ndarray, spikes: dict[str, np.ndarray]) -> list[LayerSops]:
    """SOPs per synaptic layer, averaged over samples. inputs (B, T, *input_shape); spikes[pop] (B, T, *shape)."""
    batch, steps = inputs.shape[:2]
    result = []
    for syn in plan.synapses:
        if syn.source == "bias":
            s_in = np.zeros((batch, steps, 1))
            s_in[:, :] = 1.0
        else:
            s_in = inputs if syn.source == "input" else spikes[syn.source]
        active = (s_in.reshape(batch, steps, -1) != 0).astype(np.float64)
        effective = float((active @ fan_out(syn)).sum() / batch)
        result.append(LayerSops(syn.name, float(steps * fan_out(syn, nonzero=False).sum()), effective))
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
