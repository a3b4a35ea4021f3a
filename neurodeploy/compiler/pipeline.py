"""The compile flow, as a list of named passes (as hls4ml's flows): a model in, a deployment bundle out.

A hybrid PyTorch model (:func:`compile_hybrid`), each pass a function of the :class:`HybridJob` so far::

    split -> to_nir -> lower -> torch_reference -> export_dense -> quantize_and_map -> write

(a model Loihi cannot start runs wholly on the GPU: the passes of the spiking part, :func:`spiking_pass`,
do nothing, and the dense part is the model itself, taking its inputs)

- ``split``: the part Loihi runs and the part the GPU runs (:mod:`neurodeploy.compiler.split`);
- ``to_nir``: the spiking part as a NIR graph file (:mod:`neurodeploy.exporters`);
- ``lower``: the NIR file read back through the design rules into a plan (proves it maps onto Lava),
  the cut and the feedback channel;
- ``torch_reference``: the PyTorch model's outputs in float64, stored as the bundle's reference
  (:mod:`neurodeploy.compiler.torch_reference`);
- ``export_dense``: the dense part to ONNX (the step model too for a streaming back-end), verified
  against PyTorch on random spikes at three lengths and batches;
- ``quantize_and_map``: Loihi's integers and the resource map (:mod:`neurodeploy.compiler.calibration`);
- ``write``: the manifest and files, written atomically (:mod:`neurodeploy.bundle`).

A spiking-only graph (:func:`compile_spiking`): ``load -> quantize_and_map -> write``. The ONNX model
runs in float32; the reference is float64, the precision of Lava's ``floating_pt`` models.
"""
from __future__ import annotations

import copy
import datetime as dt
import functools
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nir
import numpy as np
import onnx
import torch
from torch import nn

from neurodeploy._version import __version__
from neurodeploy.bundle import (Adapter, DensePart, FeedbackPart, Manifest, ParityRecord, SpikingPart, TorchReference,
                                write_bundle)
from neurodeploy.bundle.schedules import compiled_schedule
from neurodeploy.compiler import split as splitting
from neurodeploy.compiler.calibration import calibration_inputs, fixed_point
from neurodeploy.compiler.partition import Partition
from neurodeploy.compiler.capture import DenseRemainder
from neurodeploy.compiler.stepping import StreamChoices, default_window, derive_step, with_step_thresholds
from neurodeploy.compiler.torch_reference import torch_reference as model_reference
from neurodeploy.errors import ModelConfigError, SpikingPlanError, UsageError
from neurodeploy.exporters import (INPUT_NAME, OUTPUT_NAME, check_dynamic_dims, check_parity, export_backend,
                                   export_dense as export_onnx, frontend_to_nir, sequential_to_nir, write_nir)
from neurodeploy.models.adapters import ADAPTERS
from neurodeploy.models.backends import StreamingBackend
from neurodeploy.models.feedback import FeedbackHybrid, feedback_arrays
from neurodeploy.models.frontend import SpikingSequential
from neurodeploy.spiking.nir_lowering import nir_to_plan
from neurodeploy.spiking.plan import SpikingPlan

LOG = logging.getLogger(__name__)
ADAPTER_KINDS = {cls: kind for kind, cls in ADAPTERS.items()}
DYNAMIC_DIMS = {0: "batch", 1: "steps"}


@dataclass
class CompileOptions:
    dt_s: float
    name: str
    cut: str | None = None
    profile: str = "loihi2"  # the neuromorphic profile the spiking part is quantized and mapped for
    schedule: str | None = None
    weights: str | None = None  # the state_dict file loaded into the model, recorded in the provenance
    precision: str = "auto"
    calibration: object = None  # True: the example inputs; else inputs (B, T, ...) or None
    max_chips: int | None = None  # the chip budget (None: any number of chips)
    stream: StreamChoices = StreamChoices()  # how a captured model's own dense code streams


@dataclass
class HybridJob:
    """A hybrid compile so far: what each pass adds, in a temporary folder ``tmp``."""

    model: nn.Module
    inputs: torch.Tensor  # the example inputs; after ``split`` in the bundle's layout (B, T, ...)
    options: CompileOptions
    tmp: Path
    layout: str = "BT"
    part: Partition | None = None
    plan: SpikingPlan | None = None
    cut_output: str = ""
    cut_node: str = ""
    feedback: FeedbackPart | None = None
    reference: dict[str, np.ndarray] = field(default_factory=dict)
    dense: DensePart | None = None
    fixed_point: dict = field(default_factory=dict)

    @property
    def num_steps(self) -> int:
        return int(self.inputs.shape[1])

    @property
    def window(self) -> int:
        return self.part.adapter.window if self.part.adapter is not None else self.num_steps

    @property
    def gpu_only(self) -> bool:
        """Loihi cannot start the model: it runs wholly on the GPU (the passes of the spiking part skip)."""
        return self.part is not None and self.part.spiking is None


