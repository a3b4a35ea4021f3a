"""Compile a hybrid model into a deployment bundle: partition -> NIR + ONNX -> verify -> write.

The reference outputs stored in the bundle come from the PyTorch model evaluated in float64, the
precision of Lava's ``floating_pt`` models, so spike-for-spike comparisons are not disturbed by
float32 rounding at the threshold. The ONNX model runs in float32.
"""
from __future__ import annotations

import copy
import datetime as dt
import tempfile
from pathlib import Path

import nir
import numpy as np
import onnx
import torch
from torch import nn

import neurodeploy
from neurodeploy.bundle import (Adapter, DensePart, FeedbackPart, Manifest, ParityRecord, Reference, SpikingPart,
                                write_bundle)
from neurodeploy.compiler.partition import GpuTail, Partition, captured_placement, module_label, partition
from neurodeploy.errors import ModelConfigError, QuantizationError, UsageError
from neurodeploy.exporters import (INPUT_NAME, OUTPUT_NAME, check_dynamic_dims, check_parity, export_backend,
                                   export_dense, frontend_to_nir, nir_to_plan, sequential_to_nir, write_nir)
from neurodeploy.models.adapters import ADAPTERS
from neurodeploy.models.backends import StreamingBackend
from neurodeploy.models.feedback import FeedbackHybrid, feedback_arrays, run_with_feedback
from neurodeploy.models.frontend import SpikingSequential
from neurodeploy.models.frontend_runner import run_frontend
from neurodeploy.models.hybrid import HybridModel

ADAPTER_KINDS = {cls: kind for kind, cls in ADAPTERS.items()}

DYNAMIC_DIMS = {0: "batch", 1: "steps"}


def reference_outputs(part: Partition, inputs: torch.Tensor, model: nn.Module | None = None) -> dict[str, np.ndarray]:
    """PyTorch outputs in float64: spikes of every population (B, T, *shape) keyed by NIR node, and ``y``."""
    if isinstance(model, FeedbackHybrid):
        y, spikes = run_with_feedback(copy.deepcopy(model).double().eval(), inputs.double())
        return {**{f"spikes/{name}": s.numpy() for name, s in spikes.items()}, "y": y.numpy()}
    spiking64 = copy.deepcopy(part.spiking).double().eval()
    dense64 = copy.deepcopy(part.dense).double().eval()
    with torch.no_grad():
        spikes = run_frontend(spiking64, inputs.double())
        cut = list(spikes.values())[-1]
        y = dense64(cut)
        event = dense64.forward_event(cut) if getattr(dense64, "salience_threshold", None) is not None else None
    out = {f"spikes/{name}": s.numpy() for name, s in spikes.items()}
    out["y"] = y.numpy()
    if event is not None:
        out["y_event"], out["salient"] = event[0].numpy(), event[1].numpy()
    return out


