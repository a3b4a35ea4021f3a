"""What one co-simulation works with, set up once: the inputs, the plan, the spiking back-end's name, the
dense part on ONNX Runtime for the schedule asked for, and the feedback channel."""
from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from neurodeploy.bundle import Bundle
from neurodeploy.errors import UsageError
from neurodeploy.exporters.onnx_session import make_session
from neurodeploy.runtime.bundle_plan import load_plan
from neurodeploy.runtime.devices import AUTO, Device
from neurodeploy.runtime.dense_step import DenseRunner, PrefixRunner, StepRunner, model_output
from neurodeploy.runtime.feedback import FeedbackLoop
from neurodeploy.spiking.plan import SpikingPlan


@dataclass
class CosimRun:
    bundle: Bundle
    x: np.ndarray  # (B, T, ...) normalised inputs
    mode: str
    backend: str
    plan: SpikingPlan
    dense: DenseRunner | None  # None: a spiking-only bundle
    feedback: FeedbackLoop | None
    show_progress: bool
    device: Device = AUTO  # where the emulator and the dense part compute (neurodeploy.runtime.devices)

    @property
    def cut(self) -> str:
        """The population whose spikes cross to the dense part."""
        return self.plan.outputs[self.bundle.manifest.spiking.cut_output]


def set_up(bundle: Bundle, x: np.ndarray, mode: str, backend: str, schedule: str, progress: bool,
           device: Device = AUTO, threads: int | None = None) -> CosimRun:
    """The plan in ``mode``, the ONNX Runtime sessions (``threads`` each, sleeping between runs, so that they
    leave the cores to a spiking part running beside them) and, for the window and event schedules, the step
    model."""
    m = bundle.manifest
    plan = load_plan(bundle, mode)
    dense = feedback = None
    if not m.spiking_only:
        dense = _dense_runner(bundle, schedule, device.ort_gpu, threads)
        if m.feedback is not None:
            feedback = FeedbackLoop(bundle, plan, dense.stepper, x.shape[1])
    return CosimRun(bundle, x, mode, backend, plan, dense, feedback, progress and len(x) > 1 and sys.stderr.isatty(),
                    device)


def dense_as_deployed(bundle: Bundle, schedule: str | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """The bundle's dense part as the co-simulation runs it on ``schedule`` (default: the bundle's own; the
    step model window by window, only salient windows for ``event``): cut spikes (B, T, ...) -> model output
    (B, ...), one sample after another. A bundle with feedback refuses (its loop runs through the spiking
    part)."""
    m = bundle.manifest
    if m.feedback is not None:
        raise UsageError(f"bundle '{m.name}' closes a feedback loop between its parts: its dense part cannot "
                         "run on a stage's spikes alone; compare its stages without labels")
    dense = _dense_runner(bundle, schedule or m.default_schedule)
    return lambda cut: model_output(m.dense, np.stack([dense.run(np.asarray(cut[b: b + 1], dtype=np.float32))
                                                       for b in range(len(cut))]), dense.stepper is not None)


def _dense_runner(bundle: Bundle, schedule: str, prefer_gpu: bool = True, threads: int | None = None) -> DenseRunner:
    """The whole-sequence session and, for the window and event schedules, the step model (on ONNX Runtime's
    CUDA provider where ``prefer_gpu`` and it is offered; ``threads`` intra-op threads each)."""
    m = bundle.manifest
    if schedule == "end":
        stepper = None
    elif m.dense.prefix_files:  # a captured model's code re-run on the windows so far
        stepper = PrefixRunner([bundle.path / f for f in m.dense.prefix_files], m.dense.input_name, m.window_steps,
                               int(np.prod(m.dense.output_shape)), prefer_gpu, threads, m.dense.prefix_any_length)
    else:
        stepper = StepRunner(bundle.path / m.dense.step_file, "window", m.window_steps, prefer_gpu, threads)
    return DenseRunner(make_session(bundle.dense_path, prefer_gpu, spinning=False, threads=threads),
                       m.dense.input_name, stepper,
                       m.dense.event_threshold if schedule == "event" else None)
