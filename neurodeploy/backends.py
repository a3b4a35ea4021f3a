"""Dense back-ends (the GPU half of a hybrid). Each starts with its adapter."""
from __future__ import annotations

import torch
from torch import nn

from neurodeploy.adapters import RateAdapter


class TransformerBackend(nn.Module):
    """Rate adapter -> linear projection -> transformer encoder -> mean over tokens -> linear head.

    Input: spikes (B, T, n_in); output: logits (B, n_classes). T must be a multiple of ``window``.
    """

    def __init__(self, n_in: int, n_classes: int, window: int, d_model: int = 32, n_heads: int = 4,
                 n_layers: int = 2, dim_feedforward: int = 64, causal: bool = False) -> None:
        super().__init__()
        self.adapter = RateAdapter(window)
        self.proj = nn.Linear(n_in, d_model)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, n_classes)
        self.causal = causal

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        tokens = self.proj(self.adapter(spikes))
        mask = nn.Transformer.generate_square_subsequent_mask(tokens.shape[1]) if self.causal else None
        h = self.encoder(tokens, mask=mask, is_causal=self.causal)
        return self.head(h.mean(dim=1))
