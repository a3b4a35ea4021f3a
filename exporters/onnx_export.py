"""Dense part -> ONNX, verified against PyTorch at several lengths.

Every export is followed by two checks that raise :class:`OnnxExportError`: the declared dynamic
dimensions must be symbolic in the ONNX file, and ONNX Runtime must match PyTorch at several sequence
lengths. They guard against failures seen with torch 2.13 that give no warning: the dynamo exporter
specialising a dynamic dimension to a constant when tracing cannot keep it, and the legacy exporter
returning the traced number of steps for longer inputs of an unrolled loop.
"""
from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
import torch
from torch import nn

if TYPE_CHECKING:  # pragma: no cover
    import onnxruntime as ort

from neurodeploy.errors import OnnxExportError, raised_at
from neurodeploy.exporters.onnx_session import make_session

INPUT_NAME, OUTPUT_NAME = "spikes", "y"

LOG = logging.getLogger(__name__)


@dataclass
class ParityCheck:
    """ORT vs PyTorch at one input shape."""

    shape: tuple[int, ...]
    max_abs_err: float


def export_dense(module: nn.Module, example: torch.Tensor, path: Path, dynamic_dims: dict[int, str]) -> None:
    """Export ``module(example)`` with the dynamo exporter; ``dynamic_dims`` maps input dim -> name.

    Dynamo's caches are cleared first: torch 2.13 otherwise reuses what an earlier export in the same
    process learnt, and exported a streaming back-end's steps dimension as a constant after a fixed-T export.
    The dynamic shapes are given by position, so the module's ``forward`` may name its argument as it
    likes (``x``, ``input`` for an ``nn.Sequential``); the ONNX input is always named ``spikes``."""
    shapes = ({dim: torch.export.Dim(name, min=1, max=1 << 16) for dim, name in dynamic_dims.items()},)
    module = _static_control_flow(module.float().eval())
    torch._dynamo.reset()  # an earlier export in this process (e.g. one with a fixed T) would specialise this one
    with warnings.catch_warnings(), _quiet("torch.onnx"), _printed_to_log():
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(module, (example.float(),), dynamo=True, dynamic_shapes=shapes,
                                        input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], verbose=False)
        except Exception as exc:  # torch.export's own errors: named, with where they arose and what to do
            raise OnnxExportError(export_failure(module, exc)) from exc
    program.save(str(path))


@contextmanager
def _printed_to_log() -> Iterator[None]:
    """What torch.export prints while it works (graphs of a failed attempt) goes to the debug log, not the
    user's terminal."""
    import contextlib
    import io

    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            yield
    finally:
        if buffer.getvalue():
            LOG.debug("torch.onnx.export printed:\n%s", buffer.getvalue())


def export_failure(module: nn.Module, exc: BaseException) -> str:
    """One readable message for a failed export of ``module``: what failed, where, and the usual ways out."""
    name = type(getattr(module, "model", module)).__name__
    return (f"the dense part ({name}, the code after the cut) could not be exported to ONNX by torch.export: "
            f"{raised_at(exc)}; it must run on any batch size without Python branches on tensor values, .item() "
            "or NumPy calls (torch.export's rules): rewrite that line with torch operations, or cut earlier")


CONTROL_BUFFERS = ("reset_mechanism_val",)
"""Buffers that a framework's ``forward`` branches on in Python (snnTorch neurons: ``if
self.reset_mechanism_val == 0``): as tensors they make torch.export fail on a data-dependent guard."""


