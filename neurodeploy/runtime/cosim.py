"""Co-simulation: the spiking part in Lava (or the emulator), its spikes through the adapter into ONNX Runtime.

Stage 4 (runtime). Enters: a bundle, inputs, mode, back-end and schedule. Leaves: a :class:`CosimResult`
(spikes of every population, outputs, wall times, the measured timeline); agreement with PyTorch and
the counts are computed after the run by the stages above (:mod:`neurodeploy.analysis.agreement`,
:mod:`neurodeploy.cost`). :func:`run_cosim` reads as its steps::

    check the request (schedule rules, back-end) -> shape the inputs -> set up (plan, ONNX sessions)
    -> stream the batch, or run it sample by sample -> early exits -> result

The batch streams (:mod:`neurodeploy.runtime.streaming`): the spiking part hands each window of the
cut to the dense part as soon as it is computed, and the dense part runs on window l while the
spiking part computes window l+1, with a measured timeline. By schedule
(:mod:`neurodeploy.bundle.schedules`): ``end``, the whole-sequence dense model once per sample;
``window``, the step model once per window, its state carried and reset at each sample; ``event``, as
``window`` on salient windows only, the last output held over the others (``dense_invocations`` counts
what the GPU did). Runs that do not stream go sample by sample
(:mod:`neurodeploy.runtime.sample_by_sample`), with the same outputs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neurodeploy.bundle import Bundle
from neurodeploy.bundle.schedules import check_schedule
from neurodeploy.runtime.checkpoint import Checkpoint, run_key
from neurodeploy.runtime.cosim_setup import CosimRun, set_up
from neurodeploy.runtime.dense_step import model_output
from neurodeploy.runtime.devices import resolve_device
from neurodeploy.runtime.early_exit import exit_windows
from neurodeploy.errors import InputShapeError
from neurodeploy.runtime.inputs import bundle_inputs, length_problem
from neurodeploy.runtime.runners import check_backend, open_runner
from neurodeploy.runtime.sample_by_sample import run_sample_by_sample
from neurodeploy.runtime.threads import thread_count, torch_threads
from neurodeploy.spiking.plan import SpikingPlan
from neurodeploy.tables import data_frame, html_table
from neurodeploy.units import display_name, number, si


@dataclass
class CosimResult:
    spikes: dict[str, np.ndarray]  # population -> (B, T, n), aligned to the input (uint8 spikes, float64 values)
    outputs: dict[str, np.ndarray]  # NIR Output node -> (B, T, n)
    y: np.ndarray  # (B, ...) final model output
    wall_s: dict[str, float]
    providers: list[str]
    mode: str
    backend: str = "lava"
    schedule: str = "end"
    notes: list[str] = field(default_factory=list)
    dense_invocations: int = 0
    inputs: np.ndarray | None = None  # what entered the spiking part (feedback currents included)
    plan: SpikingPlan | None = None  # the spiking part that ran
    exit_windows: np.ndarray | None = None  # (B,) the window each sample exits at (early exit), else None
    timeline: dict | None = None  # measured, where the batch streamed (neurodeploy.runtime.streaming.Timeline)
    agreement: object | None = None  # neurodeploy.analysis.agreement.Agreement, set by the API after the run
    module_paths: dict[str, str] = field(default_factory=dict)  # population -> the user's module ("1 (Leaky)")

    def __repr__(self) -> str:
        batch, steps = next(iter(self.spikes.values())).shape[:2] if self.spikes else (len(self.y), 0)
        return (f"CosimResult({batch} samples x {steps} steps, {self.backend} {self.mode}, schedule {self.schedule}; "
                f"y {tuple(self.y.shape)}; {self.agreement if self.agreement is not None else 'no agreement'}; "
                f"wall {si(self.wall_s.get('total'), 's')})")

    def _populations(self) -> list[dict]:
        rows = []
        for name, s in self.spikes.items():
            active = np.count_nonzero(s)
            rows.append({"population": display_name(name, self.module_paths), "neurons": int(np.prod(s.shape[2:])),
                         "events_per_sample": active / max(len(s), 1), "rate": active / max(s.size, 1)})
        return rows

    def _repr_html_(self) -> str:
        rows = [[r["population"], number(r["neurons"]), number(r["events_per_sample"]), number(r["rate"])]
                for r in self._populations()]
        return html_table(repr(self), ["population", "neurons", "spikes (or values) / sample",
                                       "per neuron and step"], rows)

    def to_dataframe(self):
        """One row per population: its neurons, nonzero outputs per sample and per neuron-step (pandas)."""
        return data_frame(self._populations())


def run_cosim(bundle: Bundle, inputs: np.ndarray | None = None, mode: str = "float",
              backend: str = "lava", progress: bool = True, schedule: str = "end",
              checkpoint: str | Path | None = None, early_exit: bool = False, stream: bool = True,
              device: str | None = None, threads: int | None = None) -> CosimResult:
    """Co-simulate ``inputs`` (default: the bundle's reference inputs).

    With ``checkpoint`` (a folder), results are saved after every sample and a rerun of the same
    inputs resumes after the last finished one (:mod:`neurodeploy.runtime.checkpoint`). With ``early_exit``,
    each sample stops at the first window whose output is confident enough (the bundle's
    ``exit_threshold``): ``exit_windows`` says where; the cost model prices the run up to there.
    ``stream=False`` runs sample by sample even where the batch could stream (the same outputs, no
    measured timeline). ``device``: where the emulator and the dense part compute
    (:mod:`neurodeploy.runtime.devices`: ``None``/``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``); ``threads``:
    how many threads torch and ONNX Runtime compute on (:mod:`neurodeploy.runtime.threads`; default torch's
    setting: the cores this process may run on, a pool worker's share).
    """
    m = bundle.manifest
    check_schedule(m, schedule, early_exit, mode)
    check_backend(backend)
    n_threads = thread_count(threads)
    x = bundle_inputs(bundle, inputs)
    problem = None if m.dense is None else length_problem(x.shape[1], m, schedule)
    if problem:
        raise InputShapeError(f"input of {x.shape[1]} steps does not fit bundle '{m.name}': {problem}")
    with torch_threads(n_threads):
        if m.gpu_only:
            return _gpu_only_result(bundle, x, mode, backend, resolve_device(device), n_threads)
        return _run(bundle, x, mode, backend, progress, schedule, checkpoint, early_exit, stream,
                    resolve_device(device), n_threads)


def _run(bundle: Bundle, x: np.ndarray, mode: str, backend: str, progress: bool, schedule: str, checkpoint,
         early_exit: bool, stream: bool, device, threads: int) -> CosimResult:
    """:func:`run_cosim` of a bundle with a spiking part, its request checked and its inputs shaped."""
    m = bundle.manifest
    run = set_up(bundle, x, mode, backend, schedule, progress, device, threads)
    saved = None if checkpoint is None else Checkpoint(checkpoint, run_key(x, mode, schedule, sorted(m.checksums.items())))
    t_start, notes = time.perf_counter(), []
    streamed = _streamed(run) if stream and saved is None else None
    if streamed is not None:
        spikes, y, wall, timeline = streamed
        x_run = x
    else:
        (spikes, y, wall, x_run), timeline = run_sample_by_sample(run, saved, notes), None
    wall["total"] = time.perf_counter() - t_start
    if m.dense is not None:  # a membrane sent at the cut, in the model's units (Loihi's integers in fixed point)
        spikes[run.cut] = run.plan.cut_values(run.cut, spikes[run.cut])
    exits = exit_windows(y, m.dense.exit_threshold) if early_exit else None
    if exits is not None:
        notes.append(f"early exit at confidence {m.dense.exit_threshold:g}: mean exit window "
                     f"{exits.mean() + 1:.2f} of {y.shape[1]}")
    if run.dense is not None:  # a captured model's step outputs: the last (or exit) window's is its output
        y = model_output(m.dense, y, run.dense.stepper is not None, exits)
    return CosimResult(spikes=spikes, outputs={o: spikes[p] for o, p in run.plan.outputs.items()}, y=y,
                       wall_s=wall, providers=[] if run.dense is None else list(run.dense.session.get_providers()),
                       mode=mode, backend=backend, schedule=schedule, notes=notes,
                       dense_invocations=_dense_invocations(run), inputs=x_run, plan=run.plan, exit_windows=exits,
                       timeline=timeline, module_paths=dict(m.spiking.module_paths))


def _gpu_only_result(bundle: Bundle, x: np.ndarray, mode: str, backend: str, device, threads: int) -> CosimResult:
    """A bundle whose model runs wholly on the GPU: the model on ONNX Runtime (:mod:`neurodeploy.runtime.gpu_only`)."""
    from neurodeploy.runtime.gpu_only import run_gpu_only

    y, dense_s, providers = run_gpu_only(bundle, x, device.ort_gpu, threads)
    note = "the whole model runs on the GPU (Loihi cannot start it): mode and back-end change nothing"
    return CosimResult(spikes={}, outputs={}, y=y, wall_s={"lava": 0.0, "dense": dense_s, "total": dense_s},
                       providers=providers, mode=mode, backend=backend, schedule="end", notes=[note],
                       dense_invocations=len(x), inputs=x)


def _streamed(run: CosimRun):
    """The whole batch as one stream with the dense part pipelined behind it, where that applies: a hybrid
    bundle without a feedback channel, on the emulator, or on Lava for a plan that can stream; else None.
    -> (spikes, y, wall times, the measured timeline as a dict)."""
    from neurodeploy.runtime.lava_stream import why_not_streamable

    if run.dense is None or run.feedback is not None or \
            (run.backend == "lava" and why_not_streamable(run.plan, run.mode) is not None):
        return None
    from neurodeploy.runtime import streaming

    m = run.bundle.manifest
    window = m.windowed("end" if run.dense.stepper is None else "window") or run.x.shape[1]
    dense = (run.dense.session, run.dense.input_name, run.dense.stepper, run.dense.threshold)
    if run.backend == "lava":
        spikes, y, wall, measured = streaming.run_streamed(run.plan, run.x, run.mode, run.cut, window, *dense)
    else:
        from neurodeploy.runtime.emulator import DEFAULT_BATCH_SIZE

        with open_runner("emulator", run.plan, run.x.shape[1], run.mode, run.device.torch) as runner:
            spikes, y, wall, measured = streaming.run_emulated(runner, run.x, run.cut, window, *dense,
                                                               batch_size=DEFAULT_BATCH_SIZE,
                                                               progress=run.show_progress)
    times = {"lava": 0.0, run.backend: wall["spiking"], "transfer": 0.0, "dense": wall["dense"]}
    return spikes, y, times, measured.as_dict()


def _dense_invocations(run: CosimRun) -> int:
    """How often the GPU ran: step model runs, else once per sample (0 for a spiking-only bundle)."""
    if run.dense is None:
        return 0
    return run.dense.invocations if run.dense.invocations is not None else len(run.x)
