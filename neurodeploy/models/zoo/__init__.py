"""Bundled models, by name. Each entry builds a model (trained weights for the seed architectures,
seeded initialisation for the two tiny path-exercising models) and gives example inputs.

The trained entries come with their generated dataset (:mod:`neurodeploy.models.zoo.datasets`), the schedule
they are meant to run with, and are trained by ``scripts/train_zoo.py NAME``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import torch
from torch import nn

from neurodeploy.models.zoo import (liquidspikeformer, mamba_liquid_snn, neuro_svt, snn_filter_transformer, tiny_hybrid,
                                    tiny_mamba)
from neurodeploy.models.zoo.common import load_trained


@dataclass(frozen=True)
class ZooEntry:
    name: str
    description: str
    build: Callable[[], nn.Module]
    example_inputs: Callable[[int], torch.Tensor]  # number of samples -> (B, T, *input_shape)
    dt_s: float
    dataset: Callable[[str, int], tuple[np.ndarray, np.ndarray]] | None = None  # (split, n) -> (x, labels)
    schedule: str | None = None  # the schedule the model is deployed with (None: the compile default)
    num_classes: int | None = None


def _entry(module: ModuleType, schedule: str = "end") -> ZooEntry:
    """A trained model: ``architecture()`` with the shipped weights; examples from its test split."""
    return ZooEntry(module.NAME, module.__doc__.strip().splitlines()[0],
                    lambda: load_trained(module.architecture(), module.NAME),
                    lambda n: torch.as_tensor(module.dataset("test", n)[0]), module.DT_S, module.dataset, schedule,
                    module.N_CLASSES)


ZOO: dict[str, ZooEntry] = {
    "liquidspikeformer": _entry(liquidspikeformer, "window"),
    "neuro_svt": _entry(neuro_svt, "window"),
    "mamba_liquid_snn": _entry(mamba_liquid_snn, "window"),
    "snn_filter_transformer": _entry(snn_filter_transformer, "event"),
    "tiny_hybrid": ZooEntry("tiny_hybrid", tiny_hybrid.__doc__.strip().splitlines()[0], tiny_hybrid.build,
                            tiny_hybrid.example_inputs, tiny_hybrid.DT_S),
    "tiny_mamba": ZooEntry("tiny_mamba", tiny_mamba.__doc__.strip().splitlines()[0], tiny_mamba.build,
                           tiny_mamba.example_inputs, tiny_mamba.DT_S),
}
TRAINED = [name for name, entry in ZOO.items() if entry.dataset is not None]
DEFAULT_MODEL = "liquidspikeformer"


def get(name: str) -> ZooEntry:
    try:
        return ZOO[name]
    except KeyError:
        raise KeyError(f"unknown zoo model {name!r}; available: {', '.join(sorted(ZOO))}") from None
