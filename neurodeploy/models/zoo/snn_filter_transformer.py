"""SNN filter + transformer (seed 003): a spiking front-end marks salient windows; a transformer runs on those only.

Front-end (Loihi): Linear 16->32 -> LIF -> Linear 32->24 -> LIF; it stays nearly silent on background
noise and fires on bursts. Back-end (GPU): rate adapter (K=4) -> 2 causal attention blocks -> head,
run with the event schedule: only on windows where the cut fired at least ``SALIENCE`` spikes (the
state carried, the last output held over the others). Trained through that same event schedule on
:func:`neurodeploy.models.zoo.datasets.salient_patterns` (4 burst patterns in 2-3 of 16 windows, T=64);
``cosim --schedule event`` reports how many of the windows the GPU skipped.
"""
from __future__ import annotations

import torch
from torch import nn

from neurodeploy.models.backends import StreamingBackend
from neurodeploy.models.hybrid import HybridModel
from neurodeploy.models.zoo import datasets
from neurodeploy.models.zoo.common import leaky

NAME = "snn_filter_transformer"
INPUT_SHAPE, NUM_STEPS, WINDOW, N_CLASSES = (16,), 64, 4, 4
DT_S = 1e-3
SALIENCE = 6
TRAINING = dict(train_size=512, epochs=8, lr=3e-3, batch=32, event=True, target_rate=0.03)


def architecture() -> HybridModel:
    frontend = nn.Sequential(nn.Linear(16, 32), leaky(0.7), nn.Linear(32, 24), leaky(0.8))
    backend = StreamingBackend(24, N_CLASSES, WINDOW, ["attention", "attention"], d_model=32, adapter="rate",
                               heads=4, max_len=64, salience_threshold=SALIENCE)
    return HybridModel(frontend, backend)



def dataset(split: str, n: int):
    return datasets.salient_patterns(n, split, NUM_STEPS, window=WINDOW)


def loss(y: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(y[:, -1], labels)
