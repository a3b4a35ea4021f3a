"""Bundled models, by name. Each entry builds a model with deterministic weights and example inputs."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from neurodeploy.zoo import tiny_hybrid, tiny_mamba


@dataclass(frozen=True)
class ZooEntry:
    name: str
    description: str
    build: Callable[[], nn.Module]
    example_inputs: Callable[[int], torch.Tensor]  # number of samples -> (B, T, N_in)
    dt_s: float


ZOO: dict[str, ZooEntry] = {
    "tiny_hybrid": ZooEntry("tiny_hybrid", tiny_hybrid.__doc__.strip().splitlines()[0], tiny_hybrid.build,
                            tiny_hybrid.example_inputs, tiny_hybrid.DT_S),
    "tiny_mamba": ZooEntry("tiny_mamba", tiny_mamba.__doc__.strip().splitlines()[0], tiny_mamba.build,
                           tiny_mamba.example_inputs, tiny_mamba.DT_S),
}
DEFAULT_MODEL = "tiny_hybrid"


def get(name: str) -> ZooEntry:
    try:
        return ZOO[name]
    except KeyError:
        raise KeyError(f"unknown zoo model {name!r}; available: {', '.join(sorted(ZOO))}") from None
