"""Graph capture of a model written the ordinary way: any ``nn.Module`` whose ``forward`` loops over time,
or takes all steps at once (SpikingJelly's multi-step mode, time folded into the batch).

Tracing through hooks. torch.fx cannot trace a Python loop over a tensor's length with stateful
neurons (snnTorch keeps ``mem`` on the module between calls), and ``torch.export`` unrolls the loop
and inlines the neurons so that the synaptic layers and populations are no longer modules. Hooks see
exactly what the user wrote, module by module, and a ``TorchFunctionMode`` sees the tensor operations
between the modules (``x.flatten(0, 1)``, ``F.max_pool2d``, ``z.view(B, -1)``), each with the source line
that called it:

1. The unmodified model runs once on the example input with a forward hook on every leaf module
   (a neuron module counts as a leaf: snnTorch ``RLeaky``'s recurrent ``nn.Linear`` belongs to it) and
   every operation called outside them recorded.
2. The first module called is the loop's first; it is called once per step (``T`` calls), on
   ``x[:, t]`` (batch-major input ``(B, T, ...)``) or ``x[t]`` (time-major ``(T, B, ...)``): that
   gives the layout. Called once, on all of ``x`` ``(T, B, ...)`` or on ``x.flatten(0, 1)`` ``(T*B, ...)``
   (SpikingJelly's ``SeqToANNContainer`` / ``step_mode='m'``), the model is multi-step, time-major.
3. The spiking chain follows the data: each next module takes the previous one's output through
   reshapes only (``view``, ``reshape``, ``flatten``, ``contiguous``, folding time into the batch and back),
   and Loihi can run it (synaptic layers, sum pooling, neurons; a ``BatchNorm`` right after a Conv or
   Linear is folded into it, exactly, in eval mode: ``w' = w g/sqrt(var + eps)``,
   ``b' = (b - mean) g/sqrt(var + eps) + beta``). A reshape that flattens a step's sample becomes a
   ``Flatten`` node, ``F.avg_pool2d`` called as a function becomes ``nn.AvgPool2d`` (sum pooling); any
   other operation (a max pool, a product of two data-dependent tensors) stops it.
   The chain also ends at the first module whose output code outside the chain reads too (a residual
   ``x + identity``). The cut is after the chain's last population; every later module, spiking neurons
   included, runs on the GPU in the user's own code, stepped as its framework steps it. Where the chain
   holds no population (a max pool before the first one), the whole model runs on the GPU
   (:class:`WholeModel`), with the reason (:func:`gpu_only_reason`).
4. The dense part is the user's own ``forward`` after the cut, unchanged: :class:`DenseRemainder`
   runs it with the chain's modules standing in (the cut population returns the spikes given to it,
   step by step, in its own shape; the modules before it return zeros of the shapes they produced). It
   is exported to ONNX at the model's ``T`` (a Python loop fixes the number of steps), with a dynamic batch.
   Where that code reads the cut population's membrane (snnTorch's ``mem``, a norse state's ``v``) and not
   its spikes, the cut carries the voltage instead (``reads="v"``: the stand-in returns NaN spikes, so a
   model that also reads the spikes cannot pass the check below).

The capture is checked before anything is written: the chain run with each framework's step
convention, then :class:`DenseRemainder`, must reproduce the unmodified model's output.
"""
from __future__ import annotations

import copy
import dataclasses
import traceback
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from neurodeploy.errors import NeurodeployError, PartitionError, raised_at
from neurodeploy.models.time_stepping import is_neuron, output_spikes, reset_memories

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # neurodeploy/, skipped when finding the user's frame
RESHAPES = frozenset({"reshape", "view", "flatten", "unflatten", "squeeze", "unsqueeze", "view_as", "reshape_as",
                      "contiguous", "clone", "detach", "float", "double", "to"})
"""Operations between two modules that move no value: the chain follows the data through them."""
FUNCTIONAL_POOLING = {"avg_pool2d": nn.AvgPool2d}
"""Operations called as functions that Loihi runs as the module they equal (sum pooling folded into the
next synapses): ``F.avg_pool2d(x, k, stride, padding)`` is ``nn.AvgPool2d(k, stride, padding)``."""
FOLDABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)
BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


