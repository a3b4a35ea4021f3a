"""Neuro-SVT (seed 001): spiking patch embedding, a slow-decay memory token, SDSA blocks, head on memory.

Front-end (Loihi): Conv 2->16 (4x4 patches, stride 4) -> LIF with tau 1.1 (the 16 spatial tokens of
16 channels) -> Linear 256->32 -> LIF with tau 2.0 (the memory token: slow decay, fed by every spatial
token). Back-end (GPU): rate adapter (K=4) -> 2 spike-driven self-attention blocks (SDSA: no softmax,
``Q * SN(sum K*V)``) whose running ``sum K*V`` carries what was seen through an occlusion -> per-window
head. Trained on :func:`neurodeploy.models.zoo.datasets.occluded_objects` (where is the object hidden: one of
4 quadrants; visible 16 steps, then occluded 48), loss on the output after the last occluded frame: the
Permanence Score is that output's accuracy. Time constants are SpikingJelly's (``v += (x - v) / tau``), as in the seed.
"""
from __future__ import annotations

import torch
from torch import nn

from neurodeploy.models.backends import StreamingBackend
from neurodeploy.models.hybrid import HybridModel
from neurodeploy.models.zoo import datasets
from neurodeploy.models.zoo.common import beta_of_tau, leaky

NAME = "neuro_svt"
INPUT_SHAPE, NUM_STEPS, WINDOW, N_CLASSES = (2, 16, 16), 64, 4, 4
DT_S = 1e-3
TAU_SPATIAL, TAU_MEMORY = 1.1, 2.0
D_MODEL = 32
TRAINING = dict(train_size=1024, epochs=30, lr=3e-3, batch=32)


def frontend() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(2, 16, 4, stride=4), leaky(beta_of_tau(TAU_SPATIAL), 0.5),
                         nn.Flatten(), nn.Linear(16 * 4 * 4, D_MODEL), leaky(beta_of_tau(TAU_MEMORY), 0.5))


def architecture(blocks: tuple[str, ...] = ("sdsa", "sdsa")) -> HybridModel:
    backend = StreamingBackend(D_MODEL, N_CLASSES, WINDOW, list(blocks), d_model=D_MODEL, adapter="rate", heads=4,
                               max_len=64)
    return HybridModel(frontend(), backend)



def dense_baseline() -> nn.Module:
    """The ViT-Tiny-style dense twin of the same width: the same convolution and projection with ReLU
    instead of LIF, softmax attention instead of SDSA; what the SOP comparison is made against."""
    return DenseTwin()


class DenseTwin(nn.Module):
    """Per step: Conv -> ReLU -> Linear -> ReLU (dense activations, every MAC done); then the back-end
    with softmax attention. Input (B, T, 2, 16, 16) -> (B, L, n_classes)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Conv2d(2, 16, 4, stride=4), nn.ReLU(), nn.Flatten(),
                                   nn.Linear(16 * 4 * 4, D_MODEL), nn.ReLU())
        self.backend = StreamingBackend(D_MODEL, N_CLASSES, WINDOW, ["attention", "attention"], d_model=D_MODEL,
                                        adapter="rate", heads=4, max_len=64)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        b, t = spikes.shape[:2]
        return self.backend(self.embed(spikes.reshape(b * t, *spikes.shape[2:])).reshape(b, t, -1))


def dataset(split: str, n: int):
    return datasets.occluded_objects(n, split, NUM_STEPS)


def loss(y: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the output after the occlusion (the last window), plus the last visible window's."""
    visible = datasets.VISIBLE_STEPS // WINDOW - 1
    ce = nn.functional.cross_entropy
    return ce(y[:, -1], labels) + 0.5 * ce(y[:, visible], labels)
