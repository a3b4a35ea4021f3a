"""The co-simulation as a pipeline: the spiking part streams the batch while the dense part runs on each
window of the cut as it arrives, with a measured timeline. Both back-ends run it:

- **Lava** (:mod:`neurodeploy.runtime.lava_stream`): Lava's processes run on their own; this process
  receives their output step by step and runs the dense step on each window as soon as its last step
  is in, while Lava's processes go on computing the next window into their bounded output channels
  (full channels make Lava wait: back-pressure). Lava's compute is in other processes, so the
  receiving thread does the dense work itself.
- **Emulator** (:mod:`neurodeploy.runtime.emulator`): it computes a chunk of samples step by step in
  this process; at each window's last step it hands every sample's window to a dense thread behind a
  bounded queue of such window batches (:class:`DenseThread`; a full queue makes the emulator wait:
  back-pressure), which runs the dense steps while the emulator computes the next window. The two
  overlap where PyTorch and ONNX Runtime release the GIL; on a CPU both halves are mostly Python loops
  over small operations, so they overlap little (2 cores, liquidspikeformer, 1,024 samples, medians of
  5 whole co-simulations: 1.67 s streamed, 1.82 s sample by sample).

Per schedule: ``window`` / ``event``: the step model on every window (``event``: on salient windows,
the last output held otherwise), its state reset at each sample's first window and kept per sample;
``end``: the whole-sequence model once a sample's last window is in. The emulator hands the dense thread
one window of every sample of its chunk at once: where the step model's states (or the whole-sequence
model's input) have a batch dimension, that is one ONNX Runtime call for all of them, each sample's state
kept in its row (:meth:`DenseWorker.can_batch`; outputs equal to one call per sample); Lava streams one sample at a time.

The timeline (the JSON's ``timeline``, measured on this machine) gives, per window, when its last
step left the spiking part, when the dense step started and ended, how many steps the spiking part
had computed beyond the window at both moments (fewer than K at the start: it had not finished the
next window; more at the end than at the start: it ran on during the dense step), and how many
windows were waiting for the dense part when its step started (``queue_depth``); per sample, its
end-to-end latency (from the moment the spiking part began the sample to the end of its last dense step).
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from neurodeploy.exporters.onnx_session import run_session
from neurodeploy.runtime.dense_step import sequence_batches_exactly

MEASURED_ON = {"lava": "this machine (Lava CPU simulation + ONNX Runtime), not Loihi",
               "emulator": "this machine (neurodeploy's emulator + ONNX Runtime), not Loihi"}
QUEUE_WINDOWS = 2  # the emulator's dense queue holds this many windows (of every sample of a chunk) before it waits

AheadFn = Callable[[int, int], int]
"""(sample, window) -> steps the spiking part has computed beyond that window's last step, now."""


@dataclass
class WindowMark:
    sample: int
    window: int
    ready_s: float  # its last step received from the spiking part (s from the stream's start)
    dense_start_s: float = 0.0
    dense_end_s: float = 0.0
    spiking_ahead_at_start: int = 0  # steps computed beyond this window when its dense step started
    spiking_ahead_at_end: int = 0  # ... and when it ended (more: the spiking part ran on during the dense step)
    queue_depth: int = 0  # windows waiting for the dense part when this one's step started


@dataclass
class Timeline:
    backend: str = "lava"
    windows: list[WindowMark] = field(default_factory=list)
    sample_start_s: dict[int, float] = field(default_factory=dict)  # when the spiking part began each sample
    build_s: float = 0.0
    spiking_run_s: float = 0.0
    dense_calls: int = 0  # ONNX Runtime calls of the dense part (one per window of a batch of samples, batched)

    def as_dict(self) -> dict:
        ends: dict[int, float] = {}
        for w in self.windows:
            ends[w.sample] = max(ends.get(w.sample, 0.0), w.dense_end_s)
        return {"measured_on": MEASURED_ON[self.backend], "backend": self.backend,
                "build_s": self.build_s, "spiking_run_s": self.spiking_run_s, "dense_calls": self.dense_calls,
                "windows": [dict(vars(w)) for w in sorted(self.windows, key=lambda w: (w.sample, w.window))],
                "sample_latency_s": [ends[b] - self.sample_start_s.get(b, 0.0) for b in sorted(ends)]}