@dataclass
class Call:
    """One call of a leaf module (``module`` set) or one tensor operation between modules (``op`` set)."""

    path: str
    module: nn.Module | None
    inp: object
    out: object
    where: str = ""  # the line of the user's source that made the call
    op: str = ""
    inputs: tuple = ()  # every tensor argument (operations)
    args: tuple = ()  # the operation's arguments as called (to rebuild a functional pooling as a module)
    kwargs: dict = field(default_factory=dict)


def _user_line() -> str:
    """``file:line: code`` of the innermost frame outside torch and neurodeploy: where the user's code called."""
    skip = (str(Path(torch.__file__).parent), str(PACKAGE_DIR))
    for frame in reversed(traceback.extract_stack()[:-1]):
        if not frame.filename.startswith(skip):
            return f"{frame.filename}:{frame.lineno}: {(frame.line or '').strip()}"
    return ""


@dataclass
class Capture:
    """What the hooks found: the chain ``(path, module)`` (BatchNorms included, folded later), the layout,
    the shapes each chain call returned, and why Loihi's part stops where it does."""

    chain: list[tuple[str, nn.Module]]
    time_dim: int  # 1: the model takes (B, T, ...); 0: (T, B, ...)
    num_steps: int
    outputs: dict[str, object] = field(default_factory=dict)  # path -> one call's output (tensor or tuple)
    multi_step: bool = False  # the chain's modules take all steps in one call, (T, B, ...) or (T*B, ...)
    batch: int = 1  # the example's batch (to tell (T, B, ...) from (T*B, ...) in a multi-step model)
    before: dict[int, list[tuple[str, nn.Module]]] = field(default_factory=dict)  # chain index -> modules in front
    # of it: a functional sum pooling (as nn.AvgPool2d), a Flatten where a reshape flattens a sample
    stop: str = ""  # why the chain ends before later populations ("" when none follows)
    stop_at: str = ""  # the same, short: what stops it and the line (placement reasons of later populations)
    blocker_path: str = ""  # the module that stops it, where it is a module
    later_neurons: list[str] = field(default_factory=list)  # populations after the cut: on the GPU
    lines: dict[str, str] = field(default_factory=dict)  # chain path -> the user's line that calls it


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


def _tensors(value) -> tuple:
    if isinstance(value, torch.Tensor):
        return (value,)
    if isinstance(value, (tuple, list)):
        return tuple(t for v in value for t in _tensors(v))
    if isinstance(value, dict):
        return tuple(t for v in value.values() for t in _tensors(v))
    return ()


class _Operations(TorchFunctionMode):
    """Records the tensor operations called outside the leaf modules (``depth`` 0), with the user's line."""

    def __init__(self, calls: list[Call], depth: list[int], starts: list[int]) -> None:
        super().__init__()
        self.calls, self.depth, self.starts = calls, depth, starts

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if self.depth[0] == 0 and _tensors(out):
            inputs = _tensors((args, kwargs or {}))
            name = getattr(func, "__name__", str(func))
            where = _user_line() if self.starts[0] <= 1 else ""
            self.calls.append(Call("", None, inputs[0] if inputs else None, out, where, name, inputs,
                                   tuple(args) if name in FUNCTIONAL_POOLING else (),
                                   {k: v for k, v in (kwargs or {}).items() if not isinstance(v, torch.Tensor)}))
        return out


def trace_calls(model: nn.Module, x: torch.Tensor) -> tuple[list[Call], object]:
    """Every leaf call and every operation between them of one forward pass, in order, and the output
    (source lines are kept for the first time step only: the loop repeats them)."""
    calls: list[Call] = []
    depth, first, starts = [0], [], [0]  # starts: calls of the first module so far

    def enter(module, args):
        depth[0] += 1

    def record(module, args, out, path):
        depth[0] -= 1
        if not first:
            first.append(module)
        starts[0] += module is first[0]
        calls.append(Call(path, module, args[0] if args else None, out, _user_line() if starts[0] == 1 else ""))

    hooks = []
    for path, module in units(model):
        hooks.append(module.register_forward_pre_hook(enter))
        hooks.append(module.register_forward_hook(lambda m, args, out, path=path: record(m, args, out, path)))
    reset_memories(model)
    try:
        with torch.no_grad(), _Operations(calls, depth, starts):
            y = model(x)
    except NeurodeployError:
        raise
    except Exception as exc:
        raise PartitionError(f"{type(model).__name__} raised {raised_at(exc)} when run on the example inputs of "
                             f"shape {tuple(x.shape)}: pass inputs= as the model takes them") from exc
    finally:
        for h in hooks:
            h.remove()
        reset_memories(model)
    return calls, y


