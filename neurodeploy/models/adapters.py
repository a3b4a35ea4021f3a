"""Spike-to-continuous adapters: the cut between the spiking and the dense part.

An adapter turns the spikes of T steps into L = T // K tokens for the dense back-end. Adapters are
part of the dense side (they run in ONNX Runtime with the back-end). Each has a whole-sequence
``forward(spikes)`` and a streaming ``step(window, *state) -> (token, *state)`` over one window of K
steps, with ``init_state(batch)``.
"""
from __future__ import annotations

import torch
from torch import nn


class RateAdapter(nn.Module):
    """Spike rate over non-overlapping windows of ``window`` steps.

    ``token[b, l, n] = (1/K) * sum_{k<K} s[b, l*K + k, n]``; input (B, T, N), output (B, T // K, N).
    T must be a multiple of K (the co-simulation checks it).
    """

    def __init__(self, window: int) -> None:
        super().__init__()
        if window < 1:
            raise ValueError(f"RateAdapter window must be >= 1, got {window}")
        self.window = int(window)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        b, t, n = spikes.shape
        return spikes.reshape(b, t // self.window, self.window, n).mean(dim=2)  # T must be a multiple of K

    def extra_repr(self) -> str:
        return f"window={self.window}"

    def init_state(self, batch: int) -> tuple[torch.Tensor, ...]:
        return ()

    def step(self, window: torch.Tensor) -> tuple[torch.Tensor]:
        return (window.mean(dim=1),)


class ExpTemporalAdapter(RateAdapter):
    """Exponentially weighted temporal coding inside each window: recent steps weigh more.

    ``token[l] = sum_k w_k s[l*K + k] / sum_k w_k`` with ``w_k = exp(-(K - 1 - k) / tau)`` (tau in steps).
    """

    def __init__(self, window: int, tau: float = 2.0) -> None:
        super().__init__(window)
        if tau <= 0:
            raise ValueError(f"ExpTemporalAdapter needs tau > 0 steps, got {tau}")
        self.tau = float(tau)
        w = torch.exp(-(window - 1 - torch.arange(window, dtype=torch.float32)) / tau)
        self.register_buffer("weights", w / w.sum())

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        b, t, n = spikes.shape
        windows = spikes.reshape(b, t // self.window, self.window, n)  # T must be a multiple of K
        return torch.einsum("blkn,k->bln", windows, self.weights.to(spikes.dtype))

    def step(self, window: torch.Tensor) -> tuple[torch.Tensor]:
        return (torch.einsum("bkn,k->bn", window, self.weights.to(window.dtype)),)

    def extra_repr(self) -> str:
        return f"window={self.window}, tau={self.tau}"


class MembraneAdapter(RateAdapter):
    """Membrane-potential readout: a leaky integrator over all steps, read at the end of each window.

    ``v[t] = decay * v[t-1] + s[t]``; ``token[l] = v[l*K + K - 1]``. Per window this is
    ``v_end[l] = decay**K * v_end[l-1] + sum_k decay**(K-1-k) s[l*K + k]``; the state is ``v_end``.
    """

    def __init__(self, window: int, n: int, decay: float = 0.9) -> None:
        super().__init__(window)
        self.n = int(n)
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"MembraneAdapter needs decay in [0, 1], got {decay}")
        self.decay = float(decay)
        self.register_buffer("weights", decay ** (window - 1 - torch.arange(window, dtype=torch.float32)))

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        from torch._higher_order_ops.scan import scan

        b, t, n = spikes.shape
        windows = spikes.reshape(b, t // self.window, self.window, n)  # T must be a multiple of K
        drive = torch.einsum("blkn,k->bln", windows, self.weights.to(spikes.dtype))
        carry = self.decay ** self.window

        def combine(v: torch.Tensor, d: torch.Tensor):
            v = carry * v + d
            return v, v.clone()

        _, tokens = scan(combine, torch.zeros(b, n, dtype=spikes.dtype), drive.transpose(0, 1))
        return tokens.transpose(0, 1)

    def init_state(self, batch: int) -> tuple[torch.Tensor, ...]:
        return (torch.zeros(batch, self.n),)

    def step(self, window: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = self.decay ** self.window * v + torch.einsum("bkn,k->bn", window, self.weights.to(window.dtype))
        return v, v

    def extra_repr(self) -> str:
        return f"window={self.window}, decay={self.decay}"


ADAPTERS = {"rate": RateAdapter, "exp": ExpTemporalAdapter, "membrane": MembraneAdapter}
ADAPTER_TYPES: tuple[type[nn.Module], ...] = tuple(ADAPTERS.values())
