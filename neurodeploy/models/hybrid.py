"""A hybrid model: a spiking front-end, an adapter, and a dense back-end.

``HybridModel.forward(x)`` with x of shape (B, T, N_in) returns the back-end output; the cut between
the two halves is at the adapter (the first module of ``backend``).
"""
from __future__ import annotations

import torch
from torch import nn

from neurodeploy.models.frontend import SpikingSequential


class HybridModel(nn.Module):
    """``backend(frontend(x))``: spikes (B, T, N) cross the cut into the dense back-end.

    ``frontend`` is a :class:`SpikingSequential` or an ``nn.Sequential`` of per-step modules (snnTorch,
    norse, neurodeploy cells with Linear/Conv/pooling), stepped over T by
    :func:`neurodeploy.models.time_stepping.output_spikes`.
    """

    def __init__(self, frontend: nn.Module, backend: nn.Module) -> None:
        super().__init__()
        self.frontend = frontend
        self.backend = backend

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.frontend, SpikingSequential):
            return self.backend(self.frontend(x))
        from neurodeploy.models.time_stepping import output_spikes  # an nn.Sequential of per-step modules

        return self.backend(output_spikes(self.frontend, x, grad=True))
