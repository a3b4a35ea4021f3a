"""Run a spiking front-end over time in PyTorch, whatever framework its neurons come from.

How the PyTorch model's own outputs are computed (:mod:`neurodeploy.compiler.torch_reference`). A front-end is either a :class:`SpikingSequential` or an
``nn.Sequential`` of per-timestep modules: ``nn.Linear``/``nn.Conv*``/``nn.AvgPool2d``/``nn.Flatten``
(stateless) and neurons, each with its framework's step convention:

    neurodeploy LIFCell        z, state = cell(x, state)          (state from cell.initial_state)
    snnTorch Leaky             z, mem = leaky(x, mem)
    snnTorch Synaptic          z, syn, mem = synaptic(x, syn, mem)
    norse LIFBoxCell           z, state = cell(x, state)          (state None at t = 0)

Every sample starts from the zero state. Spikes are returned per neuron module, keyed by its name in
the Sequential (the NIR node name :func:`neurodeploy.exporters.torch_to_nir.sequential_to_nir` gives it).
"""
from __future__ import annotations

import torch
from torch import nn

from neurodeploy.models.frontend import SpikingSequential
from neurodeploy.models.neurons import LIFCell

NEURON_KINDS = ("LIFCell", "Leaky", "Synaptic", "RLeaky", "RSynaptic", "LIFBoxCell", "LIFNode", "IFNode")
SPIKINGJELLY_KINDS = ("LIFNode", "IFNode")  # stateful modules: reset(), then single_step_forward per step


def is_neuron(module: nn.Module) -> bool:
    return type(module).__name__ in NEURON_KINDS


def reset_memories(model: nn.Module) -> None:
    """Every stateful neuron of ``model`` back to the state it was built with: SpikingJelly's modules (``v``,
    and the like) as ``spikingjelly.activation_based.functional.reset_net`` does; snnTorch's state buffers
    (``mem``, ``syn``: non-persistent buffers) to the empty tensor its constructors give them, so that no
    shape of an earlier batch is carried into the next run (or into an ONNX export's traced shapes)."""
    for m in model.modules():
        if hasattr(m, "_memories") and callable(getattr(m, "reset", None)):
            m.reset()
        elif type(m).__module__.startswith("snntorch"):
            for name in m._non_persistent_buffers_set:
                if isinstance(m._buffers.get(name), torch.Tensor):
                    m._buffers[name] = torch.zeros(0, dtype=m._buffers[name].dtype)


def _zero_state(module: nn.Module, h: torch.Tensor):
    kind = type(module).__name__
    if isinstance(module, LIFCell):
        return module.initial_state(h.shape[0], h)
    if kind == "Leaky":
        return (torch.zeros_like(h),)
    if kind == "Synaptic":
        return (torch.zeros_like(h), torch.zeros_like(h))
    if kind in ("RLeaky", "RSynaptic"):  # (spk, mem) / (spk, syn, mem): the last spikes are state too
        return tuple(torch.zeros_like(h) for _ in range(2 if kind == "RLeaky" else 3))
    if kind in SPIKINGJELLY_KINDS:  # the state lives in the module (v); single- or multi-step alike
        module.reset()
    return None  # norse: the cell creates its state


def _step(module: nn.Module, h: torch.Tensor, state):
    """(spikes, new state) of one neuron module for one time step."""
    kind = type(module).__name__
    if kind in ("Leaky", "Synaptic"):
        z, *new = module(h, *state)
        return z.to(h.dtype), tuple(new)
    if kind in ("RLeaky", "RSynaptic"):  # snnTorch's spikes come back float32: kept at h's precision (exact, 0/1)
        z, *rest = module(h, *state)
        return z.to(h.dtype), (z.to(h.dtype), *rest)
    if kind in SPIKINGJELLY_KINDS:
        return module.single_step_forward(h).to(h.dtype), None
    if state is None and kind == "LIFBoxCell":
        z, new = module(h)
        return z.to(h.dtype), new
    z, new = module(h, state)
    return z.to(h.dtype), new


def chain_modules(frontend: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of a front-end's chain: ``layers.i`` of a SpikingSequential, else its children's names."""
    if isinstance(frontend, SpikingSequential):
        return [(f"layers.{i}", m) for i, m in enumerate(frontend.layers)]
    return list(frontend.named_children())


def voltage(module: nn.Module, state) -> torch.Tensor | None:
    """A neuron module's membrane voltage after a step, as its framework returns it (from its new state):
    snnTorch's ``mem`` (the last of its state tuple), norse's and neurodeploy's ``state.v``, SpikingJelly's
    ``module.v``."""
    if type(module).__name__ in SPIKINGJELLY_KINDS:
        return module.v if isinstance(module.v, torch.Tensor) else None
    if isinstance(state, tuple) and not hasattr(state, "v"):
        return state[-1] if state else None
    return getattr(state, "v", None)


class FrontendStepper:
    """Steps a front-end one time step at a time from the zero state: ``step(x_t) -> {population: spikes}``;
    ``voltages`` holds each population's voltage after the last step."""

    def __init__(self, frontend: nn.Module, grad: bool = False) -> None:
        self.frontend, self.grad = frontend, grad
        self.modules = chain_modules(frontend)
        self.states: dict[str, object] = {}
        self.voltages: dict[str, torch.Tensor | None] = {}

    def step(self, x_t: torch.Tensor) -> dict[str, torch.Tensor]:
        spikes, h = {}, x_t
        with torch.set_grad_enabled(self.grad and torch.is_grad_enabled()):
            for name, module in self.modules:
                if is_neuron(module):
                    if name not in self.states:
                        self.states[name] = _zero_state(module, h)
                    h, self.states[name] = _step(module, h, self.states[name])
                    spikes[name] = h
                    self.voltages[name] = voltage(module, self.states[name])
                else:
                    h = module(h)
        return spikes


def run_frontend(frontend: nn.Module, x: torch.Tensor, grad: bool = False, cut_reads: str = "spikes"
                 ) -> dict[str, torch.Tensor]:
    """x (B, T, *input_shape) -> spikes (B, T, *shape) of every neuron module, from the zero state
    (with ``grad``, differentiable through the neurons' surrogate gradients: for training); with
    ``cut_reads="v"`` the last population's entry is its voltage instead (a membrane read at the cut)."""
    stepper = FrontendStepper(frontend, grad)
    per_step = []
    for t in range(x.shape[1]):
        per_step.append(stepper.step(x[:, t]))
        if cut_reads == "v":
            last = list(per_step[-1])[-1]
            per_step[-1][last] = stepper.voltages[last].to(x.dtype)
    return {name: torch.stack([s[name] for s in per_step], dim=1) for name in per_step[0]}


def output_spikes(frontend: nn.Module, x: torch.Tensor, grad: bool = False, cut_reads: str = "spikes"
                  ) -> torch.Tensor:
    """The last neuron module's spikes, or with ``cut_reads="v"`` its voltage (what crosses the cut)."""
    return list(run_frontend(frontend, x, grad, cut_reads).values())[-1]