def spiking_pass(compile_pass: Callable[[HybridJob], HybridJob]) -> Callable[[HybridJob], HybridJob]:
    """A pass of the spiking part: it does nothing for a model that runs wholly on the GPU."""
    @functools.wraps(compile_pass)
    def run(job: HybridJob) -> HybridJob:
        return job if job.gpu_only else compile_pass(job)
    return run


def split(job: HybridJob) -> HybridJob:
    """The partition, and the inputs in the bundle's layout; T a multiple of the adapter window."""
    job.part, job.inputs, job.layout = splitting.split(job.model, job.inputs, job.options.cut, job.options.dt_s)
    if job.num_steps % job.window:
        raise UsageError(f"the example inputs have T={job.num_steps} steps, not a multiple of the adapter window "
                         f"K={job.window}; pass inputs whose time dimension (dim 1 of (B, T, ...)) is a multiple of "
                         f"{job.window}")
    return job


@spiking_pass
def to_nir(job: HybridJob) -> HybridJob:
    """``spiking.nir``: the spiking part's graph (feedback channels join its input)."""
    input_shape = tuple(job.inputs.shape[2:])
    if isinstance(job.model, FeedbackHybrid):
        input_shape = (input_shape[0] + job.model.n_fb,)
    spiking, dt_s = job.part.spiking, job.options.dt_s
    graph = frontend_to_nir(spiking, dt_s) if isinstance(spiking, SpikingSequential) else \
        sequential_to_nir(spiking, input_shape, dt_s, producer="neurodeploy")
    write_nir(graph, job.tmp / "spiking.nir")
    return job


@contextmanager
def _user_names(job: HybridJob) -> Iterator[None]:
    """Errors about NIR nodes name the modules of the user's model they came from."""
    try:
        yield
    except SpikingPlanError as exc:
        raise exc.renamed(job.part.module_paths) from exc


@spiking_pass
def lower(job: HybridJob) -> HybridJob:
    """The written graph through the design rules into a plan; the cut; the feedback channel's arrays."""
    with _user_names(job):
        job.plan = nir_to_plan(nir.read(str(job.tmp / "spiking.nir")))
    job.cut_output, job.cut_node = next(iter(job.plan.outputs.items()))
    job.feedback = _feedback_part(job.model, job.plan.layer(job.cut_node).delay_steps, job.tmp)
    return job


def torch_reference(job: HybridJob) -> HybridJob:
    job.reference = model_reference(job.model, job.inputs, part=job.part)
    return job


def export_dense(job: HybridJob) -> HybridJob:
    """The dense part to ONNX, verified against PyTorch on random spikes at the cut (in the cut population's
    shape where populations moved to the GPU take them); a model that runs wholly on the GPU on its own
    example inputs, as batches of 1, 2 and 3."""
    if job.gpu_only:
        x = job.inputs.float()
        examples = [x.repeat(3, *[1] * (x.dim() - 1))[i: i + b] for i, b in zip((0, 1, 2), (1, 2, 3))]
        job.dense = _export_dense(copy.deepcopy(job.part.dense).float().eval(), x.numpy(), examples, job.tmp, True)
        job.dense = with_step_thresholds(job.dense.model_copy(update={"input_shape": list(x.shape[2:])}),
                                         job.options.stream.event_threshold, job.options.stream.exit_threshold)
        return job
    cut_spikes = job.reference[f"spikes/{job.cut_node}"]
    examples = _parity_examples(job.num_steps, job.window, job.plan.layer(job.cut_node).n, job.part.fixed_length)
    if job.part.cut_reads == "v":  # the membrane crosses the cut: voltages, not spikes
        g = torch.Generator().manual_seed(4321)
        examples = [torch.randn(e.shape, generator=g) * float(np.abs(cut_spikes).max() or 1) for e in examples]
    if job.part.fixed_length:  # populations moved to the GPU, or the user's own code, take the cut's shape
        examples = [e.reshape(*e.shape[:2], *cut_spikes.shape[2:]) for e in examples]
    dense = copy.deepcopy(job.part.dense).float().eval()
    job.dense = _export_dense(dense, cut_spikes, examples, job.tmp, job.part.fixed_length)
    if isinstance(dense, DenseRemainder) and not job.feedback:  # the user's own code: a step model where exact
        cut = torch.from_numpy(np.asarray(cut_spikes, dtype=np.float32))
        job.dense = job.dense.model_copy(update=derive_step(dense, cut, default_window(job.num_steps),
                                                            job.tmp / "dense_step.onnx",
                                                            prefix_runner=job.options.stream.prefix_runner))
    job.dense = with_step_thresholds(job.dense, job.options.stream.event_threshold, job.options.stream.exit_threshold)
    if job.feedback:
        job.dense = job.dense.model_copy(update={"schedules": ["window"]})
    return job


