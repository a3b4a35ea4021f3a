"""Graph capture of a model written the ordinary way: any ``nn.Module`` whose ``forward`` loops over time.

Tracing through hooks. torch.fx cannot trace a Python loop over a tensor's length with stateful
neurons (snnTorch keeps ``mem`` on the module between calls), and ``torch.export`` unrolls the loop
and inlines the neurons so that the synaptic layers and populations are no longer modules. Hooks see
exactly what the user wrote, module by module:

1. The unmodified model runs once on the example input with a forward hook on every leaf module
   (a neuron module counts as a leaf: snnTorch ``RLeaky``'s recurrent ``nn.Linear`` belongs to it).
2. The first module called is the loop's first; it is called once per step (``T`` calls), on
   ``x[:, t]`` (batch-major input ``(B, T, ...)``) or ``x[t]`` (time-major ``(T, B, ...)``): that
   gives the layout.
3. The spiking chain is the run of calls in step 0 where each module takes the previous one's output
   and Loihi can run it (synaptic layers, pooling, reshaping, neurons); the cut is after the chain's
   last population, where its spikes first meet an operation Loihi cannot run.
4. The dense part is the user's own ``forward`` after the cut, unchanged: :class:`DenseRemainder`
   runs it with the chain's modules standing in (the cut population returns the spikes given to it,
   step by step; the modules before it return zeros of the shapes they produced). It is exported to
   ONNX at the model's ``T`` (a Python loop fixes the number of steps), with a dynamic batch.

The capture is checked before anything is written: the chain run with each framework's step
convention, then :class:`DenseRemainder`, must reproduce the unmodified model's output.
"""
from __future__ import annotations

import copy
import traceback
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from neurodeploy.compiler.partition import blocking_problems
from neurodeploy.errors import PartitionError
from neurodeploy.models.time_stepping import is_neuron, output_spikes

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # neurodeploy/, skipped when finding the user's frame


@dataclass
class Call:
    path: str
    module: nn.Module
    inp: object
    out: object
    where: str = ""  # the line of the user's source that made the call


def _user_line() -> str:
    """``file:line: code`` of the innermost frame outside torch and neurodeploy: where the user's code called."""
    skip = (str(Path(torch.__file__).parent), str(PACKAGE_DIR))
    for frame in reversed(traceback.extract_stack()[:-1]):
        if not frame.filename.startswith(skip):
            return f"{frame.filename}:{frame.lineno}: {(frame.line or '').strip()}"
    return ""


@dataclass
class Capture:
    """What the hooks found: the chain ``(path, module)``, the layout, and the shapes each chain call returned."""

    chain: list[tuple[str, nn.Module]]
    time_dim: int  # 1: the model takes (B, T, ...); 0: (T, B, ...)
    num_steps: int
    multi_step: bool = False  # the chain's modules take all steps in one call, (T, B, ...) (SpikingJelly 'm' mode)
    outputs: dict[str, object] = field(default_factory=dict)  # path -> one step's output (tensor or tuple)


