"""Partitioning a hybrid model into the part Loihi runs and the part the GPU runs.

This first partitioner takes a :class:`~neurodeploy.hybrid.HybridModel` and cuts at its adapter:
the spiking front-end goes to Loihi (NIR -> Lava), the adapter and everything after it to the GPU
(ONNX). Each module's placement carries the reason.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from neurodeploy.adapters import ADAPTER_TYPES, RateAdapter
from neurodeploy.bundle import Placement
from neurodeploy.frontend import SpikingSequential
from neurodeploy.hybrid import HybridModel
from neurodeploy.neurons import LIFCell


class PartitionError(ValueError):
    """The model cannot be split; the message lists the modules that are in the way."""


@dataclass
class Partition:
    spiking: SpikingSequential
    dense: nn.Module
    adapter: RateAdapter
    placement: list[Placement]


def _reason(module: nn.Module) -> str:
    if isinstance(module, LIFCell):
        return "LIF population: Loihi neuron core"
    if isinstance(module, nn.Linear):
        return "static weights feeding spiking neurons: Loihi synapses"
    return "spiking front-end"


def partition_at_adapter(model: nn.Module) -> Partition:
    """Split a HybridModel at the first adapter of its back-end."""
    if not isinstance(model, HybridModel):
        raise PartitionError(f"{type(model).__name__} is not a HybridModel(frontend, backend); wrap the "
                             "spiking front-end (SpikingSequential) and the dense back-end in one")
    adapters = [(name, m) for name, m in model.backend.named_modules() if isinstance(m, ADAPTER_TYPES)]
    if not adapters:
        raise PartitionError("the back-end has no adapter (e.g. RateAdapter): there is no point where spikes "
                             "become continuous values to cut at")
    placement = [Placement(module=f"frontend.{name}", device="loihi", reason=_reason(m))
                 for name, m in model.frontend.named_modules() if name and not isinstance(m, nn.ModuleList)]
    adapter_name, adapter = adapters[0]
    placement.append(Placement(module=f"backend.{adapter_name}", device="gpu",
                               reason="adapter: spikes -> continuous tokens (the cut)"))
    placement += [Placement(module=f"backend.{name}", device="gpu", reason="dense layer after the cut")
                  for name, m in model.backend.named_children() if m is not adapter]
    return Partition(spiking=model.frontend, dense=model.backend, adapter=adapter, placement=placement)