@spiking_pass
def quantize_and_map(job: HybridJob) -> HybridJob:
    o = job.options
    with _user_names(job):
        job.fixed_point = fixed_point(job.plan, o.profile, o.precision,
                                      calibration_inputs(job.plan, o.calibration, job.inputs), o.max_chips)
    return job


def write(job: HybridJob, out: Path) -> Path:
    """The manifest and every file, written atomically at ``out``."""
    plan, o = job.plan, job.options
    spiking = None if job.gpu_only else \
        SpikingPart(dt_s=plan.dt, n_in=plan.n_in, input_shape=list(plan.input_shape), cut_output=job.cut_output,
                    outputs=plan.outputs, delay_steps={n.name: n.delay_steps for n in plan.neurons},
                    total_delay_steps=plan.max_delay_steps, module_paths=job.part.module_paths,
                    cut_reads=job.part.cut_reads, **job.fixed_point)
    manifest = Manifest(
        name=o.name, num_steps=job.num_steps, num_tokens=job.num_steps // job.window, input_layout=job.layout,
        spiking=spiking, dense=job.dense, feedback=job.feedback,
        schedule=compiled_schedule(job.dense.schedules, job.feedback is not None,
                                   o.schedule or ("end" if job.dense.step_output == "last" else None)),
        adapter=None if job.part.adapter is None else Adapter(kind=ADAPTER_KINDS[type(job.part.adapter)], window=job.window),
        placement=job.part.placement, cut=o.cut,
        reference=TorchReference(dtype="float64", num_samples=int(job.inputs.shape[0])),
        provenance=_provenance(o.name, o.weights),
    )
    files = {"dense.onnx": job.tmp / "dense.onnx"} | ({} if job.gpu_only else {"spiking.nir": job.tmp / "spiking.nir"})
    prefix_graphs = [f for f in job.dense.prefix_files if f != "dense.onnx"]  # dense.onnx is in files already
    for name in (job.dense.step_file, job.feedback.file if job.feedback else None, *prefix_graphs):
        if name:
            files[name] = job.tmp / name
    return write_bundle(out, manifest, files, job.inputs.numpy(), job.reference)


HYBRID_PASSES = (split, to_nir, lower, torch_reference, export_dense, quantize_and_map)


class PassClock:
    """The seconds each compile pass took: each pass logged as it starts (``pass i of n``), all of them in
    one line at the end (``compiled NAME in 12.3 s: split 0.1 s, to_nir 0.4 s, ...``), at INFO (the command
    line shows it on a terminal)."""

    def __init__(self, name: str, passes: int) -> None:
        self.name, self.passes, self.seconds = name, passes, {}
        self._t0 = time.perf_counter()

    @contextmanager
    def timing(self, pass_name: str) -> Iterator[None]:
        start = time.perf_counter()
        LOG.info("compiling %s: pass %d of %d, %s (%.1f s so far)", self.name, len(self.seconds) + 1, self.passes,
                 pass_name, start - self._t0)
        yield
        self.seconds[pass_name] = time.perf_counter() - start

    def summary(self) -> str:
        parts = ", ".join(f"{name} {s:.2f} s" for name, s in self.seconds.items())
        return f"compiled {self.name} in {time.perf_counter() - self._t0:.1f} s: {parts}"


def compile_hybrid(model: nn.Module, inputs: torch.Tensor, out: Path, dt_s: float, name: str,
                   cut: str | None = None, profile: str = "loihi2", schedule: str | None = None,
                   weights: str | None = None, precision: str = "auto", calibration=None,
                   max_chips: int | None = None, stream: StreamChoices = StreamChoices()) -> Path:
    """Run :data:`HYBRID_PASSES` on ``model`` and write the bundle at ``out``.

    ``inputs`` are in the layout the model takes (``(B, T, ...)``, or ``(T, B, ...)`` for a captured model
    that loops over dim 0); ``schedule``: the bundle's deployment schedule (default ``window`` for a
    streaming back-end, else ``end``); ``precision`` and ``calibration`` (``True``: the example inputs) as
    :func:`neurodeploy.spiking.quantize.quantize_for`.
    """
    options = CompileOptions(dt_s, name, cut, profile, schedule, weights, precision, calibration, max_chips, stream)
    with tempfile.TemporaryDirectory() as tmp:
        job = HybridJob(model.eval(), inputs, options, Path(tmp))
        clock = PassClock(name, len(HYBRID_PASSES) + 1)
        for compile_pass in HYBRID_PASSES:
            with clock.timing(compile_pass.__name__):
                job = compile_pass(job)
        with clock.timing("write"):
            path = write(job, out)
        LOG.info(clock.summary())
        return path


