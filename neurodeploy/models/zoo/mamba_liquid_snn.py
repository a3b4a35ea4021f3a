"""Mamba-Liquid-SNN (seed 002): spike encoder -> spike-to-Mamba adapter -> liquid (CfC) and Mamba paths.

Front-end (Loihi): Linear 16->32 -> LIF -> Linear 32->32 -> LIF (the spike encoder). Back-end (GPU):
an adapter (``rate``, ``exp``: exponentially weighted by recency, or ``membrane``: the membrane
potential of a leaky integrator; the seed's rate, temporal and potential codes) -> one of the seed's
integration modes -> per-window head:

- ``sequential``: CfC, then Mamba;
- ``parallel``: CfC and Mamba side by side, fused by an adaptive gate;
- ``bidirectional``: Mamba and CfC exchanging information by causal cross-attention (Mamba's tokens
  query the liquid path), then by state exchange (:class:`neurodeploy.models.dense_blocks.ExchangeBlock`: the
  liquid state modulates Mamba's B and C, Mamba's output sets the liquid time constant).

Trained on :func:`neurodeploy.models.zoo.datasets.burst_order` (T=64: which group fired first, 40 steps
before the second burst). The zoo entry is the bidirectional mode with the membrane adapter; the
other modes are ``architecture(mode, adapter)`` and are trained by ``scripts/train_zoo.py
mamba_liquid_snn --mode MODE``.
"""
from __future__ import annotations

import torch
from torch import nn

from neurodeploy.models.backends import StreamingBackend
from neurodeploy.models.hybrid import HybridModel
from neurodeploy.models.zoo import datasets
from neurodeploy.models.zoo.common import leaky

NAME = "mamba_liquid_snn"
INPUT_SHAPE, NUM_STEPS, WINDOW, N_CLASSES = (16,), 64, 4, 4
DT_S = 1e-3
MODES = {"sequential": ["cfc", "mamba"], "parallel": ["fusion_gate"], "bidirectional": ["fusion_cross", "exchange"]}
ADAPTER_ARGS = {"rate": {}, "exp": {"tau": 2.0}, "membrane": {"decay": 0.75}}
TRAINING = dict(train_size=512, epochs=10, lr=3e-3, batch=32)


def architecture(mode: str = "bidirectional", adapter: str = "membrane") -> HybridModel:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
    frontend = nn.Sequential(nn.Linear(16, 32), leaky(0.8), nn.Linear(32, 32), leaky(0.9))
    backend = StreamingBackend(32, N_CLASSES, WINDOW, MODES[mode], d_model=32, adapter=adapter, heads=2,
                               max_len=64, **ADAPTER_ARGS[adapter])
    return HybridModel(frontend, backend)



def dataset(split: str, n: int):
    return datasets.burst_order(n, split, NUM_STEPS)


def loss(y: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(y[:, -1], labels)