def _first(value):
    return value[0] if isinstance(value, (tuple, list)) else value


def _layout(first: Call, steps: int, x: torch.Tensor) -> tuple[int, int, bool]:
    """(time_dim, T, multi_step) from the first module's calls: one per step on x[:, t] or x[t], or one
    call on the whole time-major input, as it is or with time folded into the batch (``x.flatten(0, 1)``),
    the input given time-major or batch-major and made time-major inside (``x.permute(1, 0, ...)``, as the
    original Spikformer does)."""
    inp = first.inp if isinstance(first.inp, torch.Tensor) else None
    if steps == 1 and inp is not None and inp.numel() == x.numel() and inp.shape[1:] in (x.shape[1:], x.shape[2:]):
        if torch.equal(inp.reshape(x.shape), x):
            return 0, int(x.shape[0]), True
        swapped = x.transpose(0, 1)
        if torch.equal(inp.reshape(swapped.shape), swapped):
            return 1, int(x.shape[1]), True
    for dim in (1, 0):
        if inp is not None and x.shape[dim] == steps and inp.shape == x.select(dim, 0).shape and \
                torch.equal(inp, x.select(dim, 0)):
            return dim, steps, False
    raise PartitionError(
        f"{first.path} ({type(first.module).__name__}) is the first module the model calls, {steps} time(s), but "
        f"not on x[:, t] or x[t] of the input {tuple(x.shape)}, nor once on all of x (as it is or as "
        "x.flatten(0, 1)): the model must feed each step's input (or the whole time-major sequence) to its first "
        "synaptic layer")


def _producers(calls: list[Call]) -> dict[int, Call]:
    """id(tensor) -> the call or operation that returned it; an operation that changed a tensor in place
    (``x.mul_(2)``, ``F.relu(x, inplace=True)``) is that tensor's producer from then on."""
    made = {}
    for c in calls:
        for t in _tensors(c.out):
            if _in_place(c) or id(t) not in made:
                made[id(t)] = c
    return made


def _in_place(c: Call) -> bool:
    return c.module is None and (c.op.endswith("_") and not c.op.startswith("_") or c.kwargs.get("inplace") is True)


def _through_reshapes(src, dst, made: dict[int, Call], pooling: bool = False) -> tuple[bool, Call | None]:
    """Whether ``dst`` is ``src`` or comes from it through operations that move no value (:data:`RESHAPES`),
    with ``pooling`` also through one functional sum pooling (:data:`FUNCTIONAL_POOLING`), returned."""
    src, pool = _first(src), None
    while dst is not None:
        op = made.get(id(dst))
        if op is not None and _in_place(op):
            return False, None  # changed in place after it was made: not the value the module returned
        if dst is src:
            return True, pool
        if op is None or op.module is not None:
            return False, None
        if op.op in FUNCTIONAL_POOLING and pooling and pool is None:
            pool = op
        elif op.op not in RESHAPES or _in_place(op):
            return False, None
        dst = op.inp
    return False, None


def _operation_between(src, dst, made: dict[int, Call]) -> Call | None:
    """The first operation other than a reshape on a path from ``src`` to ``dst`` (None: no path)."""
    src = _first(src)

    def back(t, seen) -> list[Call] | None:
        c = made.get(id(t))
        if t is src:
            return [c] if c is not None and _in_place(c) else []
        if c is None or id(c) in seen:
            return None
        seen.add(id(c))
        for parent in (c.inputs if c.module is None else _tensors(c.inp)):
            path = back(parent, seen)
            if path is not None:
                return path + [c]
        return None

    path = back(dst, set())
    return next((c for c in path or [] if c.module is not None or c.op not in RESHAPES), None)


def _loihi_problems(call: Call, previous: Call | None, dt_s: float | None) -> list[str]:
    from neurodeploy.exporters import conversion_problems
    from neurodeploy.models.adapters import ADAPTER_TYPES

    module = call.module
    if isinstance(module, ADAPTER_TYPES):
        return [f"{call.path}: a neurodeploy adapter turns spikes into continuous values (the cut)"]
    if isinstance(module, BATCHNORMS):
        return batchnorm_problems(call.path, module, previous.module if previous else None)
    return conversion_problems(call.path, module, dt_s)


