"""Backend-neutral description of a spiking network in Lava's discrete-time parameters.

A :class:`SpikingPlan` is what the NIR importer produces and what the Lava builder (and later the
emulator) consume. Every synaptic layer adds Lava's one-step delay; ``delay_steps`` of a population
is the number of synaptic layers between the input and it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class SpikingPlanError(ValueError):
    """The spiking graph cannot be expressed for Loihi; the message lists every offending node."""


@dataclass
class SynapseLayer:
    """Dense synapses: ``a_out[t+1] = weights @ s_in[t]`` (Lava's one-step delay)."""

    name: str
    weights: np.ndarray  # (n_out, n_in), already scaled into Lava's current units
    source: str  # "input" or a NeuronLayer name


@dataclass
class NeuronLayer:
    """Lava LIF population: ``u = u(1-du) + a_in``; ``v = v(1-dv) + u + bias``; spike if v > vth."""

    name: str
    n: int
    du: float
    dv: float
    vth: float
    bias: np.ndarray  # (n,)
    source: str  # a SynapseLayer name
    delay_steps: int = 0


@dataclass
class SpikingPlan:
    """Input size, layers in topological order, and the populations whose spikes leave the graph."""

    n_in: int
    layers: list[SynapseLayer | NeuronLayer]
    outputs: dict[str, str]  # output node name -> NeuronLayer name
    dt: float
    input_name: str = "input"
    metadata: dict = field(default_factory=dict)

    @property
    def neurons(self) -> list[NeuronLayer]:
        return [layer for layer in self.layers if isinstance(layer, NeuronLayer)]

    @property
    def synapses(self) -> list[SynapseLayer]:
        return [layer for layer in self.layers if isinstance(layer, SynapseLayer)]

    def layer(self, name: str) -> SynapseLayer | NeuronLayer:
        return next(layer for layer in self.layers if layer.name == name)

    @property
    def max_delay_steps(self) -> int:
        return max(n.delay_steps for n in self.neurons)