def _static_control_flow(module: nn.Module) -> nn.Module:
    """``module`` (the copy being exported, not the user's) with each :data:`CONTROL_BUFFERS` buffer
    turned into the Python int it holds, so the branch it selects is fixed at export, as it is at run time."""
    for m in module.modules():
        for name in CONTROL_BUFFERS:
            if name in m._buffers:
                setattr(m, name, int(m._buffers.pop(name)))
    return module


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Silence a library logger (the exporter logs one line per missing torchvision op)."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def check_dynamic_dims(path: Path, dynamic_dims: dict[int, str]) -> None:
    """Raise if a declared dynamic input dimension was specialised to a constant."""
    graph_input = onnx.load(str(path), load_external_data=False).graph.input[0]
    dims = graph_input.type.tensor_type.shape.dim
    fixed = [f"dim {d} ({name}) = {dims[d].dim_value}" for d, name in dynamic_dims.items()
             if not dims[d].dim_param]
    if fixed:
        raise OnnxExportError(f"{path.name}: declared dynamic dimensions were exported as constants: "
                              f"{', '.join(fixed)}; the model cannot run at other sizes (export with an example whose dynamic dimensions are >= 2)")


STEP_INPUT, STEP_OUTPUT = "window", "y"


def state_names(count: int) -> tuple[list[str], list[str]]:
    return [f"state_{i}" for i in range(count)], [f"state_{i}_out" for i in range(count)]


def export_step(backend: nn.Module, path: Path, batch: int = 2) -> None:
    """Export ``backend.step`` (a :class:`~neurodeploy.models.backends.StreamingBackend`) with every state as an
    explicit input and output; the batch dimension is dynamic wherever a state has one."""
    from neurodeploy.models.backends import StepModel

    backend = backend.float().eval()
    window = torch.zeros(batch, backend.adapter.window, backend.proj.in_features)
    state = backend.init_state(batch)
    dim = torch.export.Dim("batch", min=1, max=1 << 16)
    shapes = ({0: dim},) + tuple({0: dim} if s.shape[0] == batch else None for s in state)
    ins, outs = state_names(len(state))
    with warnings.catch_warnings(), _quiet("torch.onnx"):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(StepModel(backend), (window, *state), dynamo=True, dynamic_shapes=(shapes[0], shapes[1:]),
                                    input_names=[STEP_INPUT, *ins], output_names=[STEP_OUTPUT, *outs], verbose=False)
    program.save(str(path))


def export_step_module(step: nn.Module, window: torch.Tensor, states: list[torch.Tensor], batch_axes: list[int],
                       path: Path, growing_axes: list[int | None] | None = None) -> None:
    """Export ``step(window, *states) -> (y, *new states)`` (a captured model's derived step model) with the
    batch dynamic in the window (dim 0) and in every state (its ``batch_axes``, named ``batch``), and each
    state's ``growing_axes`` (a KV cache's tokens, named ``past``, from 0) dynamic too; inputs
    ``window, state_i``, outputs ``y, state_i_out`` as :func:`export_step`'s."""
    dim = torch.export.Dim("batch", min=1, max=1 << 16)
    past = torch.export.Dim("past", min=0, max=1 << 20)  # every cache holds the same tokens so far
    grows = growing_axes or [None] * len(states)
    shapes = ({0: dim}, tuple({axis: dim} | ({} if g is None else {g: past}) for axis, g in zip(batch_axes, grows)))
    ins, outs = state_names(len(states))
    torch._dynamo.reset()
    with warnings.catch_warnings(), _quiet("torch.onnx"), _printed_to_log():
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(step.float().eval(), (window.float(), *states), dynamo=True,
                                        dynamic_shapes=shapes, input_names=[STEP_INPUT, *ins],
                                        output_names=[STEP_OUTPUT, *outs], verbose=False)
        except Exception as exc:
            raise OnnxExportError(export_failure(step, exc)) from exc
    program.save(str(path))


def run_step_model(session: ort.InferenceSession, backend: nn.Module, spikes: np.ndarray) -> np.ndarray:
    """Feed ``spikes`` (B, T, N) one window at a time through an exported step model: (B, T // K, n_out)."""
    batch, window = spikes.shape[0], backend.adapter.window
    state = [s.numpy() for s in backend.init_state(batch)]
    ins, _ = state_names(len(state))
    outputs = []
    for start in range(0, spikes.shape[1] - window + 1, window):
        feed = {STEP_INPUT: spikes[:, start: start + window].astype(np.float32), **dict(zip(ins, state))}
        y, *state = session.run(None, feed)
        outputs.append(y)
    return np.stack(outputs, axis=1)