def batchnorm_problems(path: str, bn: nn.Module, previous: nn.Module | None) -> list[str]:
    """Why ``bn`` cannot be folded into ``previous`` (the module whose output it takes): [] when it can."""
    if bn.training:
        return [f"{path}: BatchNorm in training mode normalises by each batch's statistics; call model.eval() "
                "so that it uses its running statistics, which fold exactly into the preceding layer"]
    if not isinstance(previous, FOLDABLE) or not bn.track_running_stats or bn.running_mean is None:
        return [f"{path}: BatchNorm folds into a Conv or Linear that feeds it directly (with running statistics); "
                "it follows " + (type(previous).__name__ if previous is not None else "no layer") +
                ": move it right after a Conv/Linear or fold it by hand"]
    return []


def _step_shape(t, cap_multi: bool, steps: int, batch: int) -> tuple[int, ...] | None:
    """One sample's shape at one step: ``(B, ...)`` per step; ``(T, B, ...)`` or ``(T*B, ...)`` multi-step."""
    t = _first(t)
    if not isinstance(t, torch.Tensor):
        return None
    if not cap_multi:
        return tuple(t.shape[1:])
    if t.dim() >= 2 and tuple(t.shape[:2]) == (steps, batch):
        return tuple(t.shape[2:])
    return tuple(t.shape[1:]) if t.dim() >= 1 and t.shape[0] == steps * batch else None


@dataclass
class _Walk:
    """The chain being followed: the calls so far, modules to insert before them, and why it stopped."""

    chain: list[Call]
    before: dict[int, list[tuple[str, nn.Module]]] = field(default_factory=dict)
    stop: str = ""
    stop_at: str = ""
    blocker_path: str = ""

    def stopped(self, full: str, short: str, path: str) -> None:
        self.stop, self.stop_at, self.blocker_path = full, short, path


def _blocker_text(call: Call, problems: list[str]) -> str:
    where = f" (called at {call.where})" if call.where else ""
    return "; ".join(problems) + where


def _short(what: str, where: str) -> str:
    """``what (file.py:97)`` from a ``/path/file.py:97: code`` source line."""
    if not where:
        return what
    file, line = where.split(":")[:2]
    return f"{what} ({Path(file).name}:{line})"


def _follow(step0: list[Call], made: dict[int, Call], dt_s: float | None, shape_of) -> _Walk:
    """The calls of step 0 that each take the previous one's output (through reshapes and functional sum
    pooling) and run on Loihi."""
    modules = [c for c in step0 if c.module is not None]
    first_problems = _loihi_problems(modules[0], None, dt_s)
    if first_problems:
        walk = _Walk([])
        walk.stopped(_blocker_text(modules[0], first_problems), "", modules[0].path)
        return walk
    walk = _Walk([modules[0]])
    for call in modules[1:]:
        previous = walk.chain[-1]
        linked, pool = _through_reshapes(previous.out, _first(call.inp), made, pooling=True)
        if not linked:
            walk.stopped(*_not_linked(previous, call, made))
            break
        problems, inserts = _loihi_problems(call, previous, dt_s), []
        if pool is not None and not problems:
            module = FUNCTIONAL_POOLING[pool.op](*pool.args[1:], **pool.kwargs)
            problems = _loihi_problems(Call(f"{pool.op}() at {pool.where}", module, None, None), None, dt_s)
            inserts.append((f"{pool.op}() as {type(module).__name__} (called at {pool.where})", module))
        a, b = shape_of(pool.out if pool is not None else previous.out), shape_of(call.inp)
        if not problems and a != b:
            if b is None or a is None or len(b) != 1 or torch.Size(a).numel() != b[0]:
                problems = [f"{call.path}: a reshape from {a} to {b} per sample; only flattening runs on Loihi"]
            else:
                inserts.append(("(flatten)", nn.Flatten()))
        if problems:
            walk.stopped(_blocker_text(call, problems), _short(f"{call.path} ({type(call.module).__name__})",
                                                                call.where), call.path)
            break
        if inserts:
            walk.before[len(walk.chain)] = inserts
        walk.chain.append(call)
    return walk