class DenseWorker:
    """The dense part behind the stream: ``submit(b, l, window, ready_s)`` as each window arrives (samples
    may interleave: the step model's state is kept per sample), then ``outputs`` per sample (per window
    for the step model). ``ahead`` (optional) says how far the spiking part is beyond a window, now."""

    def __init__(self, session, input_name: str, stepper, threshold: float | None, windows: int, t0: float,
                 window_shape: tuple[int, ...], backend: str = "lava", ahead: AheadFn | None = None):
        self.session, self.input_name, self.stepper, self.threshold = session, input_name, stepper, threshold
        self.windows, self.t0, self.ahead = windows, t0, ahead
        self.timeline = Timeline(backend)
        self.outputs: dict[int, np.ndarray] = {}
        self.calls = 0  # ONNX Runtime calls of the whole-sequence model
        self._pending: dict[int | tuple[int, ...], list[np.ndarray]] = {}
        self._contexts: dict[int, tuple] = {}  # sample -> the step model's (state, held output) after its last window
        self._groups: dict[tuple[int, ...], tuple] = {}  # samples -> their stacked (states, held outputs)
        self._sequence_exact: bool | None = None  # the whole-sequence model batches exactly (checked once)
        self._warm_up(window_shape)

    def can_batch(self, items: list) -> bool:
        """Whether one window of several samples runs in one call: the step model's states (or the
        whole-sequence model's input) have a batch dimension, and every item is the same window."""
        if len(items) < 2 or len({w for _, w, *_ in items}) != 1:
            return False
        if self.stepper is not None:  # a shared state (a step counter) cannot follow samples that skip windows
            return (self.threshold is None or not self.stepper.shared_states) and self.stepper.batches_exactly()
        if self._sequence_exact is None:
            self._sequence_exact = isinstance(self.session.get_inputs()[0].shape[0], str) and \
                sequence_batches_exactly(self.session, self.input_name, (self.windows * items[0][2].shape[0],
                                                                         *items[0][2].shape[1:]))
        return self._sequence_exact

    def submit_group(self, items: list, waiting: int = 0) -> None:
        """One window of several samples [(b, w, window, ready_s), ...] in one ONNX Runtime call; each sample's
        mark gets an equal share of the call's time, one after another."""
        samples, w = tuple(b for b, *_ in items), items[0][1]
        windows = np.stack([np.asarray(window, dtype=np.float32) for _, _, window, _ in items])
        ahead = [self.ahead(b, w) for b in samples] if self.ahead is not None else None
        start = time.perf_counter() - self.t0
        if self.stepper is not None:
            self._step_group(samples, w, windows)
        else:
            self._pending.setdefault(samples, []).append(windows)
            if w == self.windows - 1:
                y = run_session(self.session, {self.input_name: np.concatenate(self._pending.pop(samples), axis=1)})[0]
                self.calls += 1
                self.outputs.update({b: y[i] for i, b in enumerate(samples)})
        end = time.perf_counter() - self.t0
        share = (end - start) / len(items)
        for i, (b, _, _, ready_s) in enumerate(items):
            mark = WindowMark(b, w, ready_s, dense_start_s=start + i * share, dense_end_s=start + (i + 1) * share,
                              queue_depth=waiting + len(items) - i - 1)
            if ahead is not None:
                mark.spiking_ahead_at_start, mark.spiking_ahead_at_end = ahead[i], self.ahead(b, w)
            self.timeline.windows.append(mark)

    def _step_group(self, samples: tuple[int, ...], w: int, windows: np.ndarray) -> None:
        """The step model on window w of ``samples``, from their stacked states."""
        stepper = self.stepper
        if w == 0:
            states, held = stepper.zero_states(len(samples)), np.zeros((len(samples), stepper.n_out), np.float32)
            self.outputs.update({b: np.zeros((self.windows, stepper.n_out), np.float32) for b in samples})
        else:
            states, held = self._groups.pop(samples)
        y, states = stepper.next_many(windows, states, held, self.threshold)
        for i, b in enumerate(samples):
            self.outputs[b][w] = y[i]
        if w < self.windows - 1:
            self._groups[samples] = (states, y)

    def _warm_up(self, window_shape: tuple[int, ...]) -> None:
        """One call on zeros before the stream starts: ONNX Runtime's first run allocates and optimises,
        which would otherwise delay the first window."""
        k, *shape = window_shape
        if self.stepper is not None:
            self.stepper.reset()
            self.stepper.step(np.zeros((1, k, *shape), np.float32))
            self.stepper.invocations = self.stepper.calls = 0
        else:
            run_session(self.session, {self.input_name: np.zeros((1, k * self.windows, *shape), np.float32)})

    def submit(self, b: int, w: int, window: np.ndarray, ready_s: float, waiting: int = 0) -> None:
        mark = WindowMark(b, w, ready_s, dense_start_s=time.perf_counter() - self.t0, queue_depth=waiting)
        if self.ahead is not None:
            mark.spiking_ahead_at_start = self.ahead(b, w)
        window = np.asarray(window, dtype=np.float32)
        if self.stepper is not None:
            self._step(b, w, window)
        else:
            self._pending.setdefault(b, []).append(window)
            if w == self.windows - 1:
                cut = np.concatenate(self._pending.pop(b))[None]
                self.outputs[b] = run_session(self.session, {self.input_name: cut})[0][0]
                self.calls += 1
        mark.dense_end_s = time.perf_counter() - self.t0
        if self.ahead is not None:
            mark.spiking_ahead_at_end = self.ahead(b, w)
        self.timeline.windows.append(mark)

    def _step(self, b: int, w: int, window: np.ndarray) -> None:
        """The step model on sample b's window w, from that sample's state."""
        stepper = self.stepper
        if w == 0:
            stepper.reset()
            self.outputs[b] = np.zeros((self.windows, stepper.n_out), np.float32)
        else:
            stepper.state, stepper.held = self._contexts.pop(b)
        self.outputs[b][w] = stepper.next(window[None], self.threshold)
        if w < self.windows - 1:
            self._contexts[b] = (stepper.state, stepper.held)


