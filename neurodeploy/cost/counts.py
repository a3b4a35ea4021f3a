"""Counts from a run, as NeuroBench 2.3.0 counts them: synaptic operations, activation sparsity, membrane updates.

Synaptic operations follow NeuroBench's ``SynapticOperations`` (Effective: nonzero input x nonzero weight
pairs; Dense: every input x weight pair; reference figure: the GSC SNN 20-256-256-256-35 at 200 steps has
29,030,400 Dense SOPs), per sample summed over time steps::

    dense_l     = T * (pre x post pairs of layer l)                      (every input x weight pair)
    effective_l = sum_t sum_i [s_l[t, i] != 0] * fan_out_l(i)            (nonzero input x weight pairs)

``fan_out_l(i)`` counts the nonzero weights leaving input i (for a conv, every kernel tap at every
output position it reaches). NeuroBench excludes biases (its layer copies have their bias zeroed); Loihi
runs a bias here as synapses from an always-on line, which the chip does execute: those operations are
counted per layer with ``bias=True``, priced in the energy model and reported beside the NeuroBench
figure, never inside it; so are the second synapse layers of the quantizer's precision ``double``
(``refines``). For binary spikes each effective operation is an accumulate (AC).

Activation sparsity is NeuroBench's ``ActivationSparsity``: the fraction of zero outputs over every
spiking population, time step and sample (``1 - sum nonzero / sum numel``, weighted by neurons, not a
mean over layers). Membrane updates are NeuroBench's ``MembraneUpdates``: per sample, every neuron at the
first step, then each neuron-step whose membrane potential changed (``v[t] != v[t-1]``).
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
    bias: bool = False  # an always-on bias line: not a NeuroBench synaptic operation
    refines: bool = False  # the second layer of the quantizer's precision "double": the chip's, not the model's


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
        spikes_per_input = np.count_nonzero(s_in.reshape(batch * steps, -1), axis=0)  # over samples and steps
        effective = float(spikes_per_input.astype(np.float64) @ fan_out(syn) / batch)
        result.append(LayerSops(syn.name, float(steps * fan_out(syn, nonzero=False).sum()), effective,
                                bias=syn.source == "bias", refines=syn.refines is not None))
    return result


def neurobench_sops(sops: list[LayerSops]) -> float:
    """Effective synaptic operations per sample as NeuroBench counts them (bias lines excluded)."""
    return sum(s.effective for s in sops if not (s.bias or s.refines))


def activation_sparsity(spikes: dict[str, np.ndarray]) -> float:
    """NeuroBench's activation sparsity: zero outputs / all outputs, over every population, step and sample."""
    nonzero = sum(int(np.count_nonzero(s)) for s in spikes.values())
    total = sum(int(np.size(s)) for s in spikes.values())
    return 1.0 - nonzero / total if total else 0.0


def membrane_updates(voltages: dict[str, np.ndarray]) -> float:
    """NeuroBench's membrane updates per sample from voltage traces ``v[pop]`` (B, T, *shape): every neuron
    at the first step, then every neuron-step whose voltage differs from the step before."""
    total, batch = 0, 1
    for v in voltages.values():
        batch = v.shape[0]
        flat = v.reshape(v.shape[0], v.shape[1], -1)
        total += flat.shape[0] * flat.shape[2] + int(np.count_nonzero(flat[:, 1:] != flat[:, :-1]))
    return total / batch


def spike_rates(spikes: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean spikes per neuron per step, per population."""
    return {name: float(np.mean(s != 0)) for name, s in spikes.items()}


def sops_summary(sops: list[LayerSops]) -> dict:
    """Totals and per-layer figures, as they appear in the JSON reports: the NeuroBench figures without the
    bias lines, which are listed under ``bias`` (the chip runs them; the energy model prices them)."""
    synaptic = [s for s in sops if not (s.bias or s.refines)]
    bias, refining = [s for s in sops if s.bias and not s.refines], [s for s in sops if s.refines]
    effective = neurobench_sops(sops)
    return {"total": effective, "dense": sum(s.dense for s in synaptic), "effective": effective,
            "per_layer": {s.layer: {"dense": s.dense, "effective": s.effective} for s in synaptic},
            "unit": "synaptic operations per sample (NeuroBench SynapticOperations; biases excluded)",
            "bias": {"effective": sum(s.effective for s in bias),
                     "per_layer": {s.layer: s.effective for s in bias},
                     "unit": "operations per sample of the always-on bias lines that carry biases on Loihi"},
            "precision": {"effective": sum(s.effective for s in refining),
                          "per_layer": {s.layer: s.effective for s in refining},
                          "unit": "operations per sample of the second synapse layers of precision 'double' "
                                  "(the chip runs them; not the model's, not NeuroBench's)"}}
