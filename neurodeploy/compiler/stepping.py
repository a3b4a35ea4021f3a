"""A step model for a captured model's own dense code, derived and verified, never assumed.

The dense part of a model captured as written (:class:`~neurodeploy.compiler.capture.DenseRemainder`) is the
user's ``forward`` over all T steps. To run it once per window of K steps (the ``window`` and ``event``
schedules), its recurrent modules carry their state from one window to the next ("state carry"): each
``nn.GRU``, ``nn.LSTM``, ``nn.RNN`` (one direction) and ncps ``CfC``/``LTC`` called once per forward starts a
window from the state it ended the last one with, zeros at a sample's start, instead of from zeros. The step
model is the user's code on one window with those states as explicit inputs and outputs
(:class:`CarriedStep`), so it exports to ONNX like any module.

It is kept only where it is exact: on the example's cut spikes and on an input twice as long, the step
model's output after window l must equal the unmodified dense code's output on the first l + 1 windows
(``max |step - prefix| <= tol`` for every l), i.e. the model's output had the sample ended there; the last
window's output is then the model's output. Where no state carry reproduces it, the bundle runs ``end`` only
and says why; :func:`look_ahead` names the first module whose early outputs change when only later windows
change (a bidirectional GRU, attention without a causal mask): what makes the code non-causal.

With ``prefix_runner`` (a compile option), causal code that no state carry reproduces (attention over every
earlier token, a scan keeping its state in a local variable) gets the prefix runner instead
(:func:`derive_prefix`): the dense code exported once with its length free (else once per number of windows, up
to twice the compiled length), re-run after each window on the windows so far (on the event schedule, on the
salient windows so far). Exact, like the model had the sample ended there; its work grows with the square of
the windows, which the cost report prices and says. An output with one value per step (its shape grows with the
length) is not streamed either way.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

TORCH_RNN = (nn.GRU, nn.LSTM, nn.RNN)
PREFIX_HINT = ("; it is causal: compile with prefix_runner=True (--prefix-runner) to stream it by re-running it on "
               "the windows so far")
NCPS = ("CfC", "LTC")


def _kind(module: nn.Module) -> str | None:
    """How a module's state is carried: ``torch`` (``forward(x, hx) -> (y, h)``, h batch-second, LSTM's
    ``(h, c)``), ``ncps`` (``forward(x, hx, timespans) -> (y, h)``, h batch-first), ``attention`` (a
    batch-first ``nn.MultiheadAttention`` called as self-attention: its keys' and values' inputs so far, a KV
    cache that grows by a window each step), None for other modules."""
    if isinstance(module, TORCH_RNN):
        return None if module.bidirectional else "torch"
    if isinstance(module, nn.MultiheadAttention):
        return "attention" if module.batch_first else None
    if type(module).__name__ in NCPS and type(module).__module__.startswith("ncps."):
        return "ncps"
    return None


@dataclass
class Carrier:
    """One recurrent module of the dense code whose state crosses windows."""

    path: str
    module: nn.Module
    kind: str
    zeros: list[torch.Tensor]  # its state at a sample's start, for the example's batch
    incoming: list[torch.Tensor] = field(default_factory=list)
    outgoing: list[torch.Tensor] = field(default_factory=list)

    @property
    def batch_axis(self) -> int:
        return 1 if self.kind == "torch" else 0

    @property
    def growing_axis(self) -> int | None:
        """The axis along which the state grows by a window each step (a KV cache's tokens), else None."""
        return 1 if self.kind == "attention" else None

    def forward(self, original: Callable) -> Callable:
        """The module's forward from ``incoming``, recording the state it leaves in ``outgoing``."""
        if self.kind == "attention":
            return self._attend(original)

        def carried(x, hx=None, *args, **kwargs):
            state = self.incoming[0] if len(self.incoming) == 1 else tuple(self.incoming)
            y, new = original(x, state, *args, **kwargs)
            self.outgoing = list(new) if isinstance(new, tuple) else [new]
            return y, new
        return carried


    def _attend(self, original: Callable) -> Callable:
        """Self-attention of a window's tokens over the cached tokens and themselves, causally: token i of the
        window sees the P cached tokens and the window's first i + 1 (the user's own mask is replaced by this
        one; the derivation's check says whether that was the user's)."""
        def attended(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                     average_attn_weights=True, is_causal=False):
            past_k, past_v = self.incoming
            keys, values = torch.cat([past_k, key], 1), torch.cat([past_v, value], 1)
            p, k = past_k.shape[1], query.shape[1]
            mask = torch.arange(p + k, device=query.device)[None, :] > torch.arange(k, device=query.device)[:, None] + p
            self.outgoing = [keys, values]
            return original(query, keys, values, attn_mask=mask, need_weights=need_weights,
                            average_attn_weights=average_attn_weights)
        return attended


def find_carriers(remainder: nn.Module, cut: torch.Tensor) -> tuple[list[Carrier], str | None]:
    """The recurrent modules the dense code calls on ``cut`` (B, T, ...), with their zero states; and why
    none can carry a state (None where they can): a recurrent module called more than once per forward
    (a cell stepped in the user's own loop keeps its state in a local variable)."""
    def with_self(args, out):  # the output, and whether the query was also the key and the value (one tensor)
        return out, len(args) >= 3 and args[0] is args[1] is args[2]
    calls = _recorded(remainder, cut, lambda path, m: _kind(m) is not None, with_self)
    modules = dict(remainder.model.named_modules())
    repeated = [p for p, outs in calls.items() if len(outs) != 1]
    if repeated:
        return [], (f"{', '.join(repeated)} run(s) more than once per sample (a cell stepped in the model's own "
                    "loop keeps its state in a local variable, which no step model can carry)")
    cross = [p for p, [(_, self_attending)] in calls.items() if _kind(modules[p]) == "attention" and not self_attending]
    if cross:
        return [], f"{', '.join(cross)} attend(s) to other values than their queries (only self-attention is cached)"
    found = []
    for path, [(out, _)] in calls.items():
        if _kind(modules[path]) == "attention":
            zeros = [out[0].new_zeros(len(out[0]), 0, out[0].shape[-1])] * 2  # no tokens cached yet
        else:
            state = out[1]
            zeros = [torch.zeros_like(s) for s in (state if isinstance(state, tuple) else (state,))]
        found.append(Carrier(path, modules[path], _kind(modules[path]), zeros))
    return found, None


def _keep_the_module_path(module: nn.Module, args) -> None:
    """A no-op forward pre-hook: ``nn.TransformerEncoderLayer`` takes its fused fast path (which calls no
    ``self_attn`` module, so no cache) only where the layer has no hooks."""


class CarriedStep(nn.Module):
    """``forward(window (B, K, ...), *states) -> (y (B, n), *new states)``: the user's code after the cut on one
    window, each :class:`Carrier` starting from its given state; ``y`` is the model's output, flattened."""

    def __init__(self, remainder: nn.Module, carriers: list[Carrier]) -> None:
        super().__init__()
        self.remainder, self.carriers = remainder, carriers
        cached = {id(c.module) for c in carriers if c.kind == "attention"}
        for layer in remainder.model.modules():  # the layer's fused fast path would skip the cached attention
            if id(getattr(layer, "self_attn", None)) in cached:
                layer.register_forward_pre_hook(_keep_the_module_path)

    def forward(self, window: torch.Tensor, *states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        i, patched = 0, []
        for c in self.carriers:
            c.incoming, i = list(states[i: i + len(c.zeros)]), i + len(c.zeros)
            patched.append((c.module, c.module.forward))
            c.module.forward = c.forward(c.module.forward)
        try:
            y = self.remainder(window)
        finally:
            for module, forward in patched:
                module.forward = forward
        return (y.reshape(y.shape[0], -1), *[s for c in self.carriers for s in c.outgoing])

    def zero_states(self, batch: int) -> list[torch.Tensor]:
        """Every carried state at zero for ``batch`` samples."""
        return [torch.zeros(*[batch if a == c.batch_axis else d for a, d in enumerate(z.shape)], dtype=z.dtype)
                for c in self.carriers for z in c.zeros]

    def batch_axes(self) -> list[int]:
        return [c.batch_axis for c in self.carriers for _ in c.zeros]

    def growing_axes(self) -> list[int | None]:
        return [c.growing_axis for c in self.carriers for _ in c.zeros]


def step_errors(step: CarriedStep, remainder: nn.Module, cut: torch.Tensor, window: int) -> list[float]:
    """Per window l: max |step model's output after window l - the dense code's output on the first l + 1
    windows| (eager PyTorch), on ``cut`` (B, T, ...)."""
    states, errors = step.zero_states(len(cut)), []
    with torch.no_grad():
        for end in range(window, cut.shape[1] + 1, window):
            y, *states = step(cut[:, end - window: end], *states)
            prefix = remainder(cut[:, :end]).reshape(len(cut), -1)
            errors.append(float((y - prefix).abs().max()) if y.shape == prefix.shape else float("inf"))
    return errors


def look_ahead(remainder: nn.Module, cut: torch.Tensor, window: int, tol: float = 1e-5) -> str | None:
    """The first module (in the order calls end) whose outputs over the first window change when only later
    windows do: its outputs on the first window alone against the first window's part of its outputs on the
    whole of ``cut`` (along the axis that grows with T, or its first calls where it runs per step). None where
    every module with a time axis is causal."""
    early, whole = _outputs(remainder, cut[:, :window]), _outputs(remainder, cut)
    ratio = cut.shape[1] // window
    for path in whole:
        a, b = early.get(path, []), whole[path]
        if len(a) == len(b):  # called as often: its outputs grow along a time axis (or have none)
            changed = any(_differs_early(first, full, ratio, tol) for first, full in zip(a, b))
        elif len(b) == ratio * len(a) and len(a):  # called once per step: its first calls must not change
            changed = any(f.shape != g.shape or bool((f - g).abs().max() > tol) for f, g in zip(a, b))
        else:
            changed = False
        if changed:
            return f"{path} ({type(dict(remainder.model.named_modules())[path]).__name__})"
    return None


def _outputs(remainder: nn.Module, cut: torch.Tensor) -> dict[str, list[torch.Tensor]]:
    """Each module's outputs (the first tensor of each call), in the order its calls end."""
    chain = {id(m) for _, m in remainder.cap.chain}

    def first(args, out):
        t = out[0] if isinstance(out, (tuple, list)) else out
        return t.detach().clone() if isinstance(t, torch.Tensor) else None
    calls = _recorded(remainder, cut, lambda path, m: bool(path) and id(m) not in chain, first)
    return {path: [t for t in outs if t is not None] for path, outs in calls.items()}


def _recorded(remainder: nn.Module, cut: torch.Tensor, select: Callable[[str, nn.Module], bool],
              keep: Callable = lambda args, out: out) -> dict[str, list]:
    """``keep(positional arguments, output)`` of every call of each module of the user's model that ``select(path, module)`` picks,
    in the order the calls end, on one run of the dense code on ``cut``."""
    calls: dict[str, list] = {}
    hooks = [m.register_forward_hook(lambda mod, args, out, p=p: calls.setdefault(p, []).append(keep(args, out)))
             for p, m in remainder.model.named_modules() if select(p, m)]
    try:
        with torch.no_grad():
            remainder(cut)
    finally:
        for h in hooks:
            h.remove()
    return calls


def _differs_early(first: torch.Tensor, full: torch.Tensor, ratio: int, tol: float) -> bool:
    """Whether ``full`` (on the whole input) differs from ``first`` (on the first window) over the first
    window's positions, along the one axis whose size grew ``ratio`` times (False where there is none: an
    output without a time axis, such as a head on the last state, says nothing about causality)."""
    grown = [a for a, (s, t) in enumerate(zip(first.shape, full.shape)) if t == s * ratio and s != t]
    if first.dim() != full.dim() or len(grown) != 1:
        return False
    return bool((full.narrow(grown[0], 0, first.shape[grown[0]]) - first).abs().max() > tol)


def default_window(steps: int) -> int:
    """Steps per window of a captured model's step model: a quarter of T where T allows, else half, else T."""
    return next((steps // d for d in (4, 2) if steps % d == 0), steps)


@dataclass(frozen=True)
class StreamChoices:
    """How a captured model's own dense code streams (compile options): the event schedule's threshold (cut
    spikes per window that wake it), the early-exit confidence, and whether code no state carry reproduces
    gets the prefix runner (its dense code re-run on the windows so far: one ONNX graph for any length, else one
    per number of windows up to twice the compiled length; exact, its work growing with the square of the
    windows)."""

    event_threshold: float | None = None
    exit_threshold: float | None = None
    prefix_runner: bool = False


def derive_step(remainder: nn.Module, cut: torch.Tensor, window: int, path, tol: float = 1e-4,
                prefix_runner: bool = False) -> dict:
    """:func:`_derive_step` (then, with ``prefix_runner``, :func:`derive_prefix` where no state carry is exact
    and no module looks ahead), where the user's code raising at another length or in windows (a length
    written into the code) is a reason, not a failed compile."""
    from neurodeploy.errors import NeurodeployError, raised_at

    try:
        fields = _derive_step(remainder, cut, window, path, tol)
        reason = fields.get("no_step_reason") or ""
        if prefix_runner and reason and "looks ahead" not in reason and "grows with the length" not in reason:
            fields = _prefix_or_reason(remainder, cut, window, path.parent, tol, fields["no_step_reason"])
        return fields
    except NeurodeployError:
        raise
    except Exception as exc:
        return {"no_step_reason": f"the model's code after the cut raised {raised_at(exc)} when run on windows of "
                                  f"{window} steps or on twice the example's length"}


def _derive_step(remainder: nn.Module, cut: torch.Tensor, window: int, path, tol: float = 1e-4) -> dict:
    """The ``DensePart`` fields of a captured model's step model, derived by state carry, checked in PyTorch on
    ``cut`` (B, T, ...) and on an input of 2T, exported to ``path`` and checked again on ONNX Runtime; or
    ``no_step_reason`` (why not, naming the module that looks ahead where :func:`look_ahead` finds one)."""
    from neurodeploy.bundle import ParityRecord
    from neurodeploy.errors import OnnxExportError
    from neurodeploy.exporters.onnx_export import export_step_module

    longer = torch.cat([cut, cut.flip(0)], 1)
    grows = _output_grows(remainder, cut, window)
    if grows:
        return {"no_step_reason": grows}
    carriers, why = find_carriers(remainder, cut)
    step = CarriedStep(remainder, carriers)
    why = why or _carry_problem(step, remainder, (cut, longer), window, tol)
    if why is not None:
        culprit = look_ahead(remainder, longer, window)
        return {"no_step_reason": why + (f"; {culprit} looks ahead: its outputs over the first window change "
                                         "when only later windows change" if culprit else PREFIX_HINT)}
    two = torch.cat([cut, cut])[:2, :window].contiguous()  # two samples: the exporter specialises a batch of 1
    states = [z if g is None else z.new_zeros(*z.shape[:g], 2, *z.shape[g + 1:])  # sizes 0 and 1 would specialise
              for z, g in zip(step.zero_states(2), step.growing_axes())]
    try:
        export_step_module(step, two, states, step.batch_axes(), path, step.growing_axes())
    except OnnxExportError as exc:  # the whole-sequence form exported: the bundle runs end, and says why not more
        return {"no_step_reason": f"its step model did not export to ONNX ({exc})"}
    parity = [ParityRecord(shape=list(c.shape), max_abs_err=_ort_step_error(path, step, remainder, c, window))
              for c in (cut, longer)]
    bad = [p for p in parity if not p.max_abs_err <= tol]
    if bad:
        path.unlink()
        return {"no_step_reason": "its step model on ONNX Runtime differs from the model on the windows so far by "
                                  f"more than {tol:g} (" + ", ".join(f"shape {p.shape}: {p.max_abs_err:.3g}" for p in bad) + ")"}
    with torch.no_grad():
        out_shape = list(remainder(cut[:1]).shape[1:])
    return {"step_file": path.name, "step_parity": parity, "window_steps": window, "step_output": "last",
            "output_shape": out_shape, "schedules": ["end", "window"],
            "growing_states": any(g is not None for g in step.growing_axes()),
            "step_derivation": "state carry: " + ", ".join(f"{c.path} ({type(c.module).__name__})" for c in carriers)}


def _ort_step_error(path, step: CarriedStep, remainder: nn.Module, cut: torch.Tensor, window: int) -> float:
    """Max |the exported step model on ONNX Runtime, window by window - the dense code on the windows so far|."""
    import numpy as np

    from neurodeploy.exporters.onnx_session import make_session

    session = make_session(path, prefer_gpu=False)
    names = [i.name for i in session.get_inputs()]
    states, worst = [s.numpy() for s in step.zero_states(len(cut))], 0.0
    with torch.no_grad():
        for end in range(window, cut.shape[1] + 1, window):
            y, *states = session.run(None, dict(zip(names, [cut[:, end - window: end].float().numpy(), *states])))
            prefix = remainder(cut[:, :end]).reshape(len(cut), -1).numpy()
            worst = max(worst, float(np.abs(y - prefix).max()))
    return worst


def _carry_problem(step: CarriedStep, remainder: nn.Module, cuts: tuple, window: int, tol: float) -> str | None:
    """Why carrying the step's states does not reproduce the code on the windows so far, on each of ``cuts``;
    None where it does."""
    if not step.carriers:
        return "it has no recurrent module (nn.GRU, nn.LSTM, nn.RNN, ncps CfC/LTC) whose state could cross windows"
    worst = max(max(step_errors(step, remainder, c, window)) for c in cuts)
    if worst <= tol:
        return None
    return (f"carrying the state of {', '.join(c.path for c in step.carriers)} from window to window does not give "
            f"the model's output on the windows so far (max difference {worst:.3g})")


def _output_grows(remainder: nn.Module, cut: torch.Tensor, window: int) -> str | None:
    """Why the code's output cannot be streamed as "the output had the sample ended here": it has one value
    per step or window (its shape changes with the length); None where it does not."""
    with torch.no_grad():
        short, whole = remainder(cut[:, :window]).shape, remainder(cut).shape
    if short == whole:
        return None
    return (f"its output grows with the length ({tuple(short[1:])} per sample after one window, {tuple(whole[1:])} "
            "after all): streaming an output per step is not built yet")


def _prefix_or_reason(remainder: nn.Module, cut: torch.Tensor, window: int, folder, tol: float, why: str) -> dict:
    """:func:`derive_prefix`, or why neither a state carry nor the prefix runner streams the code."""
    from neurodeploy.errors import OnnxExportError

    try:
        return derive_prefix(remainder, cut, window, folder, tol)
    except OnnxExportError as exc:
        return {"no_step_reason": f"{why.replace(PREFIX_HINT, '')}; and its prefix runner did not export ({exc})"}


def derive_prefix(remainder: nn.Module, cut: torch.Tensor, window: int, folder, tol: float = 1e-4) -> dict:
    """The ``DensePart`` fields of the prefix runner. First one graph of the dense code with its number of
    steps left free (``dense_prefix.onnx``), kept where ONNX Runtime gives PyTorch's output on 1, L / 2, L and
    2L windows of the example (``prefix_any_length``); else (a loop over the steps written in Python fixes
    the length) one graph per number of windows up to 2L (``dense_prefix_<l>.onnx``; on L it is
    ``dense.onnx``), each checked the same way."""
    from neurodeploy.exporters.onnx_export import check_parity, export_dense

    windows, longer = cut.shape[1] // window, torch.cat([cut, cut.flip(0)], 1)
    counts = sorted({1, max(1, windows // 2), windows, 2 * windows})
    two = torch.cat([longer, longer])[:2].contiguous()  # the exporter specialises a batch of 1
    try:
        export_dense(remainder, two[:, :cut.shape[1]].contiguous(), folder / ANY_LENGTH, {0: "batch", 1: "time"})
        check_parity(folder / ANY_LENGTH, remainder, [longer[:, :c * window] for c in counts], tol)
        files, how = [ANY_LENGTH], "one graph for any number of windows"
    except Exception:  # noqa: BLE001 - not exported, or fixed at one length after all (ORT refuses the others)
        (folder / ANY_LENGTH).unlink(missing_ok=True)
        files = [_prefix_graph(remainder, two, longer, count, window, windows, folder, tol)
                 for count in range(1, 2 * windows + 1)]
        how = f"{2 * windows} graphs, one per number of windows up to twice the compiled length"
    with torch.no_grad():
        out_shape = list(remainder(cut[:1]).shape[1:])
    return {"prefix_files": files, "prefix_any_length": files == [ANY_LENGTH], "window_steps": window,
            "step_output": "last", "output_shape": out_shape, "schedules": ["end", "window"], "no_step_reason": None,
            "step_derivation": f"prefix runner: the dense code re-run on the windows so far ({how}; exact; its "
                               "work grows with the square of the windows)"}


ANY_LENGTH = "dense_prefix.onnx"


def _prefix_graph(remainder: nn.Module, two: torch.Tensor, longer: torch.Tensor, count: int, window: int,
                  windows: int, folder, tol: float) -> str:
    """The dense code exported on ``count`` windows (on the compiled L windows: the bundle's ``dense.onnx``),
    checked on ONNX Runtime against PyTorch on the example's first ``count`` windows."""
    from neurodeploy.exporters.onnx_export import check_parity, export_dense

    if count == windows:
        return "dense.onnx"
    name, steps = f"dense_prefix_{count}.onnx", count * window
    export_dense(remainder, two[:, :steps].contiguous(), folder / name, {0: "batch"})
    check_parity(folder / name, remainder, [longer[:, :steps]], tol)
    return name


def with_step_thresholds(dense, event_threshold: float | None, exit_threshold: float | None):
    """``dense`` (a ``DensePart``) with a captured model's event and early-exit thresholds: ``event`` joins its
    schedules with ``event_threshold`` (cut spikes per window that wake the dense part); ``exit_threshold``
    (softmax confidence of its output after a window, a class vector) ends a sample early. Only a step model
    derived here takes them (a zoo back-end sets its own): anything else is a UsageError that says why."""
    from neurodeploy.errors import UsageError

    given = {k: v for k, v in (("event_threshold", event_threshold), ("exit_threshold", exit_threshold)) if v is not None}
    if not given:
        return dense
    if dense.step_output != "last" or (dense.step_file is None and not dense.prefix_files):
        why = dense.no_step_reason or ("it runs wholly on the GPU, on the end schedule" if dense.input_shape else
                                       "its back-end sets its own thresholds (a zoo or streaming back-end)")
        raise UsageError(f"{' and '.join(given)} apply to a captured model whose own dense code streams; this one "
                         f"cannot: {why}")
    if exit_threshold is not None and (len(dense.output_shape) != 1 or not 0 < exit_threshold <= 1):
        raise UsageError(f"exit_threshold is a softmax confidence in (0, 1] over a class vector; got {exit_threshold} "
                         f"for an output of shape {dense.output_shape} per sample")
    if event_threshold is not None and not event_threshold > 0:
        raise UsageError(f"event_threshold is the cut's spikes per window that wake the dense part (> 0), got "
                         f"{event_threshold}")
    update = dict(given)
    if event_threshold is not None:
        update["schedules"] = [*dense.schedules, "event"]
    return dense.model_copy(update=update)