class DenseThread:
    """A :class:`DenseWorker` in its own thread behind a bounded queue of window batches: ``submit`` returns
    at once unless the queue is full (then the caller waits: back-pressure). ``close()`` waits for the
    queue to drain and re-raises what the worker raised; ``abort()`` drops what is left (the caller failed)."""

    def __init__(self, worker: DenseWorker, max_batches: int) -> None:
        self.worker, self.error = worker, None
        self._queue: queue.Queue = queue.Queue(max(1, max_batches))
        self._dropping = False
        self._queued = self._taken = 0  # sample windows put in the queue / taken out; each counter written by one thread
        self._thread = threading.Thread(target=self._serve, name="dense-worker", daemon=True)
        self._thread.start()

    def submit(self, windows: list[tuple[int, int, np.ndarray, float]]) -> None:
        """(sample, window, cut spikes (K, *shape), ready_s) for each sample whose window just completed."""
        if self.error is not None:
            raise self.error
        self._queue.put(windows)
        self._queued += len(windows)

    def _serve(self) -> None:
        while (windows := self._queue.get()) is not None:  # drained to the end, even after an error
            self._taken += len(windows)
            if self.error is None and not self._dropping:
                try:
                    self._run(windows)
                except BaseException as exc:  # re-raised in the caller's thread by submit/close
                    self.error = exc

    def _run(self, windows: list) -> None:
        """One window of every sample of the batch: in one call where the worker batches them."""
        if getattr(self.worker, "can_batch", lambda items: False)(windows):
            self.worker.submit_group(windows, waiting=max(0, self._queued - self._taken))
            return
        for i, item in enumerate(windows):
            self.worker.submit(*item, waiting=len(windows) - i - 1 + max(0, self._queued - self._taken))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        self._dropping = True
        try:
            self._queue.put(None, timeout=5.0)
        except queue.Full:  # the thread is a daemon: it cannot keep the process alive
            pass


def _result(worker: DenseWorker, batch: int, spikes: dict[str, np.ndarray], spiking_s: float, t0: float):
    dense = sum(w.dense_end_s - w.dense_start_s for w in worker.timeline.windows)
    worker.timeline.dense_calls = worker.calls + (worker.stepper.calls if worker.stepper is not None else 0)
    y = np.stack([worker.outputs[b] for b in range(batch)])
    return spikes, y, {"spiking": spiking_s, "dense": dense, "total": time.perf_counter() - t0}, worker.timeline


def run_streamed(plan, x: np.ndarray, mode: str, cut: str, window: int, session, input_name: str, stepper,
                 threshold: float | None) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, float], Timeline]:
    """Lava: spikes (B, T, *shape) per population, the dense outputs (B, ...), wall times, and the timeline."""
    from neurodeploy.runtime.lava_stream import stream_batch

    t0 = time.perf_counter()
    worker = DenseWorker(session, input_name, stepper, threshold, x.shape[1] // window, t0,
                         (window, *plan.layer(cut).shape))
    spikes, times = stream_batch(plan, x, mode, cut=cut, window=window, on_window=worker.submit,
                                 on_sample=lambda b, t: worker.timeline.sample_start_s.__setitem__(b, t), t0=t0)
    worker.timeline.build_s, worker.timeline.spiking_run_s = times.build_s, times.run_s
    for mark, (_, _, _, ahead_start, ahead_end) in zip(worker.timeline.windows, times.window_ready_s):
        mark.spiking_ahead_at_start, mark.spiking_ahead_at_end = ahead_start, ahead_end
        mark.queue_depth = ahead_start // window  # finished windows waiting in Lava's output channel
    return _result(worker, len(x), spikes, times.build_s + times.run_s, t0)


