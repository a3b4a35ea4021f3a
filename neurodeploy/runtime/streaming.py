"""The co-simulation as a pipeline: Lava streams the batch (:mod:`neurodeploy.runtime.lava_stream`) while
the dense part runs on each window of the cut as it arrives, with a measured timeline.

Lava's processes run on their own; this process receives their output step by step and runs the
dense step on each window as soon as its last step is in, while Lava's processes go on computing the
next window into their bounded output channels (full channels make Lava wait: back-pressure). The
dense work is done by the receiving thread itself: Lava's compute is in other processes, so it
overlaps the dense step without a second thread here.

- ``window`` / ``event``: the step model on every window (``event``: on salient windows, the last output
  held otherwise), its state reset at each sample's first window;
- ``end``: the whole-sequence model once a sample's last window is in.

The timeline (the JSON's ``timeline``, measured on this machine) gives, per window, when its last
step left Lava, when the dense step started and ended, and how many steps Lava had computed beyond
the window at both moments (fewer than K at the start: Lava had not finished the next window; more at
the end than at the start: Lava ran on during the dense step); per sample,
its end-to-end latency (from the moment Lava began the sample to the end of its last dense step).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class WindowMark:
    sample: int
    window: int
    ready_s: float  # its last step received from Lava (s from the stream's start)
    dense_start_s: float = 0.0
    dense_end_s: float = 0.0
    lava_ahead_at_start: int = 0  # steps Lava had computed beyond this window when its dense step started
    lava_ahead_at_end: int = 0  # ... and when it ended (more: Lava ran on during the dense step)


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
    """The dense part behind the stream: ``submit(b, l, window, ready_s)`` as each window arrives, then
    ``outputs`` per sample (per window for the step model)."""

    def __init__(self, session, input_name: str, stepper, threshold: float | None, windows: int, t0: float,
                 window_shape: tuple[int, ...]):
        self.session, self.input_name, self.stepper, self.threshold = session, input_name, stepper, threshold
        self.windows, self.t0 = windows, t0
        self.timeline = Timeline()
        self.outputs: dict[int, np.ndarray] = {}
        self._pending: dict[int, list[np.ndarray]] = {}
        self._warm_up(window_shape)

    def _warm_up(self, window_shape: tuple[int, ...]) -> None:
        """One call on zeros before the stream starts: ONNX Runtime's first run allocates and optimises,
        which would otherwise delay the first window."""
        k, *shape = window_shape
        if self.stepper is not None:
            self.stepper.reset()
            self.stepper.step(np.zeros((1, k, *shape), np.float32))
            self.stepper.invocations = 0
        else:
            self.session.run(None, {self.input_name: np.zeros((1, k * self.windows, *shape), np.float32)})

    def submit(self, b: int, w: int, window: np.ndarray, ready_s: float) -> None:
        mark = WindowMark(b, w, ready_s, dense_start_s=time.perf_counter() - self.t0)
        window = window.astype(np.float32)
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
        self.timeline.windows.append(mark)


def run_streamed(plan, x: np.ndarray, mode: str, cut: str, window: int, session, input_name: str, stepper,
                 threshold: float | None) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, float], Timeline]:
    """Spikes (B, T, *shape) per population, the dense outputs (B, ...), wall times, and the timeline."""
    from neurodeploy.runtime.lava_stream import stream_batch

    t0 = time.perf_counter()
    worker = DenseWorker(session, input_name, stepper, threshold, x.shape[1] // window, t0,
                         (window, *plan.layer(cut).shape))
    spikes, times = stream_batch(plan, x, mode, cut=cut, window=window, on_window=worker.submit,
                                 on_sample=lambda b, t: worker.timeline.sample_start_s.__setitem__(b, t), t0=t0)
    outputs = worker.outputs
    worker.timeline.build_s, worker.timeline.lava_run_s = times.build_s, times.run_s
    for mark, (_, _, _, ahead_start, ahead_end) in zip(worker.timeline.windows, times.window_ready_s):
        mark.lava_ahead_at_start, mark.lava_ahead_at_end = ahead_start, ahead_end
    total = time.perf_counter() - t0
    dense = sum(w.dense_end_s - w.dense_start_s for w in worker.timeline.windows)
    y = np.stack([outputs[b] for b in range(len(x))])
    return spikes, y, {"lava": times.build_s + times.run_s, "dense": dense, "total": total}, worker.timeline