def check_step_parity(path: Path, backend: nn.Module, examples: list[torch.Tensor], tol: float = 1e-4) -> list[ParityCheck]:
    """The exported step model, token by token, against PyTorch's whole-sequence outputs."""
    return _compare(path, backend, examples, tol, lambda s, x: run_step_model(s, backend, x),
                    "the streaming step model differs from the whole-sequence model")


def check_parity(path: Path, module: nn.Module, examples: list[torch.Tensor], tol: float = 1e-4) -> list[ParityCheck]:
    """Run ORT and PyTorch on every example; raise if any max abs error exceeds ``tol``."""
    return _compare(path, module, examples, tol, lambda s, x: s.run(None, {INPUT_NAME: x})[0],
                    "ONNX Runtime differs from PyTorch")


def _compare(path: Path, module: nn.Module, examples: list[torch.Tensor], tol: float, run, what: str) -> list[ParityCheck]:
    """``run(session, x)`` against ``module(x)`` for every example, then :func:`_within`."""
    session = make_session(path, prefer_gpu=False)
    checks = []
    with torch.no_grad():
        for x in examples:
            expected = module.float()(x.float()).numpy()
            got = run(session, x.float().numpy())
            checks.append(ParityCheck(tuple(x.shape), float(np.max(np.abs(got - expected)))))
    return _within(checks, tol, f"{path.name}: {what}")


def _within(checks: list[ParityCheck], tol: float, what: str) -> list[ParityCheck]:
    """``checks`` if every error is within ``tol``, else an OnnxExportError naming each bad shape."""
    bad = [c for c in checks if not c.max_abs_err <= tol]
    if bad:
        raise OnnxExportError(f"{what} by more than {tol:g}: "
                              + ", ".join(f"shape {c.shape}: {c.max_abs_err:.3g}" for c in bad))
    return checks


@dataclass
class BackendExport:
    """Both ONNX forms of a streaming back-end, with how the sequence form was built and its checks."""

    sequence_path: Path
    step_path: Path
    sequence_form: str  # "traced" (torch.onnx of forward) or "scan_of_step"
    sequence_parity: list[ParityCheck]
    step_parity: list[ParityCheck]


def export_backend(backend: nn.Module, out_dir: Path, examples: list[torch.Tensor], tol: float = 1e-4) -> BackendExport:
    """Export ``backend`` (a StreamingBackend) whole-sequence and streaming; verify both against PyTorch.

    The sequence form is traced from ``forward`` when the exporter can; where it cannot, it is built as
    an ONNX Scan over the step model (:mod:`neurodeploy.exporters.onnx_scan`). Either way it must match PyTorch's
    ``forward`` at every example length, and the step model run window by window must too.
    """
    from torch.onnx._internal.exporter._errors import ConversionError

    from neurodeploy.exporters.onnx_scan import build_sequence_model

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seq, step = out_dir / "dense.onnx", out_dir / "dense_step.onnx"
    export_step(backend, step)
    example = next((x for x in examples if x.shape[0] >= 2 and x.shape[1] >= 2 * backend.adapter.window), None)
    if example is None:
        raise OnnxExportError("export_backend needs an example with batch >= 2 and at least two windows")
    dims = {0: "batch", 1: "steps"}
    try:
        export_dense(backend, example, seq, dims)
        form = "traced"
    except OnnxExportError as exc:  # torch.export traced it, ONNX could not translate it (e.g. a scan)
        if not isinstance(exc.__cause__, ConversionError):
            raise
        build_sequence_model(step, backend, seq)
        form = "scan_of_step"
    check_dynamic_dims(seq, dims)
    return BackendExport(seq, step, form, check_parity(seq, backend, examples, tol),
                         check_step_parity(step, backend, examples, tol))
