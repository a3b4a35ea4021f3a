"""Spiking neuron models in PyTorch, written per time step with explicit state.

The equations are those of Lava 0.10.0's ``LIF`` process in ``floating_pt`` (``lava/proc/lif/models.py``), so a
front-end built from these cells runs identically in PyTorch and in Lava::

    u[t] = u[t-1] * (1 - du) + a_in[t]          # synaptic current
    v[t] = v[t-1] * (1 - dv) + u[t]             # membrane voltage
    z[t] = v[t] > vth                           # spike
    v[t] = v[t] * (1 - z[t])                    # reset to zero

In NIR terms this is a ``CubaLIF`` with ``tau_syn = dt/du``, ``tau_mem = dt/dv``, ``r = 1/dv``,
``w_in = 1/du``, ``v_leak = 0``, ``v_reset = 0``: NIR's CubaLIF ODEs stepped by forward Euler at ``dt``
(``I <- (1 - dt/tau_syn) I + (dt/tau_syn) w_in S``, ``v <- (1 - dt/tau_mem) v + (dt/tau_mem) r I``).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class LIFState(NamedTuple):
    """State of a LIF population: synaptic current ``u`` and voltage ``v``, shape (batch, n)."""

    u: torch.Tensor
    v: torch.Tensor


class LIFCell(nn.Module):
    """Current-based LIF population with Lava's discrete-time parameters.

    Args:
        n: number of neurons.
        du: current decay per step, in [0, 1] (1: no synaptic memory).
        dv: voltage decay per step, in [0, 1] (0: integrate-and-fire).
        vth: firing threshold (spike when ``v > vth``).
    """

    def __init__(self, n: int, du: float = 1.0, dv: float = 0.0, vth: float = 1.0) -> None:
        super().__init__()
        if not (0.0 <= du <= 1.0 and 0.0 <= dv <= 1.0):
            raise ValueError(f"LIFCell needs du and dv in [0, 1], got du={du}, dv={dv}")
        if vth <= 0:
            raise ValueError(f"LIFCell needs vth > 0, got {vth}")
        self.n, self.du, self.dv, self.vth = n, float(du), float(dv), float(vth)

    def initial_state(self, batch: int, like: torch.Tensor) -> LIFState:
        """Zero state (the state every sample starts from)."""
        zeros = like.new_zeros(batch, self.n)
        return LIFState(zeros, zeros.clone())

    def forward(self, a_in: torch.Tensor, state: LIFState) -> tuple[torch.Tensor, LIFState]:
        """One step: input current ``a_in`` (batch, n) -> spikes (batch, n) and the new state."""
        u = state.u * (1.0 - self.du) + a_in
        v = state.v * (1.0 - self.dv) + u
        z = (v > self.vth).to(v.dtype)
        return z, LIFState(u, v * (1.0 - z))

    def extra_repr(self) -> str:
        return f"n={self.n}, du={self.du}, dv={self.dv}, vth={self.vth}"
