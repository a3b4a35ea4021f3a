"""Partitioning a hybrid model into the part Loihi runs and the part the GPU runs.

Two entry points:

- a :class:`~neurodeploy.models.hybrid.HybridModel` ``(frontend, backend)``: the front-end goes to Loihi, the
  back-end (from its adapter on) to the GPU;
- a flat ``nn.Sequential``: the largest prefix that Loihi can run and that ends on a spiking
  population is the spiking part; the cut is after it, and the rest, which must start with an
  adapter, is the dense part.

``cut=`` names a spiking population of the chain ("frontend.1" of a HybridModel, "1" of a flat
Sequential): Loihi keeps the chain up to it, and the populations after it run on the GPU in front of
the dense part (:class:`GpuTail`, stepped over the sample's T steps, every MAC done). :func:`cuts` lists
the valid cuts of a model: one per population of its chain, the last being the default.

Every module gets a placement and a reason (e.g. "Q·K^T: both operands data-dependent -> GPU").
Front-end modules Loihi cannot run are listed in one :class:`PartitionError`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from neurodeploy.bundle import TAIL_REASON, Placement
from neurodeploy.errors import PartitionError
from neurodeploy.models.adapters import ADAPTER_TYPES
from neurodeploy.models.dense_blocks import (AttentionBlock, CfCBlock, ExchangeBlock, FusionBlock, MambaBlock,
                                             SDSABlock, SSABlock)
from neurodeploy.models.frontend import SpikingSequential
from neurodeploy.models.time_stepping import chain_modules, is_neuron
from neurodeploy.models.hybrid import HybridModel


@dataclass
class Partition:
    spiking: nn.Module | None  # SpikingSequential or nn.Sequential of per-timestep modules; None: Loihi cannot
    # start the model, which runs wholly on the GPU (``dense`` is the model itself, taking its inputs)
    dense: nn.Module
    adapter: nn.Module | None  # None: a captured model's own code after the cut (no neurodeploy adapter)
    placement: list[Placement]
    module_paths: dict[str, str] = field(default_factory=dict)  # NIR node -> "frontend.1 (Leaky)"
    cut_reads: str = "spikes"  # what the dense part reads of the cut population: "spikes", or "v" (its membrane)

    @property
    def fixed_length(self) -> bool:
        """The dense part loops over the sample's T steps in Python (a captured model's own code, or
        spiking populations moved to the GPU): its ONNX form has a fixed T and runs on the ``end`` schedule."""
        return self.adapter is None or isinstance(self.dense, GpuTail)


class GpuTail(nn.Module):
    """Spiking populations placed after the cut, on the GPU: ``forward(spikes (B, T, ...))`` steps ``tail``
    (synaptic layers and neurons, each with its framework's step convention) from the zero state over the
    T steps, then runs ``dense`` on the last population's spikes. The spikes crossing the cut keep their
    population's shape (``(B, T, 8, 8, 8)`` after a convolution)."""

    def __init__(self, tail: nn.Module, dense: nn.Module) -> None:
        super().__init__()
        self.tail, self.dense = tail, dense

    def forward(self, spikes):
        from neurodeploy.models.time_stepping import output_spikes

        return self.dense(output_spikes(self.tail, spikes))


def module_label(path: str, module: nn.Module) -> str:
    """How a report names a module of the user's model: ``"frontend.1 (Leaky)"``."""
    return f"{path} ({type(module).__name__})"


def _paths(modules: list[tuple[str, nn.Module]], prefix: str) -> dict[str, str]:
    """The user's module path and type for each NIR node of the spiking part (nodes are named as the children)."""
    return {name: module_label(prefix + name, m) for name, m in modules}


GPU_REASONS: list[tuple[type, str]] = [
    (AttentionBlock, "Q·K^T and softmax(·)V: both operands data-dependent -> GPU"),
    (SSABlock, "Q·K^T·V between spike tensors: both operands data-dependent -> GPU"),
    (SDSABlock, "K⊙V and Q⊙(·): both operands data-dependent -> GPU"),
    (MambaBlock, "selective scan: decay and input matrices depend on the input -> GPU"),
    (CfCBlock, "CfC: gated tanh/sigmoid dynamics, not spiking -> GPU"),
    (FusionBlock, "branch fusion (gating / cross-attention) on continuous values -> GPU"),
    (ExchangeBlock, "Mamba <-> liquid state exchange: input-dependent matrices and time constants -> GPU"),
    (nn.TransformerEncoder, "softmax attention: both operands data-dependent -> GPU"),
    (nn.TransformerEncoderLayer, "softmax attention: both operands data-dependent -> GPU"),
    (nn.MultiheadAttention, "Q·K^T and softmax(·)V: both operands data-dependent -> GPU"),
    (nn.RNNBase, "recurrent cell (GRU/LSTM/RNN) on continuous values: gated, not spiking -> GPU"),
    (nn.Dropout, "dropout: the identity at inference (runs with the GPU part)"),
    (nn.LayerNorm, "normalisation over continuous values -> GPU"),
]


def _gpu_reason(module: nn.Module, default: str | None = "dense layer after the cut -> GPU") -> str | None:
    return next((reason for kind, reason in GPU_REASONS if isinstance(module, kind)), default)


def _loihi_reason(module: nn.Module) -> str:
    if is_neuron(module):
        return f"{type(module).__name__} population: Loihi neuron cores"
    if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
        return "static weights between spikes and neurons: Loihi synapses"
    if isinstance(module, nn.AvgPool2d):
        return "sum pooling folded into the next synapses"
    return "reshaping folded into the next synapses"


def _loihi_problems(modules: list[tuple[str, nn.Module]], prefix: str, dt_s: float | None = None) -> list[str]:
    from neurodeploy.exporters import conversion_problems

    return [f"{prefix}{p}" for name, m in modules for p in conversion_problems(name, m, dt_s)]


def _dense_placement(backend: nn.Module, prefix: str, adapter: nn.Module) -> list[Placement]:
    placement = [Placement(module=f"{prefix}{name}", device="gpu",
                           reason="adapter: spikes -> continuous tokens (the cut)" if m is adapter else _gpu_reason(m))
                 for name, m in backend.named_children()]
    for name, m in backend.named_modules():
        if isinstance(m, nn.ModuleList):
            placement += [Placement(module=f"{prefix}{name}.{i}", device="gpu", reason=_gpu_reason(b))
                          for i, b in enumerate(m)]
    return placement


def _adapter_of(backend: nn.Module) -> nn.Module:
    adapters = [m for m in backend.modules() if isinstance(m, ADAPTER_TYPES)]
    if not adapters:
        raise PartitionError("the dense part has no adapter (RateAdapter, ExpTemporalAdapter, MembraneAdapter): "
                             "there is no point where spikes become continuous values to cut at")
    return adapters[0]


def partition(model: nn.Module, cut: str | None = None, dt_s: float | None = None) -> Partition:
    """Split ``model`` (a HybridModel or a flat nn.Sequential); see the module docstring. ``dt_s``: the
    time step the spiking part will be exported at (neurons with their own dt must match it)."""
    if isinstance(model, HybridModel):
        front = model.frontend
        modules = chain_modules(front)
        problems = [] if isinstance(front, SpikingSequential) else _loihi_problems(modules, "frontend.", dt_s)
        if problems:
            raise PartitionError("the spiking front-end has modules Loihi cannot run:\n  - " + "\n  - ".join(problems))
        adapter = _adapter_of(model.backend)
        end = _cut_index(modules, cut, "frontend.", hasattr(model, "feedback"))
        placement = [Placement(module=f"frontend.{name}", device="loihi", reason=_loihi_reason(m))
                     for name, m in modules[:end]]
        placement += _tail_placement(modules[end:], "frontend.")
        placement += _dense_placement(model.backend, "backend.", adapter)
        if hasattr(model, "feedback"):
            placement.append(Placement(module="feedback", device="gpu", reason="feedback map: the dense output becomes "
                                       "input currents of the spiking part at the next window"))
        head, dense = _split_front(front, modules, end, model.backend)
        return Partition(head, dense, adapter, placement, _paths(modules[:end], "frontend."))
    if not isinstance(model, nn.Sequential):
        raise PartitionError(f"{type(model).__name__} is neither a HybridModel(frontend, backend) nor an nn.Sequential; "
                             "wrap the spiking front-end and the dense back-end in one of them")
    return _partition_sequential(model, cut, dt_s)


def _cut_index(modules: list[tuple[str, nn.Module]], cut: str | None, prefix: str, feedback: bool = False) -> int:
    """How many modules of the chain stay on Loihi for ``cut`` (a population's path; None: all of them)."""
    if cut is None:
        return len(modules)
    names = [prefix + name for name, m in modules if is_neuron(m)]
    if cut not in names:
        raise PartitionError(f"cut={cut!r} is not a spiking population of the chain; valid cuts: {names}")
    if feedback and cut != names[-1]:
        raise PartitionError(f"cut={cut!r}: a model with feedback keeps its whole chain on Loihi (the feedback "
                             f"enters it at the next window); use cut={names[-1]!r} or none")
    return 1 + [prefix + name for name, _ in modules].index(cut)


def _tail_placement(tail: list[tuple[str, nn.Module]], prefix: str) -> list[Placement]:
    """Placements of the chain's modules after the cut: on the GPU, in front of the dense part."""
    return [Placement(module=f"{prefix}{name}", device="gpu", reason=TAIL_REASON if is_neuron(m) else
                      "synapses after the chosen cut: dense on the GPU") for name, m in tail]


def _split_front(front: nn.Module, modules: list[tuple[str, nn.Module]], end: int, dense: nn.Module
                 ) -> tuple[nn.Module, nn.Module]:
    """The chain's first ``end`` modules (Loihi) and the dense part with the rest in front (a :class:`GpuTail`)."""
    if end == len(modules):
        return front, dense
    if isinstance(front, SpikingSequential):
        return SpikingSequential(*front.layers[:end]), GpuTail(SpikingSequential(*front.layers[end:]), dense)
    return _named_sequential(modules[:end]), GpuTail(_named_sequential(modules[end:]), dense)


def _named_sequential(modules: list[tuple[str, nn.Module]]) -> nn.Sequential:
    """An nn.Sequential keeping the user's child names (the NIR nodes are named after them)."""
    from collections import OrderedDict

    return nn.Sequential(OrderedDict(modules))


def cuts(model: nn.Module) -> list[str]:
    """Every valid ``cut=`` of a HybridModel or flat nn.Sequential: its chain's spiking populations, in
    order (the last is the default: the whole chain on Loihi). A model with feedback has only the last."""
    if isinstance(model, HybridModel):
        names = [f"frontend.{name}" for name, m in chain_modules(model.frontend) if is_neuron(m)]
        return names[-1:] if hasattr(model, "feedback") else names
    if isinstance(model, nn.Sequential):
        modules = list(model.named_children())
        end = len(partition(model).spiking)
        return [name for name, m in modules[:end] if is_neuron(m)]
    raise PartitionError(f"{type(model).__name__}: cuts are chosen for a HybridModel or a flat nn.Sequential; a "
                         "captured model is cut where its spikes first meet an operation Loihi cannot run")


def captured_placement(model: nn.Module, cap) -> list[Placement]:
    """Every module of a captured model (:mod:`neurodeploy.compiler.capture`), by its own path: the spiking
    chain on Loihi (a BatchNorm folded into the layer before it), a container by where its modules run,
    everything else on the GPU, each with its reason (a module inside a block that has one, e.g. a Linear
    inside an attention block, gives the block's)."""
    on_loihi = {path: m for path, m in cap.chain}
    inherited, placement = {}, []
    for path, m in model.named_modules():
        if not path or any(path.startswith(p + ".") for p in on_loihi):
            continue
        if path in on_loihi:
            placement.append(Placement(module=path, device="loihi", reason=_chain_reason(cap, path, m)))
            continue
        inside = [p for p in on_loihi if p.startswith(path + ".")]
        if inside:
            placement.append(_container_placement(model, path, inside, cap))
            continue
        parent = next((inherited[p] for p in sorted(inherited, key=len, reverse=True) if path.startswith(p + ".")),
                      None)
        own = _gpu_reason(m, None) or _attention_by_name(m)
        if own is not None:
            inherited[path] = own
        placement.append(Placement(module=path, device="gpu", reason=own or parent or _after_cut_reason(cap, path, m)))
    return placement


def _chain_reason(cap, path: str, m: nn.Module) -> str:
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        paths = [p for p, _ in cap.chain]
        return f"BatchNorm folded into {paths[paths.index(path) - 1]} (eval mode: its running statistics, exact)"
    return _loihi_reason(m)


def _container_placement(model: nn.Module, path: str, inside: list[str], cap) -> Placement:
    """A container of chain modules: on Loihi when all its leaf modules are, else split by the cut."""
    from neurodeploy.compiler.capture import units

    leaves = [p for p, _ in units(model.get_submodule(path))]
    if len(inside) == len(leaves):
        return Placement(module=path, device="loihi", reason="holds modules Loihi runs")
    return Placement(module=path, device="gpu", reason=f"holds modules of both parts: the cut at {cap.chain[-1][0]} "
                     f"is inside it ({len(inside)} of its {len(leaves)} modules on Loihi)")


def _attention_by_name(m: nn.Module) -> str | None:
    """Attention blocks of other libraries (SpikingJelly's ``SpikingSelfAttention``, ...), by their class name."""
    return "Q·K^T between data-dependent tensors -> GPU" if "Attention" in type(m).__name__ else None


def _after_cut_reason(cap, path: str, m: nn.Module) -> str:
    if not cap.chain:  # the model runs wholly on the GPU
        return cap.stop if path == cap.blocker_path else \
            f"the whole model runs on the GPU: Loihi cannot run its start ({cap.stop_at})"
    if cap.stop and path == cap.blocker_path:
        return f"Loihi's part stops here: {cap.stop}"
    if is_neuron(m) and cap.stop:
        return (f"spiking population after Loihi's part, which stops at {cap.stop_at}: stepped on the GPU by its "
                "framework (dense, every MAC)")
    return f"after the cut at {cap.chain[-1][0]}: continuous values -> GPU"


def blocking_problems(rest: list[tuple[str, nn.Module]], dt_s: float | None = None) -> list[str] | None:
    """Why Loihi's part stopped at ``rest[0]`` although spiking populations follow it (before any adapter):
    that module's conversion problems (e.g. a MaxPool between two spiking layers), possibly none; None when
    no population follows (the stop is the cut)."""
    upto = next((i for i, (_, m) in enumerate(rest) if isinstance(m, ADAPTER_TYPES)), len(rest))
    if not any(is_neuron(m) for _, m in rest[:upto]):
        return None
    return _loihi_problems(rest[:1], "", dt_s)


def _partition_sequential(model: nn.Sequential, cut: str | None, dt_s: float | None) -> Partition:
    modules = list(model.named_children())
    runnable = 0
    for i, (name, m) in enumerate(modules):
        if _loihi_problems([(name, m)], "") or isinstance(m, ADAPTER_TYPES):
            break
        runnable = i + 1
    chain_end = max((i + 1 for i in range(runnable) if is_neuron(modules[i][1])), default=0)
    problems = _loihi_problems(modules[:chain_end], "", dt_s) or blocking_problems(modules[runnable:], dt_s) or []
    if chain_end == 0:
        problems.append("the spiking part must end on a spiking population (the spikes that cross the cut); "
                        "none found at the start")
    if problems:
        raise PartitionError("cannot place the model:\n  - " + "\n  - ".join(problems))
    end = _cut_index(modules[:chain_end], cut, "")
    front, dense = _named_sequential(modules[:end]), nn.Sequential(*[m for _, m in modules[chain_end:]])
    if len(dense) == 1:
        dense = dense[0]  # a single back-end module (e.g. a StreamingBackend) is the dense part itself
    adapter = _adapter_of(dense)
    first_leaf = next(m for m in dense.modules() if not list(m.children()))
    if first_leaf is not adapter:
        raise PartitionError(f"after the cut, {modules[chain_end][0]} ({type(modules[chain_end][1]).__name__}) comes "
                             "before the adapter; move the adapter right after the last spiking population")
    placement = [Placement(module=name, device="loihi", reason=_loihi_reason(m)) for name, m in modules[:end]]
    placement += _tail_placement(modules[end:chain_end], "")
    for name, m in modules[chain_end:]:
        if m is adapter:
            placement.append(Placement(module=name, device="gpu", reason="adapter: spikes -> continuous tokens (the cut)"))
        elif list(m.children()):
            placement += _dense_placement(m, f"{name}.", adapter)
        else:
            placement.append(Placement(module=name, device="gpu", reason=_gpu_reason(m)))
    if end < chain_end:
        dense = GpuTail(_named_sequential(modules[end:chain_end]), dense)
    return Partition(front, dense, adapter, placement, _paths(modules[:end], ""))