class _EmulatorStream:
    """The emulator's side of the stream for one chunk after another: at every step it notes its progress,
    at each window's last step of the cut it submits every sample's window to the dense thread."""

    def __init__(self, runner, cut: str, window: int, dense: DenseThread, batch_size: int, t0: float) -> None:
        self.runner, self.cut, self.k, self.dense, self.t0 = runner, cut, window, dense, t0
        self.batch_size, self.delay = batch_size, runner.plan.layer(cut).delay_steps
        self.period = runner.num_steps + runner.delay_steps  # steps per chunk
        self.chunk, self.offset, self.done = 0, 0, 0

    def ahead(self, b: int, w: int) -> int:
        """Steps computed beyond sample b's window w (a plain read of counters the emulator's thread sets)."""
        return self.chunk * self.period + self.done - ((b // self.batch_size) * self.period
                                                       + (w + 1) * self.k + self.delay)

    def on_pause(self, done: int, read, write) -> None:
        self.done = done
        aligned = done - self.delay
        if aligned <= 0 or aligned % self.k or aligned > self.runner.num_steps:
            return
        windows = read(self.cut, batch=True, since=aligned - self.k).numpy()
        windows = np.ascontiguousarray(self.runner.plan.cut_values(self.cut, windows), dtype=np.float32)
        now, w = time.perf_counter() - self.t0, aligned // self.k - 1
        self.dense.submit([(self.offset + i, w, spikes, now) for i, spikes in enumerate(windows)])

    def run_chunk(self, chunk: int, x: np.ndarray):
        self.chunk, self.offset, self.done = chunk, chunk * self.batch_size, 0
        for i in range(len(x)):
            self.dense.worker.timeline.sample_start_s[self.offset + i] = time.perf_counter() - self.t0
        window_ends = list(range(self.delay + self.k, self.delay + self.runner.num_steps + 1, self.k))
        return self.runner.run_batch(x, pause_at=window_ends + [self.period], on_pause=self.on_pause, reads_only=True)


@contextmanager
def _core_for_the_dense_thread(device) -> Iterator[None]:
    """An emulator on the CPU leaves one core to the dense thread (PyTorch's threads would otherwise take them
    all: measured on 2 cores, the emulator beside the dense part ran 2x slower than alone, with one thread as
    fast as alone)."""
    threads = torch.get_num_threads()
    if device.type == "cpu" and threads > 1:
        torch.set_num_threads(threads - 1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run_emulated(runner, x: np.ndarray, cut: str, window: int, session, input_name: str, stepper,
                 threshold: float | None, batch_size: int, progress: bool = False):
    """The emulator (an :class:`~neurodeploy.runtime.emulator.EmulatorRunner`), ``batch_size`` samples at a
    time, with the dense part in a thread behind it: as :func:`run_streamed`."""
    from neurodeploy.tables import stderr_console
    from rich.progress import track

    t0 = time.perf_counter()
    worker = DenseWorker(session, input_name, stepper, threshold, x.shape[1] // window, t0,
                         (window, *runner.plan.layer(cut).shape), backend="emulator")
    dense = DenseThread(worker, QUEUE_WINDOWS)
    stream = _EmulatorStream(runner, cut, window, dense, batch_size, t0)
    worker.ahead = stream.ahead
    runs = []
    try:
        with _core_for_the_dense_thread(runner.device):
            chunks = range(0, len(x), batch_size)
            for c in track(chunks, description="co-simulating", disable=not progress, console=stderr_console()):
                runs.append(stream.run_chunk(c // batch_size, x[c: c + batch_size]))
            dense.close()
    except BaseException:
        dense.abort()
        raise
    spikes = {p.name: np.concatenate([r.spikes[p.name] for r in runs]) for p in runner.plan.neurons}
    worker.timeline.spiking_run_s = sum(r.wall_s for r in runs)
    return _result(worker, len(x), spikes, worker.timeline.spiking_run_s, t0)
