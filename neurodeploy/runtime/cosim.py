"""Co-simulation: the spiking part in Lava (or the emulator), its spikes through the adapter into ONNX Runtime.

The batch streams (:mod:`neurodeploy.runtime.streaming`): the spiking part hands each window of the
cut to the dense part as soon as it is computed, and the dense part runs on window l while the
spiking part computes window l+1, with a measured timeline. By schedule:

- ``end``: the whole-sequence dense model (adapter included) runs once on the spikes at the cut;
- ``window``: the streaming step model runs once per window of K steps, its state (KV cache, SSM state,
  adapter state, ...) carried from window to window and reset at each sample;
- ``event``: as ``window``, but only on salient windows (the cut fired at least the bundle's
  ``event_threshold`` spikes); the state is carried and the last output held over the others, so the
  GPU does no work there (``dense_invocations`` counts what it did).

Runs that do not stream go sample by sample (state reset between samples; the emulator computes the
batch, then the dense part runs per sample), with the same outputs: a feedback channel (Lava pauses
at each window, :class:`_Feedback`), a ``checkpoint`` (saved after every sample), a plan Lava cannot
stream (:func:`neurodeploy.runtime.lava_stream.why_not_streamable`), and spiking-only bundles, whose
``y`` is the spikes of their first Output node.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import track

from neurodeploy.bundle import Bundle
from neurodeploy.choices import SCHEDULES
from neurodeploy.cost.counts import LayerSops, synaptic_ops
from neurodeploy.errors import InputShapeError, QuantizationError, ScheduleError, UsageError
from neurodeploy.exporters import load_spiking
from neurodeploy.models.backends import salient_windows
from neurodeploy.runtime.checkpoint import Checkpoint, run_key
from neurodeploy.runtime.lava_runner import LavaRunner, SampleSpikes
from neurodeploy.runtime.onnx_session import make_session
from neurodeploy.runtime.runners import BACKENDS, open_runner
from neurodeploy.spiking.plan import SpikingPlan


ReferenceFn = Callable[[np.ndarray], "dict[str, np.ndarray] | None"]
"""Inputs (B, T, ...) -> the PyTorch model's outputs on them (spikes per population and ``y``), or None."""


@dataclass
class Agreement:
    """Co-simulation vs the PyTorch reference stored in the bundle."""

    spike_mismatches: int  # over every population, every step, every sample
    spike_mismatches_per_layer: dict[str, int]
    max_abs_err: float  # of the final output y
    top1_match: float  # fraction of samples with the same argmax


@dataclass
class CosimResult:
    spikes: dict[str, np.ndarray]  # population -> (B, T, n), aligned to the input (uint8 spikes, float64 values)
    outputs: dict[str, np.ndarray]  # NIR Output node -> (B, T, n)
    y: np.ndarray  # (B, ...) final model output
    wall_s: dict[str, float]
    providers: list[str]
    sops: list[LayerSops]
    agreement: Agreement | None
    mode: str
    backend: str = "lava"
    schedule: str = "end"
    notes: list[str] = field(default_factory=list)
    dense_invocations: int = 0
    inputs: np.ndarray | None = None  # what entered the spiking part (feedback currents included)
    plan: SpikingPlan | None = None  # the spiking part that ran
    exit_windows: np.ndarray | None = None  # (B,) the window each sample exits at (early exit), else None
    timeline: dict | None = None  # measured, where Lava streamed (neurodeploy.runtime.streaming.Timeline)


def exit_windows(y: np.ndarray, threshold: float) -> np.ndarray:
    """Early exit: per sample, the first window whose softmax confidence reaches ``threshold`` (the last
    window when none does). y (B, L, n) per-window outputs."""
    z = y - y.max(axis=-1, keepdims=True)
    confidence = (np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)).max(axis=-1)
    reached = confidence >= threshold
    return np.where(reached.any(axis=1), reached.argmax(axis=1), y.shape[1] - 1)


def exit_outputs(y: np.ndarray, exits: np.ndarray) -> np.ndarray:
    """The output each sample exits with: y[b, exits[b]]."""
    return y[np.arange(len(y)), exits]


