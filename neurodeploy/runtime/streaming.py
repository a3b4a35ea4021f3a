"""The co-simulation as a pipeline: Lava streams the batch (:mod:`neurodeploy.runtime.lava_stream`) while
a second thread runs the dense part on each window of the cut as it arrives, with a measured timeline.

The receiving thread (Lava's side) puts each finished window of the cut into a bounded queue
(:data:`QUEUE_WINDOWS`; a full queue holds the receiver back); the dense thread takes them in order:

- ``window`` / ``event``: the step model on every window (``event``: on salient windows, the last output
  held otherwise), its state reset at each sample's first window;
- ``end``: the whole-sequence model once a sample's last window is in.

The timeline (the JSON's ``timeline``, measured on this machine) gives, per window, when its last
step left Lava, how many windows were waiting, when the dense step started and ended; per sample,
its end-to-end latency (from the moment Lava began the sample to the end of its last dense step).
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import asdict, dataclass, field

import numpy as np

QUEUE_WINDOWS = 8


@dataclass
class WindowMark:
    sample: int
    window: int
    ready_s: float  # its last step received from Lava (s from the stream's start)
    queued: int  # windows waiting before it when it was queued
    dense_start_s: float = 0.0
    dense_end_s: float = 0.0


@dataclass
class Timeline:
    windows: list[WindowMark] = field(default_factory=list)
    sample_start_s: dict[int, float] = field(default_factory=dict)  # when Lava began each sample (approx.)
    build_s: float = 0.0
    lava_run_s: float = 0.0

    def as_dict(self) -> dict:
        ends = {}
        for w in self.windows:
            ends[w.sample] = max(ends.get(w.sample, 0.0), w.dense_end_s)
        return {"measured_on": "this machine (Lava CPU simulation + ONNX Runtime), not Loihi",
                "build_s": self.build_s, "lava_run_s": self.lava_run_s,
                "windows": [asdict(w) for w in self.windows],
                "sample_latency_s": [ends[b] - self.sample_start_s.get(b, 0.0) for b in sorted(ends)]}


class DenseWorker:
    """The dense thread: ``submit(b, l, window, ready_s)`` from the receiver, ``finish()`` -> outputs."""

    def __init__(self, session, input_name: str, stepper, threshold: float | None, windows: int, t0: float):
        self.session, self.input_name, self.stepper, self.threshold = session, input_name, stepper, threshold
        self.windows, self.t0 = windows, t0
        self.queue: queue.Queue = queue.Queue(maxsize=QUEUE_WINDOWS)
        self.timeline = Timeline()
        self.outputs: dict[int, np.ndarray] = {}
        self.error: BaseException | None = None
        self._pending: dict[int, list[np.ndarray]] = {}
        self.thread = threading.Thread(target=self._work, name="dense-step", daemon=True)
        self.thread.start()

    def submit(self, b: int, w: int, window: np.ndarray, ready_s: float) -> None:
        if self.error is not None:
            raise self.error
        mark = WindowMark(b, w, ready_s, self.queue.qsize())
        self.timeline.windows.append(mark)
        self.queue.put((mark, window.astype(np.float32)))

    def _work(self) -> None:
        try:
            while (item := self.queue.get()) is not None:
                self._run(*item)
        except BaseException as exc:  # raised in the caller by submit() or finish()
            self.error = exc

    def _run(self, mark: WindowMark, window: np.ndarray) -> None:
        mark.dense_start_s = time.perf_counter() - self.t0
        b, w = mark.sample, mark.window
        if self.stepper is not None:
            if w == 0:
                self.stepper.reset()
                self.outputs[b] = np.zeros((self.windows, self.stepper.n_out), np.float32)
            self.outputs[b][w] = self.stepper.next(window[None], self.threshold)
        else:
            self._pending.setdefault(b, []).append(window)
            if w == self.windows - 1:
                cut = np.concatenate(self._pending.pop(b))[None]
                self.outputs[b] = self.session.run(None, {self.input_name: cut})[0][0]
        mark.dense_end_s = time.perf_counter() - self.t0

    def finish(self) -> dict[int, np.ndarray]:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.outputs


def run_streamed(plan, x: np.ndarray, mode: str, cut: str, window: int, session, input_name: str, stepper,
                 threshold: float | None) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, float], Timeline]:
    """Spikes (B, T, *shape) per population, the dense outputs (B, ...), wall times, and the timeline."""
    from neurodeploy.runtime.lava_stream import stream_batch

    t0 = time.perf_counter()
    worker = DenseWorker(session, input_name, stepper, threshold, x.shape[1] // window, t0)
    try:
        spikes, times = stream_batch(plan, x, mode, cut=cut, window=window, on_window=worker.submit,
                                     on_sample=lambda b, t: worker.timeline.sample_start_s.__setitem__(b, t))
    finally:
        outputs = worker.finish()
    worker.timeline.build_s, worker.timeline.lava_run_s = times.build_s, times.run_s
    total = time.perf_counter() - t0
    dense = sum(w.dense_end_s - w.dense_start_s for w in worker.timeline.windows)
    y = np.stack([outputs[b] for b in range(len(x))])
    return spikes, y, {"lava": times.build_s + times.run_s, "dense": dense, "total": total}, worker.timeline
