"""The spiking front-end: synaptic layers and LIF populations, stepped one time step at a time.

Contract: the front-end is a per-timestep module
``step(x_t, state) -> (z_t, state)``; the time loop and the adapter stay outside it, so the same
module can be exported to NIR, traced, and co-simulated step by step.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from neurodeploy.models.neurons import LIFCell, LIFState

SYNAPSE_TYPES: tuple[type[nn.Module], ...] = (nn.Linear,)
NEURON_TYPES: tuple[type[nn.Module], ...] = (LIFCell,)

FrontEndState = list[LIFState]


class SpikingSequential(nn.Module):
    """A chain of synaptic layers (``nn.Linear``) and LIF populations (``LIFCell``).

    Each synaptic layer must feed a LIF population; the chain ends on a LIF population, whose
    spikes are the front-end's output.
    """

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__()
        _check_chain(layers)
        self.layers = nn.ModuleList(layers)

    @property
    def neurons(self) -> list[tuple[str, LIFCell]]:
        """(name, cell) of every LIF population, in order."""
        return [(f"layers.{i}", m) for i, m in enumerate(self.layers) if isinstance(m, LIFCell)]

    @property
    def out_features(self) -> int:
        return self.layers[-1].n

    def initial_state(self, batch: int, like: torch.Tensor) -> FrontEndState:
        return [cell.initial_state(batch, like) for _, cell in self.neurons]

    def step(self, x_t: torch.Tensor, state: FrontEndState) -> tuple[list[torch.Tensor], FrontEndState]:
        """One time step: input (B, N_in) -> spikes of every LIF population, new state."""
        spikes, new_state, it = [], [], iter(state)
        h = x_t
        for layer in self.layers:
            if isinstance(layer, LIFCell):
                h, s = layer(h, next(it))
                spikes.append(h)
                new_state.append(s)
            else:
                h = layer(h)
        return spikes, new_state

    def run(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Whole sequence from the zero state: x (B, T, N_in) -> spikes (B, T, n) per LIF population."""
        state = self.initial_state(x.shape[0], x)
        per_step = []
        for t in range(x.shape[1]):
            spikes, state = self.step(x[:, t], state)
            per_step.append(spikes)
        return [torch.stack(layer, dim=1) for layer in zip(*per_step)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, N_in) -> output spikes (B, T, N_out)."""
        return self.run(x)[-1]


def _check_chain(layers: Sequence[nn.Module]) -> None:
    problems = []
    for i, layer in enumerate(layers):
        if not isinstance(layer, SYNAPSE_TYPES + NEURON_TYPES):
            problems.append(f"layers[{i}] is {type(layer).__name__}: only nn.Linear and LIFCell chain here")
        elif isinstance(layer, SYNAPSE_TYPES) and (i + 1 >= len(layers) or not isinstance(layers[i + 1], LIFCell)):
            problems.append(f"layers[{i}] ({type(layer).__name__}) must be followed by a LIFCell")
    if not layers or not isinstance(layers[-1], LIFCell):
        problems.append("the chain must end on a LIFCell (its spikes are the front-end output)")
    if problems:
        raise ValueError("invalid spiking front-end:\n  - " + "\n  - ".join(problems))