def _length_problem(steps: int, m) -> str | None:
    """Why ``steps`` time steps do not fit the dense part: a multiple of the adapter window, or exactly the
    compiled T where the dense part is a captured model's own loop over T."""
    if m.adapter is None:
        return None if steps == m.num_steps else \
            f"T must be {m.num_steps}: the dense part is the model's own code over its {m.num_steps} steps"
    if steps % m.adapter.window:
        return f"T must be a multiple of the adapter window {m.adapter.window} (the bundle was compiled with " \
               f"T={m.num_steps})"
    return None


def normalize_inputs(x: np.ndarray, bundle: Bundle) -> np.ndarray:
    """(T, N) or (B, T, N) -> (B, T, N) float64; spiking-only bundles and conv front-ends: (T, *shape) or
    (B, T, *shape)."""
    m = bundle.manifest
    x = np.asarray(x)
    if m.spiking_only:
        return _shaped_inputs(x, m)
    if len(m.spiking.input_shape) > 1:  # a conv front-end: (B, T, C, H, W)
        x = _shaped_inputs(x, m)
        problem = _length_problem(x.shape[1], m)
        if problem:
            raise InputShapeError(f"input of {x.shape[1]} steps does not fit bundle '{m.name}': {problem}")
        return x
    if x.ndim == 2:
        x = x[None]
    n_in = m.spiking.n_in - (m.feedback.n_fb if m.feedback else 0)  # feedback channels are added by the runtime
    problem = None if x.ndim != 3 else _length_problem(x.shape[1], m)
    if x.ndim != 3 or x.shape[2] != n_in or problem:
        raise InputShapeError(
            f"input of shape {x.shape} does not fit bundle '{m.name}': expected time-major (T, {n_in}) "
            f"or (B, T, {n_in}); {problem or 'see the shape'}")
    if not np.all(np.isfinite(x)):
        raise InputShapeError("input contains NaN or inf values")
    return x.astype(np.float64)


def _shaped_inputs(x: np.ndarray, m) -> np.ndarray:
    """(T, *shape) or (B, T, *shape) (or flattened) -> (B, T, *shape) float64."""
    shape = tuple(m.spiking.input_shape) or (m.spiking.n_in,)
    if x.shape[1:] == shape or (len(shape) > 1 and x.shape[1:] == (m.spiking.n_in,)):
        x = x[None]
    if x.ndim < 3 or x.shape[2:] not in (shape, (m.spiking.n_in,)):
        raise InputShapeError(f"input of shape {x.shape} does not fit bundle '{m.name}': expected time-major "
                              f"(T, {', '.join(map(str, shape))}) or (B, T, {', '.join(map(str, shape))})")
    if not np.all(np.isfinite(x)):
        raise InputShapeError("input contains NaN or inf values")
    return x.reshape(x.shape[0], x.shape[1], *shape).astype(np.float64)


def _agreement(spikes: dict[str, np.ndarray], y: np.ndarray, ref: dict[str, np.ndarray], y_key: str = "y") -> Agreement:
    per_layer = {name: int(np.sum(s != ref[f"spikes/{name}"])) for name, s in spikes.items()}
    ref_y = ref[y_key]
    return Agreement(
        spike_mismatches=sum(per_layer.values()), spike_mismatches_per_layer=per_layer,
        max_abs_err=float(np.max(np.abs(y - ref_y))),
        top1_match=float(np.mean(np.argmax(y, axis=-1) == np.argmax(ref_y, axis=-1))),
    )