def _parity_examples(num_steps: int, window: int, n: int, fixed_length: bool = False) -> list[torch.Tensor]:
    """Random spikes at three lengths (T/2, T, 3T) and batches 1, 2, 3; all at T where the dense part is the
    user's own loop over T (a captured model)."""
    g = torch.Generator().manual_seed(1234)
    lengths = [num_steps] * 3 if fixed_length else \
        sorted({max(window, (num_steps // 2) // window * window), num_steps, 3 * num_steps})
    return [(torch.rand(b, t, n, generator=g) < 0.2).float() for b, t in zip((1, 2, 3), lengths)]


def _spiking_graph(spiking: nn.Module, input_shape: tuple[int, ...], dt_s: float) -> nir.NIRGraph:
    if isinstance(spiking, SpikingSequential):
        return frontend_to_nir(spiking, dt_s)
    return sequential_to_nir(spiking, input_shape, dt_s, producer="neurodeploy")


def _export_dense(dense: nn.Module, cut_spikes: np.ndarray, examples: list[torch.Tensor], tmp: Path,
                  fixed_length: bool = False) -> DensePart:
    """Both ONNX forms for a streaming back-end, the whole-sequence form otherwise; verified either way.
    With ``fixed_length`` (a captured model's own loop over T) only the batch dimension is dynamic."""
    if isinstance(dense, StreamingBackend):
        result = export_backend(dense, tmp, examples)
        return DensePart(input_name=INPUT_NAME, output_name=OUTPUT_NAME, dynamic_dims=DYNAMIC_DIMS,
                         parity=_records(result.sequence_parity), step_file=result.step_path.name,
                         step_parity=_records(result.step_parity), sequence_form=result.sequence_form,
                         schedules=["end", "window"] + (["event"] if dense.salience_threshold is not None else []),
                         event_threshold=dense.salience_threshold, exit_threshold=dense.exit_threshold)
    # two samples: torch.export specialises any dimension it sees with size 1
    example = torch.from_numpy(np.concatenate([cut_spikes] * 2)[:2]).float()
    dims = {0: "batch"} if fixed_length else DYNAMIC_DIMS
    export_dense(dense, example, tmp / "dense.onnx", dims)
    check_dynamic_dims(tmp / "dense.onnx", dims)
    return DensePart(input_name=INPUT_NAME, output_name=OUTPUT_NAME, dynamic_dims=dims,
                     parity=_records(check_parity(tmp / "dense.onnx", dense, examples)), schedules=["end"])


def _records(checks) -> list[ParityRecord]:
    return [ParityRecord(shape=list(c.shape), max_abs_err=c.max_abs_err) for c in checks]


def _feedback_part(model: nn.Module, cut_delay: int, tmp: Path) -> FeedbackPart | None:
    if not isinstance(model, FeedbackHybrid):
        return None
    if model.latency_steps != cut_delay:
        raise ModelConfigError(f"the feedback latency is {model.latency_steps} steps but the spiking pipeline is {cut_delay} "
                         f"deep (Lava's delay of the cut population); build the model with latency_steps={cut_delay}")
    np.savez(tmp / "feedback.npz", **feedback_arrays(model))
    return FeedbackPart(n_fb=model.n_fb, latency_steps=model.latency_steps)


def _spiking_fixed_point(plan, profile: str, precision: str = "auto", calibration=None) -> dict:
    """The quantization report, the quantizer's options and the resource map of the spiking part on
    ``profile``, for the manifest (the resources of the quantized plan: precision ``double`` stores more
    synapses). A plan with no fixed-point form keeps its float use: the reason is recorded, fixed runs refuse it."""
    from neurodeploy.spiking.quantize import quantize_for
    from neurodeploy.spiking.resources import map_resources

    out = {"profile": profile, "resources": map_resources(plan, profile).as_dict()}
    measured = {}  # per population, on the calibration inputs: spikes unlike float before and after
    try:
        if calibration is not None and all(p.model in ("lif", "li") for p in plan.neurons):
            from neurodeploy.analysis.quantization import calibrated

            q, measured = calibrated(plan, profile, precision, calibration)
        else:
            q = quantize_for(plan, profile, precision=precision, calibration=calibration)
    except QuantizationError as exc:
        out["quantization_error"] = str(exc)
        return out
    report = [{**population, "calibration_disagreement": measured.get(population["name"])} for population in q.as_dict()]
    out.update(quantization=report, quantizer=q.options, resources=map_resources(q.plan, profile).as_dict())
    return out


def _calibration_inputs(plan, calibration, inputs: torch.Tensor) -> np.ndarray | None:
    """Calibration inputs of the spiking part: ``True`` = the example inputs, else an array (B, T, ...) in
    the bundle's layout; feedback channels (inputs the runtime adds) are zero."""
    if calibration is None or calibration is False:
        return None
    x = inputs.numpy() if calibration is True else np.asarray(calibration)
    x = x.reshape(*x.shape[:2], -1).astype(np.float64)
    if x.shape[2] < plan.n_in:
        x = np.concatenate([x, np.zeros((*x.shape[:2], plan.n_in - x.shape[2]))], axis=2)
    return x.reshape(*x.shape[:2], *plan.input_shape)


def _default_schedule(dense_part: DensePart, feedback: FeedbackPart | None, schedule: str | None) -> str:
    if feedback is not None:
        return "window"
    if schedule is None:
        return "window" if "window" in dense_part.schedules else "end"
    if schedule not in dense_part.schedules:
        raise UsageError(f"schedule {schedule!r} is not supported by this dense part (supported: "
                         f"{dense_part.schedules}); the window and event schedules need a streaming back-end")
    return schedule


def _provenance(name: str, weights: str | None) -> dict[str, str]:
    return {"neurodeploy": neurodeploy.__version__, "torch": torch.__version__,
            "nir": getattr(nir, "__version__", "unknown"), "onnx": onnx.__version__, "model": name,
            "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            **({} if weights is None else {"weights": weights})}


def split(model: nn.Module, inputs: torch.Tensor, cut: str | None = None, dt_s: float | None = None
          ) -> tuple[Partition, torch.Tensor, str]:
    """The partition of ``model`` and the inputs in the bundle's layout (B, T, ...), with the layout the
    model takes (``"BT"`` or ``"TB"``): a HybridModel or a flat nn.Sequential by :func:`partition`, any other
    module by graph capture (:mod:`neurodeploy.compiler.capture`) on ``inputs``."""
    if isinstance(model, (HybridModel, nn.Sequential)):
        return partition(model, cut, dt_s), inputs, "BT"
    if cut is not None:
        raise UsageError("cut= applies to a flat nn.Sequential; a captured model is cut where its spikes first "
                         "meet an operation Loihi cannot run")
    from neurodeploy.compiler.capture import capture, dense_remainder, spiking_sequential

    cap = capture(model, inputs, dt_s)
    bundle_inputs = inputs if cap.time_dim == 1 else inputs.transpose(0, 1)
    dense = dense_remainder(model, cap, inputs)
    paths = {str(i): module_label(path, m) for i, (path, m) in enumerate(cap.chain)}
    return Partition(spiking_sequential(cap), dense, None, captured_placement(model, cap), paths), bundle_inputs, \
        "BT" if cap.time_dim == 1 else "TB"


def compile_hybrid(model: nn.Module, inputs: torch.Tensor, out: Path, dt_s: float, name: str,
                   cut: str | None = None, profile: str = "loihi2", schedule: str | None = None,
                   weights: str | None = None, precision: str = "auto", calibration=None) -> Path:
    """Partition ``model``, export both halves, verify them, write the bundle at ``out``.

    ``inputs`` are in the layout the model takes (``(B, T, ...)``, or ``(T, B, ...)`` for a captured model
    that loops over dim 0); ``profile``: the neuromorphic profile the spiking part is quantized and mapped
    for; ``schedule``: the bundle's deployment schedule (default ``window`` for a streaming back-end, else
    ``end``); ``weights``: the state_dict file loaded into the model, recorded in the provenance;
    ``precision`` and ``calibration`` (``True``: the example inputs) as :func:`neurodeploy.spiking.quantize.quantize_for`.
    """
    model = model.eval()
    part, inputs, layout = split(model, inputs, cut, dt_s)
    num_steps = int(inputs.shape[1])
    window = part.adapter.window if part.adapter is not None else num_steps
    if num_steps % window:
        raise UsageError(f"the example inputs have T={num_steps} steps, not a multiple of the adapter window "
                         f"K={window}; pass inputs whose time dimension (dim 1 of (B, T, ...)) is a multiple of {window}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        input_shape = tuple(inputs.shape[2:])
        if isinstance(model, FeedbackHybrid):
            input_shape = (input_shape[0] + model.n_fb,)
        write_nir(_spiking_graph(part.spiking, input_shape, dt_s), tmp / "spiking.nir")
        plan = nir_to_plan(nir.read(str(tmp / "spiking.nir")))  # proves the written graph maps onto Lava
        cut_output, cut_node = next(iter(plan.outputs.items()))
        feedback = _feedback_part(model, plan.layer(cut_node).delay_steps, tmp)
        ref = reference_outputs(part, inputs, model)
        dense = copy.deepcopy(part.dense).float().eval()
        fixed_length = part.fixed_length
        examples = _parity_examples(num_steps, window, plan.layer(cut_node).n, fixed_length)
        if isinstance(part.dense, GpuTail):  # populations moved to the GPU take the cut's spikes in their shape
            examples = [e.reshape(*e.shape[:2], *ref[f"spikes/{cut_node}"].shape[2:]) for e in examples]
        dense_part = _export_dense(dense, ref[f"spikes/{cut_node}"], examples, tmp, fixed_length)
        if feedback:
            dense_part = dense_part.model_copy(update={"schedules": ["window"]})
        manifest = Manifest(
            name=name, num_steps=num_steps, num_tokens=num_steps // window, input_layout=layout,
            spiking=SpikingPart(dt_s=plan.dt, n_in=plan.n_in, input_shape=list(plan.input_shape),
                                cut_output=cut_output, outputs=plan.outputs,
                                delay_steps={n.name: n.delay_steps for n in plan.neurons},
                                total_delay_steps=plan.max_delay_steps, module_paths=part.module_paths,
                                **_spiking_fixed_point(plan, profile, precision,
                                                       _calibration_inputs(plan, calibration, inputs))),
            dense=dense_part, feedback=feedback, schedule=_default_schedule(dense_part, feedback, schedule),
            adapter=None if part.adapter is None else Adapter(kind=ADAPTER_KINDS[type(part.adapter)], window=window),
            placement=part.placement, cut=cut,
            reference=Reference(dtype="float64", num_samples=int(inputs.shape[0])),
            provenance=_provenance(name, weights),
        )
        files = {"spiking.nir": tmp / "spiking.nir", "dense.onnx": tmp / "dense.onnx"}
        if dense_part.step_file:
            files[dense_part.step_file] = tmp / dense_part.step_file
        if feedback:
            files[feedback.file] = tmp / feedback.file
        return write_bundle(out, manifest, files, inputs.numpy(), ref)


def compile_spiking(source, out: Path, dt_s: float | None = None, profile: str = "loihi2",
                    discretisation: str = "euler", fixes: tuple[str, ...] | list[str] = (),
                    precision: str = "auto", calibration: np.ndarray | None = None) -> Path:
    """A spiking-only bundle from a ``.nir`` or netx ``.net`` file, or an in-memory ``nir.NIRGraph`` (as a
    framework's ``to_nir`` returns it; missing types are filled before it is written): design rules, Loihi
    quantization (NIR sources; netx files carry their own integers), resource map on ``profile``. A graph
    without a fixed-point form still gets its float bundle; the reason is recorded and fixed-point runs
    refuse it. ``discretisation`` and the exporter ``fixes`` are recorded in the bundle and used on every read;
    ``precision`` and ``calibration`` (inputs (B, T, *input_shape)) as :func:`neurodeploy.spiking.quantize.quantize_for`."""
    if isinstance(source, nir.NIRGraph):
        from neurodeploy.exporters.nir_types import complete_types

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "graph.nir"
            write_nir(complete_types(source), path)
            return compile_spiking(path, out, dt_s, profile, discretisation, fixes, precision, calibration)
    from neurodeploy.exporters import SPIKING_FORMATS, load_spiking
    from neurodeploy.spiking.resources import map_resources

    source = Path(source)
    plan = load_spiking(source, dt_s, discretisation, fixes)
    calibration = None if calibration is None else \
        np.asarray(calibration, dtype=np.float64).reshape(*np.shape(calibration)[:2], *plan.input_shape)
    fixed_point = _spiking_fixed_point(plan, profile, precision, calibration) if not plan.is_quantized else \
        {"profile": profile, "resources": map_resources(plan, profile).as_dict()}
    fmt = SPIKING_FORMATS[source.suffix.lower()]
    file = f"spiking{source.suffix.lower()}"
    manifest = Manifest(
        name=source.stem,
        spiking=SpikingPart(file=file, format=fmt, dt_s=plan.dt, n_in=plan.n_in, input_shape=list(plan.input_shape),
                            outputs=plan.outputs, delay_steps={n.name: n.delay_steps for n in plan.neurons},
                            total_delay_steps=plan.max_delay_steps, discretisation=discretisation,
                            exporter_fixes=list(fixes), **fixed_point),
        provenance={"neurodeploy": neurodeploy.__version__, "source": str(source.resolve()),
                    "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")},
    )
    return write_bundle(out, manifest, {file: source})
