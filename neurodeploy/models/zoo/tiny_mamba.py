"""Tiny SNN + Mamba: snnTorch LIF front-end -> membrane-potential adapter (K=4) -> 2 Mamba blocks -> per-window head.

A flat ``nn.Sequential``: the partitioner finds the cut itself (after the last snnTorch ``Leaky``).
Weights are deterministic (seeded initialisation, no training): the model exercises the deployment
path with a streaming back-end (schedules ``end``, ``window`` and ``event``). Inputs are Bernoulli(0.25) spikes.
"""
from __future__ import annotations

import torch
from torch import nn

from neurodeploy.models.backends import StreamingBackend

N_IN, N_HIDDEN, N_OUT, N_CLASSES = 16, 32, 24, 4
NUM_STEPS, WINDOW = 32, 4
DT_S = 1e-3
SEED = 0
SALIENCE = 8  # spikes of the 24 cut neurons in a window of 4 steps that wake the dense part (event schedule)


def build() -> nn.Sequential:
    import snntorch as snn

    torch.manual_seed(SEED)
    fc1, fc2 = nn.Linear(N_IN, N_HIDDEN), nn.Linear(N_HIDDEN, N_OUT)
    with torch.no_grad():  # scaled so both layers spike at 10-30 % rates
        fc1.weight.mul_(2.5)
        fc2.weight.mul_(2.0)
        fc1.bias.uniform_(0.0, 0.1)
        fc2.bias.uniform_(0.0, 0.1)
    leaky = dict(threshold=1.0, reset_mechanism="zero", reset_delay=False)
    return nn.Sequential(fc1, snn.Leaky(beta=0.75, **leaky), fc2, snn.Leaky(beta=0.875, **leaky),
                         StreamingBackend(N_OUT, N_CLASSES, WINDOW, ["mamba", "mamba"], d_model=32,
                                          adapter="membrane", decay=0.75, salience_threshold=SALIENCE)).eval()


def example_inputs(num_samples: int, seed: int = SEED) -> torch.Tensor:
    """(num_samples, T, N_IN) Bernoulli(0.25) spikes, deterministic for a seed."""
    g = torch.Generator().manual_seed(seed + 2)
    return (torch.rand(num_samples, NUM_STEPS, N_IN, generator=g) < 0.25).float()