class StepRunner:
    """The exported step model with zero initial states; ``run(cut)`` feeds (1, T, n) window by window."""

    def __init__(self, path, input_name: str, window: int) -> None:
        import onnx

        self.session, self.window, self.input_name = make_session(path, spinning=False), window, input_name
        self.states = []
        for vi in onnx.load(str(path), load_external_data=False).graph.input[1:]:
            tt = vi.type.tensor_type
            shape = [1 if d.dim_param else d.dim_value for d in tt.shape.dim]
            self.states.append((vi.name, np.zeros(shape, dtype=onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type))))
        self.n_out = self.session.get_outputs()[0].shape[-1]
        self.invocations = 0

    def reset(self) -> None:
        """Back to the zero state (the start of a sample)."""
        self.state = {name: value for name, value in self.states}
        self.held = np.zeros(self.n_out, np.float32)

    def step(self, window: np.ndarray) -> np.ndarray:
        """One window (1, K, n) -> y (n_out,), advancing the state."""
        y, *new = self.session.run(None, {self.input_name: np.asarray(window, dtype=np.float32), **self.state})
        self.state = dict(zip(self.state, new))
        self.invocations += 1
        return y[0]

    def next(self, window: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """The output after ``window`` (1, K, n): the step model's, or with ``threshold`` (the event
        schedule) the last one held when the window is not salient."""
        if threshold is None or salient_windows(window, threshold)[0]:
            self.held = self.step(window)
        return self.held

    def run(self, cut: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """Outputs per window; with ``threshold``, only salient windows run (the event schedule)."""
        self.reset()
        return np.stack([self.next(cut[:, start: start + self.window], threshold)
                         for start in range(0, cut.shape[1] - self.window + 1, self.window)])


class _Feedback:
    """Window schedule with the feedback channel: Lava pauses when a window's cut spikes are complete,
    the step model runs, and ``fb = W y + b`` joins the input from then on (neurodeploy.models.feedback)."""

    def __init__(self, bundle: Bundle, plan, stepper: StepRunner, num_steps: int) -> None:
        m = bundle.manifest
        with np.load(bundle.path / m.feedback.file) as data:
            self.weight, self.bias = data["weight"], data["bias"]
        self.stepper, self.k, self.latency = stepper, m.adapter.window, m.feedback.latency_steps
        self.cut = plan.outputs[m.spiking.cut_output]
        self.num_steps = num_steps

    def run(self, runner: LavaRunner, x: np.ndarray):
        """x (T, n_in) -> (SampleSpikes, y per window (L, n_out), the input with its feedback currents)."""
        k, steps = self.k, self.num_steps
        n_fb = self.weight.shape[0]
        full = np.concatenate([x, np.zeros((steps, n_fb))], axis=1)
        self.stepper.reset()
        ys: list[np.ndarray] = []

        def on_pause(done: int, read, write) -> None:
            window = len(ys)
            cut = read(self.cut)[window * k: (window + 1) * k]
            ys.append(self.stepper.step(cut[None]))
            fb = self.weight @ ys[-1].astype(np.float64) + self.bias
            full[done:, x.shape[1]:] = fb
            write(done, full[done:])

        pauses = [(l + 1) * k + self.latency for l in range(steps // k - 1)]
        sample = runner.run_sample(full, pause_at=pauses, on_pause=on_pause)
        cut = sample.spikes[self.cut]
        for window in range(len(ys), steps // k):
            ys.append(self.stepper.step(cut[None, window * k: (window + 1) * k]))
        return sample, np.stack(ys), full


def _plan(bundle: Bundle, mode: str) -> SpikingPlan:
    """The bundle's spiking plan; for fixed mode in the integers of the profile it was compiled for."""
    m = bundle.manifest
    plan = load_spiking(bundle.spiking_path, m.spiking.dt_s, **m.spiking.reading)
    if m.spiking.weights_file:  # fine-tuned on the bundle's grid (neurodeploy.qat)
        with np.load(bundle.path / m.spiking.weights_file) as trained:
            for syn in plan.synapses:
                syn.weights = trained[syn.name]
    if mode == "fixed" and m.spiking.quantization_error:
        reasons = [line.strip().removeprefix("- ") for line in m.spiking.quantization_error.splitlines()[1:]]
        raise QuantizationError(reasons or [m.spiking.quantization_error],
                                f"bundle '{m.name}' has no fixed-point form (it runs in float mode)")
    if mode == "fixed" and not plan.is_quantized:
        from neurodeploy.spiking.quantize import quantize_for

        plan = quantize_for(plan, m.spiking.profile, **m.spiking.quantizer).plan
    return plan


def _compared(bundle: Bundle, x: np.ndarray, use_reference: bool, reference_for: ReferenceFn | None,
              spikes: dict[str, np.ndarray], y: np.ndarray, schedule: str, notes: list[str]) -> Agreement | None:
    """Agreement with PyTorch: against the bundle's stored outputs when these are its reference inputs, else
    against ``reference_for(x)`` (the PyTorch model run on ``x``) when it gives one; else None, with a note."""
    key = "y_event" if schedule == "event" else "y"
    if bundle.manifest.reference is None:
        notes.append("agreement not computed: a spiking-only bundle has no PyTorch reference")
        return None
    if use_reference or np.array_equal(x, bundle.reference_inputs().astype(np.float64)):
        return _agreement(spikes, y, bundle.reference_outputs(), key)
    reference = None if reference_for is None else reference_for(x)
    if reference is not None:
        return _agreement(spikes, y, reference, key)
    notes.append("agreement not computed: these are not the bundle's reference inputs and no PyTorch model "
                 "was given (model= in the API, --model on the CLI)")
    return None


def _moved_to_gpu(bundle: Bundle) -> str | None:
    """Why a bundle cut before its last population has only the end schedule (None if it was not)."""
    from neurodeploy.compiler.partition import TAIL_REASON

    m = bundle.manifest
    on_gpu = [p.module for p in m.placement if p.reason == TAIL_REASON]
    if not on_gpu:
        return None
    return (f"it was cut at {m.cut}, so {', '.join(on_gpu)} run on the GPU over the whole sequence (the end "
            "schedule only, no early exits); compile without --cut, or at the last population, for the others")


def _check_request(bundle: Bundle, backend: str, schedule: str, early_exit: bool) -> None:
    """A ScheduleError or UsageError where the bundle cannot run ``schedule`` / early exits / ``backend``."""
    m = bundle.manifest
    if early_exit and (m.dense is None or m.dense.exit_threshold is None):
        raise ScheduleError(f"bundle '{m.name}' has no early exits: " + (
            _moved_to_gpu(bundle) or "compile a streaming back-end built with exit_threshold (e.g. the "
                                     "liquidspikeformer zoo model)"))
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; backends: {list(BACKENDS)}")
    supported = ["end"] if m.dense is None else m.dense.schedules
    if schedule not in SCHEDULES:
        raise ScheduleError(f"unknown schedule {schedule!r}; schedules: {list(SCHEDULES)}")
    if schedule not in supported:
        why = {"window": "the window schedule needs a streaming back-end (neurodeploy.models.backends.StreamingBackend)",
               "event": "the event schedule needs a streaming back-end with a salience_threshold"}.get(schedule, "")
        if m.feedback is not None:
            why = "the bundle has a feedback channel, which needs the window schedule"
        why = _moved_to_gpu(bundle) or why
        raise ScheduleError(f"schedule {schedule!r} is not supported by bundle '{m.name}' "
                            f"(supported: {supported}): {why}")


@dataclass
class _Run:
    """What one co-simulation works with, set up once by :func:`run_cosim`."""

    bundle: Bundle
    x: np.ndarray  # (B, T, ...) normalised inputs
    mode: str
    backend: str
    plan: SpikingPlan
    session: object | None  # the dense model's ONNX Runtime session (None: spiking only)
    stepper: StepRunner | None  # the step model (window and event schedules)
    threshold: float | None  # the event schedule's salience threshold
    feedback: _Feedback | None
    show_progress: bool


def _streamed(run: _Run, saved: Checkpoint | None):
    """The whole batch as one stream with the dense part pipelined behind it
    (:mod:`neurodeploy.runtime.streaming`), where that applies: a hybrid bundle without a feedback channel
    or a checkpoint, on the emulator, or on Lava for a plan that can stream; else None (sample by sample)."""
    from neurodeploy.runtime.lava_stream import why_not_streamable

    if run.session is None or run.feedback is not None or saved is not None or \
            (run.backend == "lava" and why_not_streamable(run.plan, run.mode) is not None):
        return None
    from neurodeploy.runtime import streaming

    m = run.bundle.manifest
    cut = run.plan.outputs[m.spiking.cut_output]
    window = m.adapter.window if m.adapter is not None else run.x.shape[1]
    dense = (run.session, m.dense.input_name, run.stepper, run.threshold)
    if run.backend == "lava":
        return streaming.run_streamed(run.plan, run.x, run.mode, cut, window, *dense)
    from neurodeploy.runtime.emulator import DEFAULT_BATCH_SIZE

    with open_runner("emulator", run.plan, run.x.shape[1], run.mode) as runner:
        return streaming.run_emulated(runner, run.x, cut, window, *dense, batch_size=DEFAULT_BATCH_SIZE,
                                      progress=run.show_progress)


def _sample_by_sample(run: _Run, saved: Checkpoint | None, notes: list[str]):
    """Spikes, outputs per sample, wall times and the input with its feedback currents, one sample after
    another (the emulator: the batch at once, then the dense part per sample), resuming a checkpoint."""
    x, plan, backend = run.x, run.plan, run.backend
    batch, steps = x.shape[:2]
    spikes = {n.name: np.zeros((batch, steps, *n.shape), dtype=n.output_dtype) for n in plan.neurons}
    ys, wall, start = [], {"lava": 0.0, backend: 0.0, "transfer": 0.0, "dense": 0.0}, 0
    x_sops = x if run.feedback is None else np.zeros((batch, steps, plan.n_in))  # with the feedback currents
    partial = None if saved is None else saved.load()
    if partial is not None:
        start = int(partial["done"])
        for name in spikes:
            spikes[name][:start] = partial[f"spikes/{name}"][:start]
        ys = list(partial["y"][:start])
        x_sops[:start] = partial["x_sops"][:start]
    with open_runner(backend, plan, steps, run.mode) as runner:
        batched = None
        if backend == "emulator" and run.feedback is None:  # the whole batch at once, then the dense part per sample
            batched, wall["emulator"] = runner.run_many(x[start:], progress=run.show_progress)
        for b in track(range(start, batch), description="co-simulating", disable=not run.show_progress,
                       console=Console(stderr=True)):
            if saved is not None and b > start:
                saved.save(b, batch, {**{f"spikes/{k}": v for k, v in spikes.items()}, "y": np.stack(ys),
                                      "x_sops": x_sops})
            if run.feedback is not None:
                sample, y_fb, x_sops[b] = run.feedback.run(runner, x[b])
            elif batched is not None:
                sample = SampleSpikes({name: s[b - start] for name, s in batched.items()}, 0.0)
            else:
                sample = runner.run_sample(x[b])
            wall[backend] += sample.wall_s
            for name, s in sample.spikes.items():
                spikes[name][b] = s
            ys.append(y_fb if run.feedback is not None else _dense_outputs(run, spikes, b, wall))
    if saved is not None:
        saved.save(batch, batch, {**{f"spikes/{k}": v for k, v in spikes.items()}, "y": np.stack(ys), "x_sops": x_sops})
        notes.append(f"resumed after {start} of {batch} samples" if start else f"checkpoint in {saved.folder}")
    return spikes, np.stack(ys), wall, x_sops


def _dense_outputs(run: _Run, spikes: dict[str, np.ndarray], b: int, wall: dict[str, float]) -> np.ndarray:
    """Sample b's output: the dense part on its cut spikes (per window with the step model); a
    spiking-only bundle's is the spikes of its first Output node."""
    plan, m = run.plan, run.bundle.manifest
    if run.session is None:
        return spikes[next(iter(plan.outputs.values()))][b]
    t_cut = time.perf_counter()
    cut = spikes[plan.outputs[m.spiking.cut_output]][b: b + 1].astype(np.float32)
    t0 = time.perf_counter()
    wall["transfer"] += t0 - t_cut
    y = run.stepper.run(cut, run.threshold) if run.stepper else run.session.run(None, {m.dense.input_name: cut})[0][0]
    wall["dense"] += time.perf_counter() - t0
    return y


def run_cosim(bundle: Bundle, inputs: np.ndarray | None = None, mode: str = "float",
              backend: str = "lava", progress: bool = True, schedule: str = "end",
              checkpoint: str | Path | None = None, early_exit: bool = False,
              reference_for: ReferenceFn | None = None, stream: bool = True) -> CosimResult:
    """Co-simulate ``inputs`` (default: the bundle's reference inputs) and compare with the reference.

    With ``checkpoint`` (a folder), results are saved after every sample and a rerun of the same
    inputs resumes after the last finished one (:mod:`neurodeploy.runtime.checkpoint`). With ``early_exit``,
    each sample stops at the first window whose output is confident enough (the bundle's
    ``exit_threshold``): ``exit_windows`` says where; the report prices the run up to there.
    ``reference_for(x)``: the PyTorch model's outputs on the normalised inputs ``x`` (B, T, ...), as
    :func:`neurodeploy.compiler.pipeline.reference_outputs` gives them, or None; called only for inputs
    that are not the bundle's own. ``stream=False`` runs sample by sample even where the batch could stream
    (the same outputs, no measured timeline).
    """
    _check_request(bundle, backend, schedule, early_exit)
    m = bundle.manifest
    use_reference = inputs is None
    if use_reference and m.reference is None:
        raise InputShapeError(f"bundle '{m.name}' has no reference inputs; pass inputs (--input FILE.npy), "
                              f"time-major (T, {', '.join(map(str, m.spiking.input_shape or [m.spiking.n_in]))})")
    x = normalize_inputs(bundle.reference_inputs() if use_reference else inputs, bundle)
    plan = _plan(bundle, mode)
    stepper = None if schedule == "end" else StepRunner(bundle.path / m.dense.step_file, "window", m.adapter.window)
    feedback = _Feedback(bundle, plan, stepper, x.shape[1]) if m.feedback is not None else None
    if feedback is not None and (schedule != "window" or mode != "float"):
        raise ScheduleError(f"bundle '{m.name}' has a feedback channel: it runs with --schedule window in float mode")
    run = _Run(bundle, x, mode, backend, plan, None if m.spiking_only else make_session(bundle.dense_path, spinning=False),
               stepper,
               m.dense.event_threshold if schedule == "event" else None, feedback,
               progress and len(x) > 1 and sys.stderr.isatty())
    saved = None if checkpoint is None else \
        Checkpoint(checkpoint, run_key(x, mode, schedule, sorted(m.checksums.items())))
    t_start, notes = time.perf_counter(), []
    streamed, timeline = (_streamed(run, saved) if stream else None), None
    if streamed is not None:
        spikes, y, stream_wall, measured = streamed
        wall, x_sops, timeline = {"lava": 0.0, backend: stream_wall["spiking"], "transfer": 0.0,
                                  "dense": stream_wall["dense"]}, x, measured.as_dict()
    else:
        spikes, y, wall, x_sops = _sample_by_sample(run, saved, notes)
    wall["total"] = time.perf_counter() - t_start
    agreement = _compared(bundle, x, use_reference, reference_for, spikes, y, schedule, notes)
    exits = exit_windows(y, m.dense.exit_threshold) if early_exit else None
    if exits is not None:
        notes.append(f"early exit at confidence {m.dense.exit_threshold:g}: mean exit window "
                     f"{exits.mean() + 1:.2f} of {y.shape[1]}")
    return CosimResult(spikes=spikes, outputs={o: spikes[p] for o, p in plan.outputs.items()}, y=y,
                       exit_windows=exits, wall_s=wall,
                       providers=[] if run.session is None else list(run.session.get_providers()),
                       sops=synaptic_ops(plan, x_sops, spikes), agreement=agreement, mode=mode, notes=notes,
                       schedule=schedule, backend=backend,
                       dense_invocations=stepper.invocations if stepper else (0 if run.session is None else len(x)),
                       inputs=x_sops, plan=plan, timeline=timeline)