def _not_linked(previous: Call, call: Call, made: dict[int, Call]) -> tuple[str, str, str]:
    """Why ``call`` does not continue the chain after ``previous`` (the operation in between, by its line):
    the full text, a short one and the module path of what is in the way ("" for an operation)."""
    op = _operation_between(previous.out, _first(call.inp), made)
    if op is None:
        what = f"{call.path} ({type(call.module).__name__})"
        return (f"{what} does not take the output of {previous.path}" + (f" (called at {call.where})" if call.where
                                                                          else ""), _short(what, call.where), "")
    if op.module is not None:
        what = f"{op.path} ({type(op.module).__name__})"
        return f"{what} between {previous.path} and {call.path}", _short(what, op.where), op.path
    advice = FUNCTIONAL_ADVICE.get(op.op, "an operation Loihi's synapses and neurons cannot run")
    full = f"{op.op}() after {previous.path}: {advice}" + (f" (called at {op.where})" if op.where else "")
    return full, _short(f"{op.op}() after {previous.path}", op.where), ""


FUNCTIONAL_ADVICE = {
    "max_pool1d": "max pooling has no Loihi or NIR equivalent (use avg pooling, nn.AvgPool2d, and retrain)",
    "max_pool2d": "max pooling has no Loihi or NIR equivalent (use avg pooling, nn.AvgPool2d, and retrain)",
    "mul": "a product of two data-dependent tensors (or a gain) needs the GPU",
    "matmul": "a product of two data-dependent tensors needs the GPU",
    "mean": "a mean over a sample's values runs on the GPU",
}


def _stop_before_escapes(walk: _Walk, step0: list[Call]) -> None:
    """End the chain at the first module whose output (or a reshape of it) is also read by code outside the
    chain (a residual ``x + identity``, a readout of an inner layer): the GPU part needs it, so the cut
    comes no later than there."""
    for i, link in enumerate(walk.chain[:-1]):
        seen = {id(t) for t in _tensors(link.out)}
        for c in step0:
            ins = {id(t) for t in (c.inputs if c.module is None else _tensors(c.inp))}
            if not ins & seen or c is walk.chain[i + 1] or c in walk.chain[: i + 1]:
                continue
            if c.module is None and (c.op in RESHAPES or c.op in FUNCTIONAL_POOLING):
                seen |= {id(t) for t in _tensors(c.out)}
                continue
            what = f"{c.path} ({type(c.module).__name__})" if c.module is not None else f"{c.op}()"
            walk.stopped(f"{what} also reads the output of {link.path}" + (f" (called at {c.where})" if c.where
                                                                           else ""),
                         _short(f"{what} reading the output of {link.path}", c.where),
                         c.path if c.module is not None else "")
            walk.chain = walk.chain[: i + 1]
            return


def _chain_end(walk: _Walk, step0_modules: list[Call]) -> tuple[list[Call], list[str]]:
    """The chain up to its last population, and the populations called after the cut (GPU side); no chain
    where Loihi cannot run the model's first population (the walk says why: :func:`gpu_only_reason`)."""
    last = max((i for i, c in enumerate(walk.chain) if is_neuron(c.module)), default=None)
    if last is None:
        begins = step0_modules[0]
        why = walk.stop or "the model has no spiking population Loihi could run"
        walk.stopped(f"Loihi's part cannot start at {begins.path} ({type(begins.module).__name__}): {why}. The part "
                     "Loihi runs must start with synapses (Linear, Conv, sum pooling, BatchNorm after them) and end "
                     "on a neuron module (snnTorch, norse, SpikingJelly or neurodeploy); to run the start on Loihi, "
                     "change the first layers and retrain", walk.stop_at or _short(
                         f"{begins.path} ({type(begins.module).__name__})", begins.where), begins.path)
        return [], [c.path for c in step0_modules if is_neuron(c.module)]
    chain = walk.chain[: last + 1]
    later = [c.path for c in step0_modules[len(chain):] if is_neuron(c.module)]
    return chain, later


