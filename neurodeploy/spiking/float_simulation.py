"""A float64 PyTorch simulation of a SpikingPlan's equations in aligned time (no Lava, no delays).

An independent float model for the Lava runs: at aligned step t every population integrates the
feed-forward spikes of step t, the recurrent spikes of step t-1 and its bias lines::

    a[t] = sum_ff W s_src[t] + sum_rec W s_src[t-1] + b
    u[t] = u[t-1] (1 - du) + a[t];  v[t] = v[t-1] (1 - dv) + u[t] + bias;  s[t] = v[t] > vth;  then the reset

(``zero``: ``v[t] *= 1 - s[t]``; the other modes as :mod:`neurodeploy.spiking.resets` states them).

Sigma-delta populations (netx SDNN) have no float model here and are skipped.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from neurodeploy.spiking.plan import SpikingPlan, SynapseLayer
from neurodeploy.spiking.resets import after_spike, fired_before, subtract_delayed, threshold


def apply_synapse(syn: SynapseLayer, w: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Synaptic input of a batch: s (B, *in_shape) -> (B, *out_shape), with ``w`` in the plan's layout.

    Dense: ``a = W flatten(s)``; conv: PyTorch's cross-correlation (1-D shapes (C, L) as (C, 1, L)).
    """
    batch = s.shape[0]
    if syn.kind == "dense":
        return (s.reshape(batch, -1) @ w.T).reshape(batch, *syn.out_shape)
    x = s if len(syn.in_shape) == 3 else s[:, :, None, :]
    y = F.conv2d(x, w, None, syn.stride, syn.padding, syn.dilation, syn.groups)
    return y if len(syn.in_shape) == 3 else y[:, :, 0]


def simulate_float(plan: SpikingPlan, x: np.ndarray) -> dict[str, np.ndarray]:
    """x (T, *input_shape) -> spikes (T, *shape) of every LIF population (the voltage of an LI readout)."""
    spikes, _ = simulate_batch(plan, np.asarray(x)[None])
    return {name: s[0] for name, s in spikes.items()}


def simulate_batch(plan: SpikingPlan, x: np.ndarray, voltages: bool = False, peaks: dict | None = None
                   ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """x (B, T, *input_shape) -> (spikes (B, T, *shape) of every LIF/LI population, and their voltages
    v[t] after the reset when ``voltages``, else {}). ``peaks`` (a dict), when given, receives per population
    the largest ``|u|`` and ``|v|`` (v before the threshold test and the reset) over the run."""
    batch, steps = x.shape[:2]
    inputs = torch.as_tensor(x.reshape(batch, steps, *plan.input_shape), dtype=torch.float64)
    pops = [p for p in plan.neurons if p.model in ("lif", "li")]
    weights = {syn.name: torch.as_tensor(syn.weights, dtype=torch.float64) for syn in plan.synapses}
    u = {p.name: torch.zeros((batch, *p.shape), dtype=torch.float64) for p in pops}
    v = {p.name: torch.zeros((batch, *p.shape), dtype=torch.float64) for p in pops}
    spikes = {p.name: torch.zeros((steps + 1, batch, *p.shape), dtype=torch.float64) for p in pops}  # t+1 = step t
    trace = {p.name: torch.zeros((steps, batch, *p.shape), dtype=torch.float64) for p in pops} if voltages else {}
    with torch.no_grad():
        for t in range(steps):
            for p in pops:
                a = torch.zeros((batch, *p.shape), dtype=torch.float64)
                for syn in plan.incoming(p.name):
                    if syn.source == "bias":
                        a += weights[syn.name][:, 0].reshape(p.shape)
                    else:
                        src = inputs[:, t] if syn.source == "input" else \
                            spikes[syn.source][t if syn.recurrent else t + 1]
                        a += apply_synapse(syn, weights[syn.name], src)
                spikes[p.name][t + 1] = _lif_step(p, u, v, a, peaks)
                if voltages:
                    trace[p.name][t] = v[p.name]
    return ({n: s[1:].transpose(0, 1).numpy() for n, s in spikes.items()},
            {n: tr.transpose(0, 1).numpy() for n, tr in trace.items()})


def _lif_step(p, u: dict, v: dict, a: torch.Tensor, peaks: dict | None = None) -> torch.Tensor:
    """One step of population ``p`` (u, v updated in place in the dicts); returns its spikes."""
    fired = fired_before(v[p.name], p.vth, p.reset)
    u[p.name] = u[p.name] * (1 - p.du) + a
    v[p.name] = v[p.name] * (1 - p.dv) + u[p.name] + torch.as_tensor(p.bias, dtype=torch.float64)
    if peaks is not None:
        seen = peaks.setdefault(p.name, {"u": 0.0, "v": 0.0})
        seen["u"] = max(seen["u"], float(u[p.name].abs().max()))
        seen["v"] = max(seen["v"], float(v[p.name].abs().max()))
    v[p.name] = subtract_delayed(v[p.name], fired, p.vth, p.reset)
    s = threshold(v[p.name], fired, p.vth, p.reset)
    v[p.name] = after_spike(v[p.name], s, p.vth, p.reset)
    return v[p.name].clone() if p.sends_voltage else s.double()
