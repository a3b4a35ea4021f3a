"""Tiny hybrid: 2-layer LIF front-end -> rate adapter (K=4) -> 2-layer transformer encoder -> 4-class head.

Weights are deterministic (seeded initialisation, no training): the model exists to exercise the
whole deployment path, not to solve a task. Inputs are Bernoulli spike trains (rate 0.25).
"""
from __future__ import annotations

import torch
from torch import nn

from neurodeploy.models.backends import TransformerBackend
from neurodeploy.models.frontend import SpikingSequential
from neurodeploy.models.hybrid import HybridModel
from neurodeploy.models.neurons import LIFCell

N_IN, N_HIDDEN, N_OUT, N_CLASSES = 16, 32, 24, 4
NUM_STEPS, WINDOW = 32, 4
DT_S = 1e-3
SEED = 0


def build() -> HybridModel:
    torch.manual_seed(SEED)
    frontend = SpikingSequential(
        nn.Linear(N_IN, N_HIDDEN, bias=False), LIFCell(N_HIDDEN, du=0.5, dv=0.25, vth=1.0),
        nn.Linear(N_HIDDEN, N_OUT, bias=False), LIFCell(N_OUT, du=1.0, dv=0.125, vth=1.0),
    )
    with torch.no_grad():  # scaled so both layers spike at 10-20 % rates
        frontend.layers[0].weight.mul_(2.5)
        frontend.layers[2].weight.mul_(2.0).add_(0.02)
    backend = TransformerBackend(N_OUT, N_CLASSES, WINDOW, d_model=32, n_heads=4, n_layers=2)
    return HybridModel(frontend, backend).eval()


def example_inputs(num_samples: int, seed: int = SEED) -> torch.Tensor:
    """(num_samples, T, N_IN) Bernoulli(0.25) spikes, deterministic for a seed."""
    g = torch.Generator().manual_seed(seed + 1)
    return (torch.rand(num_samples, NUM_STEPS, N_IN, generator=g) < 0.25).float()