def capture(model: nn.Module, x: torch.Tensor, dt_s: float | None = None) -> Capture:
    """Run the hooks (see the module docstring) and return the spiking chain and the layout."""
    calls, _ = trace_calls(model, x)
    modules = [c for c in calls if c.module is not None]
    if not modules:
        raise PartitionError(f"{type(model).__name__} called no submodule: nothing to place")
    steps = sum(1 for c in modules if c.module is modules[0].module)
    time_dim, steps, multi = _layout(modules[0], steps, x)
    batch = int(x.shape[1 - time_dim])
    again = next((i for i, c in enumerate(calls) if c.module is modules[0].module and c is not modules[0]), len(calls))
    step0 = calls[:again]
    walk = _follow(step0, _producers(calls), dt_s, lambda t: _step_shape(t, multi, steps, batch))
    _stop_before_escapes(walk, step0)
    step0_modules = [c for c in step0 if c.module is not None]
    chain, later = _chain_end(walk, step0_modules)
    for c in chain:
        count, want = sum(1 for call in modules if call.module is c.module), 1 if multi else steps
        if count != want:
            raise PartitionError(f"{c.path} is called {count} times for {steps} time steps; each module of the "
                                 "spiking part must be called once per step (or once, on all steps)")
    before = {i: f for i, f in walk.before.items() if i < len(chain)}
    stop = (walk.stop, walk.stop_at, walk.blocker_path) if later or not chain else ("", "", "")
    return Capture([(c.path, c.module) for c in chain], time_dim, steps, {c.path: c.out for c in chain}, multi,
                   batch, before, *stop, later, {c.path: c.where for c in chain})


