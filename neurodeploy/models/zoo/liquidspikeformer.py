"""LiquidSpikeFormer (seed 000): fine and coarse ConvSNN encoders -> CfC liquid block -> transformer -> early exits.

Front-end (Loihi): Conv 2->8 (3x3, stride 2) -> LIF with a fast decay (the fine encoder) -> Conv 8->16
(3x3, stride 2) -> LIF with a slow decay (the coarse encoder: the spatiotemporal block integrates over
steps) -> Linear 256->48 -> LIF. Back-end (GPU): rate adapter (K=4) -> CfC (liquid time constant) ->
causal attention -> a classifier on every window. Each window's classifier is an early exit: the
co-simulation stops at the first window whose softmax confidence reaches ``EXIT_THRESHOLD``
(``cosim --early-exit``). Trained with deep supervision (every window's loss, later windows weighted
more) on :func:`neurodeploy.models.zoo.datasets.moving_bars` (4 directions, 2x16x16 DVS events, T=32).

The seed's encoders run side by side; neurodeploy's front-ends are chains (one NIR path to Loihi), so
here the coarse encoder reads the fine one.
"""
from __future__ import annotations

import torch
from torch import nn

from neurodeploy.models.backends import StreamingBackend
from neurodeploy.models.hybrid import HybridModel
from neurodeploy.models.zoo import datasets
from neurodeploy.models.zoo.common import leaky

NAME = "liquidspikeformer"
INPUT_SHAPE, NUM_STEPS, WINDOW, N_CLASSES = (2, 16, 16), 32, 4, 4
DT_S = 1e-3
EXIT_THRESHOLD = 0.9
TRAINING = dict(train_size=512, epochs=10, lr=3e-3, batch=32)


def architecture() -> HybridModel:
    frontend = nn.Sequential(
        nn.Conv2d(2, 8, 3, stride=2, padding=1), leaky(0.5),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), leaky(0.9),
        nn.Flatten(), nn.Linear(16 * 4 * 4, 48), leaky(0.8))
    backend = StreamingBackend(48, N_CLASSES, WINDOW, ["cfc", "attention"], d_model=32, adapter="rate", heads=4,
                               max_len=64, exit_threshold=EXIT_THRESHOLD)
    return HybridModel(frontend, backend)



def dataset(split: str, n: int):
    return datasets.moving_bars(n, split, NUM_STEPS)


def loss(y: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Deep supervision: cross-entropy of every window's exit, weighted by the window index."""
    windows = y.shape[1]
    weights = torch.arange(1, windows + 1, dtype=y.dtype) / windows
    per_window = torch.stack([nn.functional.cross_entropy(y[:, w], labels) for w in range(windows)])
    return (weights * per_window).sum() / weights.sum()
