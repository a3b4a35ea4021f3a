"""The dense part on ONNX Runtime, per sample: the whole-sequence model once, or the streaming step model
window by window with its state (KV cache, SSM state, adapter state, ...) carried and reset per sample.

The event schedule runs the step model only on salient windows (the cut fired at least the bundle's
``event_threshold`` spikes) and holds the last output over the others.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurodeploy.exporters.onnx_session import make_session, run_session
from neurodeploy.models.backends import salient_windows


class StepRunner:
    """The exported step model with zero initial states; ``run(cut)`` feeds (1, T, n) window by window."""

    def __init__(self, path, input_name: str, window: int, prefer_gpu: bool = True) -> None:
        import onnx

        self.session = make_session(path, prefer_gpu, spinning=False)
        self.window, self.input_name = window, input_name
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
        y, *new = run_session(self.session, {self.input_name: np.asarray(window, dtype=np.float32), **self.state})
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


@dataclass
class DenseRunner:
    """The dense part of one co-simulation: the whole-sequence session, and the step model for the window
    and event schedules (``threshold``: the event schedule's salience threshold)."""

    session: object  # onnxruntime.InferenceSession of the whole-sequence model
    input_name: str
    stepper: StepRunner | None = None
    threshold: float | None = None

    def run(self, cut: np.ndarray) -> np.ndarray:
        """One sample's output from its cut spikes (1, T, n) float32: per window with the step model."""
        if self.stepper is not None:
            return self.stepper.run(cut, self.threshold)
        return run_session(self.session, {self.input_name: cut})[0][0]

    @property
    def invocations(self) -> int | None:
        """Step model runs so far (None: the whole-sequence model, once per sample)."""
        return None if self.stepper is None else self.stepper.invocations