def compile_spiking(source, out: Path, dt_s: float | None = None, profile: str = "loihi2",
                    discretisation: str = "euler", fixes: tuple[str, ...] | list[str] = (),
                    precision: str = "auto", calibration: np.ndarray | None = None,
                    max_chips: int | None = None) -> Path:
    """A spiking-only bundle from a ``.nir`` or netx ``.net`` file, or an in-memory ``nir.NIRGraph`` (as a
    framework's ``to_nir`` returns it; missing types are filled before it is written)::

        load (design rules) -> quantize_and_map (netx files carry their own integers) -> write

    A graph without a fixed-point form still gets its float bundle; the reason is recorded and fixed-point
    runs refuse it. ``discretisation`` and the exporter ``fixes`` are recorded in the bundle and used on every
    read; ``precision`` and ``calibration`` (inputs (B, T, *input_shape)) as
    :func:`neurodeploy.spiking.quantize.quantize_for`."""
    if isinstance(source, nir.NIRGraph):
        from neurodeploy.spiking.nir_types import complete_types

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "graph.nir"
            write_nir(complete_types(source), path)
            return compile_spiking(path, out, dt_s, profile, discretisation, fixes, precision, calibration, max_chips)
    from neurodeploy.exporters import SPIKING_FORMATS, load_spiking

    source = Path(source)
    clock = PassClock(source.name, 3)
    with clock.timing("load"):  # the design rules
        plan = load_spiking(source, dt_s, discretisation, fixes)
    calibration = None if calibration is None else \
        np.asarray(calibration, dtype=np.float64).reshape(*np.shape(calibration)[:2], *plan.input_shape)
    with clock.timing("quantize_and_map"):
        fixed = fixed_point(plan, profile, precision, calibration, max_chips)
    file = f"spiking{source.suffix.lower()}"
    manifest = Manifest(
        name=source.stem,
        spiking=SpikingPart(file=file, format=SPIKING_FORMATS[source.suffix.lower()], dt_s=plan.dt, n_in=plan.n_in,
                            input_shape=list(plan.input_shape), outputs=plan.outputs,
                            delay_steps={n.name: n.delay_steps for n in plan.neurons},
                            total_delay_steps=plan.max_delay_steps, discretisation=discretisation,
                            exporter_fixes=list(fixes), **fixed),
        provenance={"neurodeploy": __version__, "source": str(source.resolve()), "created_utc": _now()},
    )
    with clock.timing("write"):
        path = write_bundle(out, manifest, {file: source})
    LOG.info(clock.summary())
    return path


def _parity_examples(num_steps: int, window: int, n: int, fixed_length: bool = False) -> list[torch.Tensor]:
    """Random spikes at three lengths (T/2, T, 3T) and batches 1, 2, 3; all at T where the dense part is the
    user's own loop over T (a captured model)."""
    g = torch.Generator().manual_seed(1234)
    lengths = [num_steps] * 3 if fixed_length else \
        sorted({max(window, (num_steps // 2) // window * window), num_steps, 3 * num_steps})
    return [(torch.rand(b, t, n, generator=g) < 0.2).float() for b, t in zip((1, 2, 3), lengths)]


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
    export_onnx(dense, example, tmp / "dense.onnx", dims)
    check_dynamic_dims(tmp / "dense.onnx", dims)
    return DensePart(input_name=INPUT_NAME, output_name=OUTPUT_NAME, dynamic_dims=dims,
                     parity=_records(check_parity(tmp / "dense.onnx", dense, examples)), schedules=["end"])


def _records(checks) -> list[ParityRecord]:
    return [ParityRecord(shape=list(c.shape), max_abs_err=c.max_abs_err) for c in checks]


def _feedback_part(model: nn.Module, cut_delay: int, tmp: Path) -> FeedbackPart | None:
    if not isinstance(model, FeedbackHybrid):
        return None
    if model.latency_steps != cut_delay:
        raise ModelConfigError(f"the feedback latency is {model.latency_steps} steps but the spiking pipeline is "
                               f"{cut_delay} deep (Lava's delay of the cut population); build the model with "
                               f"latency_steps={cut_delay}")
    np.savez(tmp / "feedback.npz", **feedback_arrays(model))
    return FeedbackPart(n_fb=model.n_fb, latency_steps=model.latency_steps)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _provenance(name: str, weights: str | None) -> dict[str, str]:
    return {"neurodeploy": __version__, "torch": torch.__version__, "nir": getattr(nir, "__version__", "unknown"),
            "onnx": onnx.__version__, "model": name, "created_utc": _now(),
            **({} if weights is None else {"weights": weights})}
