"""Spike-to-continuous adapters: the cut between the spiking and the dense part.

An adapter turns the spikes of T steps into L = T // K tokens for the dense back-end. Adapters are
part of the dense side (they run in ONNX Runtime with the back-end).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RateAdapter(nn.Module):
    """Spike rate over non-overlapping windows of ``window`` steps.

    ``token[b, l, n] = (1/K) * sum_{k<K} s[b, l*K + k, n]``; input (B, T, N), output (B, T // K, N).
    Trailing steps that do not fill a window are dropped (callers pass T divisible by K).
    """

    def __init__(self, window: int) -> None:
        super().__init__()
        if window < 1:
            raise ValueError(f"RateAdapter window must be >= 1, got {window}")
        self.window = int(window)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        pooled = F.avg_pool1d(spikes.transpose(1, 2), self.window, self.window)
        return pooled.transpose(1, 2)

    def extra_repr(self) -> str:
        return f"window={self.window}"


ADAPTER_TYPES: tuple[type[nn.Module], ...] = (RateAdapter,)