def loihi_modules(cap: Capture) -> list[tuple[str, nn.Module]]:
    """The chain as per-step modules with the labels reports use: BatchNorms folded into the layer before
    them (``torch.nn.utils.fusion``), functional sum pooling as its module, Flatten nodes where a reshape
    flattens a sample, multi-step modules
    switched to single steps (on copies: the user's modules keep their mode)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

    out: list[tuple[str, nn.Module]] = []
    for i, (path, m) in enumerate(cap.chain):
        out += cap.before.get(i, [])
        if isinstance(m, BATCHNORMS):
            label, layer = out[-1]
            fuse = fuse_linear_bn_eval if isinstance(layer, nn.Linear) else fuse_conv_bn_eval
            out[-1] = (f"{label} + {path} ({type(m).__name__}, folded)", fuse(layer, m))
            continue
        if cap.multi_step:
            m = copy.deepcopy(m)
            if hasattr(m, "step_mode"):
                m.step_mode = "s"
        out.append((f"{path} ({type(m).__name__})", m))
    return out


def spiking_sequential(cap: Capture) -> nn.Sequential:
    """The chain as a per-step ``nn.Sequential`` (children ``0, 1, ...``: module paths contain dots)."""
    return nn.Sequential(OrderedDict((str(i), m) for i, (_, m) in enumerate(loihi_modules(cap))))


def _zeros_like_output(out, cap: Capture, batch: int):
    """Zeros shaped as a recorded output, with ``batch`` samples: ``(batch, ...)`` per step, ``(T, batch, ...)``
    or ``(T*batch, ...)`` multi-step."""
    def zeros(t):
        if hasattr(t, "_fields"):  # a state namedtuple (norse): each of its tensors
            return type(t)(*[zeros(f) for f in t])
        if not isinstance(t, torch.Tensor):
            return None
        shape = list(t.shape)
        if not cap.multi_step:
            shape[0] = batch
        elif tuple(shape[:2]) == (cap.num_steps, cap.batch):
            shape[1] = batch
        else:
            shape[0] = cap.num_steps * batch
        return torch.zeros(shape, dtype=t.dtype)
    return tuple(zeros(t) for t in out) if isinstance(out, tuple) else zeros(out)


class DenseRemainder(nn.Module):
    """The user's model after the cut: ``forward(spikes (B, T, *cut_shape))`` runs the unmodified ``forward``
    with the spiking chain's modules standing in, so everything downstream of the cut is the user's own
    code (SpikingJelly's stateful neurons reset first, as ``functional.reset_net`` does)."""

    def __init__(self, model: nn.Module, cap: Capture, input_shape: tuple[int, ...], batch_dim: int = 0,
                 reads: str = "spikes") -> None:
        super().__init__()
        self.model, self.cap, self.input_shape = model, cap, tuple(input_shape)
        self.batch_dim = batch_dim  # where the model's output has its batch: moved to dim 0 (the bundle's layout)
        self.reads = reads  # "spikes", or "v": the cut population's membrane voltage (it returns NaN spikes)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        batch, steps = spikes.shape[0], spikes.shape[1]
        shape = (batch, steps, *self.input_shape) if self.cap.time_dim == 1 else (steps, batch, *self.input_shape)
        x = torch.zeros(shape, dtype=spikes.dtype)
        reset_memories(self.model)
        with _stand_ins(self.cap, spikes, self.reads):
            return _first(self.model(x)).movedim(self.batch_dim, 0)


class WholeModel(nn.Module):
    """A model Loihi cannot start (:func:`gpu_only_reason`), run wholly on the GPU as the user wrote it:
    ``forward(x (B, T, ...))`` resets its stateful neurons and returns its output, batch first."""

    def __init__(self, model: nn.Module, cap: Capture, batch_dim: int = 0) -> None:
        super().__init__()
        self.model, self.cap, self.batch_dim = model, cap, batch_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        reset_memories(self.model)
        return _first(self.model(x if self.cap.time_dim == 1 else x.transpose(0, 1))).movedim(self.batch_dim, 0)


def whole_model(model: nn.Module, cap: Capture, x: torch.Tensor) -> WholeModel:
    """:class:`WholeModel` of a copy of ``model``, with the dimension of its output that follows the batch."""
    own = copy.deepcopy(model).eval()
    whole = WholeModel(own, cap)
    bmajor = x if cap.time_dim == 1 else x.transpose(0, 1)
    with torch.no_grad():
        whole.batch_dim = _output_batch_dim(whole(bmajor), whole(bmajor[:1])) if len(bmajor) > 1 else 0
    return whole


def gpu_only_reason(cap: Capture) -> str | None:
    """Why the whole model runs on the GPU (None where Loihi runs its start)."""
    return cap.stop if not cap.chain else None


def batch_first(y: torch.Tensor, batch: int, layout: str, one_sample=None) -> torch.Tensor:
    """A time-major model's output ``(T, B, ...)`` as ``(B, T, ...)``, the bundle's layout (others as they are).
    Where T = B, ``one_sample()`` (the model's output for one sample) tells which dimension is the batch."""
    if layout != "TB" or y.dim() < 2 or y.shape[1] != batch:
        return y
    if y.shape[0] == batch:
        return y.movedim(_output_batch_dim(y, one_sample()), 0) if one_sample is not None and batch > 1 else y
    return y.movedim(1, 0)


def _output_batch_dim(full: torch.Tensor, one: torch.Tensor) -> int:
    """The dimension of the model's output that follows the batch (from its outputs for B samples and for 1)."""
    moved = [d for d, (a, b) in enumerate(zip(full.shape, one.shape)) if a != b]
    return moved[0] if full.dim() == one.dim() and len(moved) == 1 else 0


def _cut_spikes(cap: Capture, spikes: torch.Tensor, t: int) -> torch.Tensor:
    """What the cut population returns at its ``t``-th call: one step ``(B, ...)``, or all steps in the
    shape its multi-step call returned."""
    if not cap.multi_step:
        return spikes[:, t]
    out = _first(cap.outputs[cap.chain[-1][0]])
    s = spikes.transpose(0, 1)
    return s if tuple(out.shape[:2]) == (cap.num_steps, cap.batch) else s.reshape(-1, *s.shape[2:])


@contextmanager
def _stand_ins(cap: Capture, spikes: torch.Tensor, reads: str = "spikes"):
    """Replace each chain module's forward: the cut population returns its spikes at each call (its other
    outputs, e.g. snnTorch's ``mem``, as zeros), the others zeros of their recorded shapes. With
    ``reads="v"`` the values given are the cut population's voltage: it returns NaN spikes (the code after
    the cut must not read them) and the voltage where its framework returns it (:func:`_with_voltage`)."""
    batch, cut = spikes.shape[0], cap.chain[-1][1]
    step = {"t": 0}

    def cut_forward(*args, **kwargs):
        s = _cut_spikes(cap, spikes, step["t"])
        step["t"] += 1
        out = cap.outputs[cap.chain[-1][0]]
        if reads == "v":
            return _with_voltage(out, s, cap, batch)
        if isinstance(out, tuple):
            return (s, *_zeros_like_output(out, cap, batch)[1:])
        return s

    patched = [(m, m.forward) for _, m in cap.chain]
    try:
        for path, module in cap.chain:
            module.forward = cut_forward if module is cut else \
                (lambda *a, out=cap.outputs[path], **k: _zeros_like_output(out, cap, batch))
        yield
    finally:
        for module, forward in patched:
            module.forward = forward


def _with_voltage(out, v: torch.Tensor, cap: Capture, batch: int):
    """The cut population's outputs rebuilt around its voltage ``v``: snnTorch's ``(spk, mem)`` (``mem``: the
    last of its outputs; ``syn`` zeros), norse's ``(z, state)`` with ``state.v``; the spikes NaN."""
    if not isinstance(out, tuple) or len(out) < 2:
        return v
    rest = list(_zeros_like_output(out, cap, batch))[1:]
    state = out[-1]
    if hasattr(state, "_replace") and hasattr(state, "v"):  # a norse state (a namedtuple of tensors)
        rest[-1] = state._replace(**{k: v if k == "v" else torch.zeros_like(v) for k in state._fields})
    else:
        rest[-1] = v
    return (torch.full_like(v, float("nan")), *rest)


def dense_remainder(model: nn.Module, cap: Capture, x: torch.Tensor, tol: float = 1e-5) -> DenseRemainder:
    """:class:`DenseRemainder` of a copy of ``model``, checked: given the chain's spikes (run with each
    framework's step convention), else its last population's voltage alone, it reproduces the unmodified
    model's output on ``x``. The check runs in
    float32, the precision the frameworks' neurons return spikes in (snnTorch's are float32 always)."""
    model32 = copy.deepcopy(model).float().eval()
    x32 = x.float()
    bmajor = x32 if cap.time_dim == 1 else x32.transpose(0, 1)
    errors, raised = {}, None
    for reads in ("spikes", "v"):  # the spikes; else the membrane voltage alone
        try:
            with torch.no_grad(), _after_the_cut(cap):
                got, want, batch_dim = _stand_in_run(model32, cap, x32, bmajor, reads)
        except PartitionError as exc:
            raised, got, want = raised or exc, None, None
        if got is not None and got.shape == want.shape and torch.allclose(got, want, atol=tol, rtol=0):
            own = copy.deepcopy(model)
            return DenseRemainder(own, _copied(cap, own), tuple(x.shape[2:]), batch_dim, reads)
        errors[reads] = float((got - want).abs().max()) if got is not None and got.shape == want.shape else \
            float("nan")
    if raised is not None:
        raise raised
    cut = cap.chain[-1][0]
    where = f" (called at {cap.lines[cut]})" if cap.lines.get(cut) else ""
    raise PartitionError(f"after the cut at {cut}{where}, the model depends on more than its spikes alone, or its "
                         f"membrane voltage alone (max difference {errors['spikes']:.3g} given only the spikes, "
                         f"{errors['v']:.3g} given only the voltage): it reads both, or another output of the spiking "
                         "part (a synaptic current); make the code after it read the spikes only, or the voltage only")


def _stand_in_run(model32: nn.Module, cap: Capture, x32: torch.Tensor, bmajor: torch.Tensor, reads: str):
    """(the model's output with the chain standing in, given the cut's spikes or voltage; the unmodified
    model's output; the batch dimension of its output); the first None where the cut has no voltage."""
    chain = spiking_sequential(_copied(cap, model32))
    if reads == "v" and (cap.multi_step or not isinstance(cap.outputs[cap.chain[-1][0]], tuple)):
        return None, None, 0  # the voltage is not among the population's outputs (SpikingJelly keeps it inside)
    cut = output_spikes(chain, bmajor, cut_reads=reads)
    stand_in = DenseRemainder(model32, _copied(cap, model32), tuple(bmajor.shape[2:]), reads=reads)
    batch_dim = _output_batch_dim(stand_in(cut), stand_in(cut[:1])) if len(cut) > 1 else 0
    reset_memories(model32)
    want = _first(model32(x32)).movedim(batch_dim, 0)
    stand_in.batch_dim = batch_dim
    return stand_in(cut), want, batch_dim


@contextmanager
def _after_the_cut(cap: Capture):
    """An exception of the user's code run with the spiking part standing in, as a named error."""
    try:
        yield
    except NeurodeployError:
        raise
    except Exception as exc:
        raise PartitionError(f"the model raised {raised_at(exc)} when run with its spiking part (up to "
                             f"{cap.chain[-1][0]}) standing in, a batch of 1 or of the example's size: the code "
                             "after the cut must take the spikes as the population returns them, for any batch "
                             "size") from exc


def _copied(cap: Capture, copy_of: nn.Module) -> Capture:
    """``cap`` with its modules looked up by path in ``copy_of`` (a deep copy of the captured model)."""
    modules = dict(copy_of.named_modules())
    return dataclasses.replace(cap, chain=[(p, modules[p]) for p, _ in cap.chain])