def units(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The leaf modules of ``model``, a neuron module counting as one leaf."""
    found, skip = [], []
    for path, module in model.named_modules():
        if any(path.startswith(p + ".") for p in skip) or module is model:
            continue
        if is_neuron(module):
            found.append((path, module))
            skip.append(path)
        elif not list(module.children()):
            found.append((path, module))
    return found


def trace_calls(model: nn.Module, x: torch.Tensor) -> tuple[list[Call], object]:
    """Every leaf call of one forward pass, in order, and the model's output."""
    calls: list[Call] = []
    in_step0 = [True]  # until the first module is called again; only step 0's source lines are reported

    def record(module, args, out, path):
        if calls and module is calls[0].module:
            in_step0[0] = False
        calls.append(Call(path, module, args[0] if args else None, out, _user_line() if in_step0[0] else ""))

    hooks = [module.register_forward_hook(lambda m, args, out, path=path: record(m, args, out, path))
             for path, module in units(model)]
    try:
        with torch.no_grad():
            y = model(x)
    finally:
        for h in hooks:
            h.remove()
    return calls, y


def _first(value):
    return value[0] if isinstance(value, (tuple, list)) else value


def _layout(calls: list[Call], x: torch.Tensor) -> tuple[int, int, bool]:
    """(time_dim, T, multi_step) from the first module's calls: one per step on x[:, t] or x[t], or one
    call on the whole time-major input (multi-step modules, as SpikingJelly's ``step_mode='m'``)."""
    first = calls[0]
    steps = sum(1 for c in calls if c.module is first.module)
    inp = first.inp if isinstance(first.inp, torch.Tensor) else None
    if steps == 1 and inp is not None and inp.shape == x.shape and torch.equal(inp, x):
        return 0, int(x.shape[0]), True
    for dim in (1, 0):
        if inp is not None and x.shape[dim] == steps and inp.shape == x.select(dim, 0).shape and \
                torch.equal(inp, x.select(dim, 0)):
            return dim, steps, False
    raise PartitionError(
        f"{first.path} ({type(first.module).__name__}) is the first module the model calls, {steps} time(s), but "
        f"not on x[:, t] or x[t] of the input {tuple(x.shape)}, nor once on all of x: the model must feed each "
        "step's input (or the whole time-major sequence) to its first synaptic layer")


def _loihi_runnable(path: str, module: nn.Module, dt_s: float | None) -> bool:
    from neurodeploy.exporters import conversion_problems
    from neurodeploy.models.adapters import ADAPTER_TYPES

    return not isinstance(module, ADAPTER_TYPES) and not conversion_problems(path, module, dt_s)


def _chain(step0: list[Call], dt_s: float | None) -> list[Call]:
    """The calls of step 0 that each take the previous one's output and run on Loihi, up to the last neuron."""
    chain = [step0[0]]
    for call in step0[1:]:
        if not (_first(call.inp) is _first(chain[-1].out) and _loihi_runnable(call.path, call.module, dt_s)):
            break
        chain.append(call)
    last = max((i for i, c in enumerate(chain) if is_neuron(c.module)), default=None)
    if last is None:
        names = ", ".join(f"{c.path} ({type(c.module).__name__})" for c in chain)
        raise PartitionError(f"no spiking population at the start of the model's time step (it begins {names}); "
                             "the part Loihi runs must end on a neuron module (snnTorch, norse or neurodeploy)")
    return chain[: last + 1]


def _blocked(step0: list[Call], chain: list[Call], dt_s: float | None) -> list[str]:
    """Why the chain stopped where neurons still follow (e.g. a MaxPool between two spiking layers)."""
    rest = step0[len(chain):]
    problems = blocking_problems([(c.path, c.module) for c in rest], dt_s)
    if problems is None:
        return []
    blocker = rest[0]
    problems = [f"{p} (called at {blocker.where})" if blocker.where else p for p in problems]
    return problems or [f"{blocker.path}: {type(blocker.module).__name__} after {chain[-1].path} does not take its "
                        "output directly; the spiking chain stops there"]


def capture(model: nn.Module, x: torch.Tensor, dt_s: float | None = None) -> Capture:
    """Run the hooks (see the module docstring) and return the spiking chain and the layout."""
    calls, _ = trace_calls(model, x)
    if not calls:
        raise PartitionError(f"{type(model).__name__} called no submodule: nothing to place")
    time_dim, steps, multi = _layout(calls, x)
    step0 = calls[: next((i for i, c in enumerate(calls[1:], 1) if c.module is calls[0].module), len(calls))]
    chain = _chain(step0, dt_s)
    problems = _blocked(step0, chain, dt_s)
    if problems and len(chain) < len(step0):
        raise PartitionError("the model's spiking part has modules Loihi cannot run:\n  - " + "\n  - ".join(problems))
    for c in chain:
        count, want = sum(1 for call in calls if call.module is c.module), 1 if multi else steps
        if count != want:
            raise PartitionError(f"{c.path} is called {count} times for {steps} time steps; each module of the "
                                 "spiking part must be called once per step (or once, on all steps)")
    return Capture([(c.path, c.module) for c in chain], time_dim, steps, {c.path: c.out for c in chain}, multi)


def spiking_sequential(cap: Capture) -> nn.Sequential:
    """The chain as a per-step ``nn.Sequential`` (children ``0, 1, ...``: module paths contain dots); a
    multi-step chain from copies switched to single steps (the user's modules keep their mode)."""
    modules = [copy.deepcopy(m) if cap.multi_step else m for _, m in cap.chain]
    for m in modules:
        if cap.multi_step and hasattr(m, "step_mode"):
            m.step_mode = "s"
    return nn.Sequential(OrderedDict((str(i), m) for i, m in enumerate(modules)))


def _zeros_like_output(out, batch: int, batch_dim: int = 0):
    """Zeros shaped as a recorded output, with ``batch`` samples along ``batch_dim``."""
    def zeros(t):
        if not isinstance(t, torch.Tensor):
            return None
        shape = list(t.shape)
        shape[batch_dim] = batch
        return torch.zeros(shape, dtype=t.dtype)
    return tuple(zeros(t) for t in out) if isinstance(out, tuple) else zeros(out)


class DenseRemainder(nn.Module):
    """The user's model after the cut: ``forward(spikes (B, T, N))`` runs the unmodified ``forward`` with the
    spiking chain's modules standing in, so everything downstream of the cut is the user's own code."""

    def __init__(self, model: nn.Module, cap: Capture, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.model, self.cap, self.input_shape = model, cap, tuple(input_shape)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        batch, steps = spikes.shape[0], spikes.shape[1]
        shape = (batch, steps, *self.input_shape) if self.cap.time_dim == 1 else (steps, batch, *self.input_shape)
        x = torch.zeros(shape, dtype=spikes.dtype)
        with _stand_ins(self.cap, spikes):
            return _first(self.model(x))


@contextmanager
def _stand_ins(cap: Capture, spikes: torch.Tensor):
    """Replace each chain module's forward: the cut population returns ``spikes[:, t]`` at its t-th call
    (its other outputs, e.g. snnTorch's ``mem``, as zeros), the others zeros of their recorded shapes."""
    batch, cut = spikes.shape[0], cap.chain[-1][1]
    batch_dim = 1 if cap.multi_step else 0
    step = {"t": 0}

    def cut_forward(*args, **kwargs):
        s = spikes.transpose(0, 1) if cap.multi_step else spikes[:, step["t"]]
        step["t"] += 1
        out = cap.outputs[cap.chain[-1][0]]
        if isinstance(out, tuple):
            return (s, *_zeros_like_output(out, batch, batch_dim)[1:])
        return s

    patched = [(m, m.forward) for _, m in cap.chain]
    try:
        for path, module in cap.chain:
            module.forward = cut_forward if module is cut else \
                (lambda *a, out=cap.outputs[path], **k: _zeros_like_output(out, batch, batch_dim))
        yield
    finally:
        for module, forward in patched:
            module.forward = forward


def dense_remainder(model: nn.Module, cap: Capture, x: torch.Tensor, tol: float = 1e-5) -> DenseRemainder:
    """:class:`DenseRemainder` of a copy of ``model``, checked: given the chain's spikes (run with each
    framework's step convention) it reproduces the unmodified model's output on ``x``. The check runs in
    float32, the precision the frameworks' neurons return spikes in (snnTorch's are float32 always)."""
    own = copy.deepcopy(model)
    dense = DenseRemainder(own, _copied(cap, own), tuple(x.shape[2:]))
    model32 = copy.deepcopy(model).float().eval()
    x32 = x.float()
    bmajor = x32 if cap.time_dim == 1 else x32.transpose(0, 1)
    with torch.no_grad():
        want = _first(model32(x32))
        cut = output_spikes(spiking_sequential(_copied(cap, model32)), bmajor)
        got = _first(DenseRemainder(model32, _copied(cap, model32), tuple(bmajor.shape[2:]))(cut))
    if got.shape != want.shape or not torch.allclose(got, want, atol=tol, rtol=0):
        err = float((got - want).abs().max()) if got.shape == want.shape else float("nan")
        raise PartitionError(f"after the cut at {cap.chain[-1][0]}, the model does not depend on its spikes alone "
                             f"(max difference {err:.3g} when only they are given): it may read the membrane "
                             "potential or another output of the spiking part; return and use the spikes only")
    return dense


def _copied(cap: Capture, copy_of: nn.Module) -> Capture:
    """``cap`` with its modules looked up by path in ``copy_of`` (a deep copy of the captured model)."""
    modules = dict(copy_of.named_modules())
    return Capture([(p, modules[p]) for p, _ in cap.chain], cap.time_dim, cap.num_steps, cap.outputs, cap.multi_step)
