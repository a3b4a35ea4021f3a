"""A hybrid model: a spiking front-end, an adapter, and a dense back-end.

``HybridModel.forward(x)`` with x of shape (B, T, N_in) returns the back-end output; the cut between
the two halves is at the adapter (the first module of ``backend``).
"""
from __future__ import annotations

import torch
from torch import nn

from neurodeploy.frontend import SpikingSequential


class HybridModel(nn.Module):
    """``backend(frontend(x))``: spikes (B, T, N) cross the cut into the dense back-end."""

    def __init__(self, frontend: SpikingSequential, backend: nn.Module) -> None:
        super().__init__()
        self.frontend = frontend
        self.backend = backend

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backend(self.frontend(x))
