"""The dense part on ONNX Runtime, per sample: the whole-sequence model once, or the streaming step model
window by window with its state (KV cache, SSM state, adapter state, ...) carried and reset per sample.

The event schedule runs the step model only on salient windows (the cut fired at least the bundle's
``event_threshold`` spikes) and holds the last output over the others.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurodeploy.errors import InputShapeError
from neurodeploy.exporters.onnx_session import make_session, run_session
from neurodeploy.models.backends import salient_windows


def sequence_batches_exactly(session, input_name: str, sample_shape: tuple[int, ...]) -> bool:
    """Whether the whole-sequence model gives two random samples together exactly what it gives each alone
    (ONNX Runtime may take another kernel for a batch of one: then the dense part runs one sample per call)."""
    x = (np.random.default_rng(0).random((2, *sample_shape)) < 0.3).astype(np.float32)
    together = run_session(session, {input_name: x})
    return all(np.array_equal(t[i], a[0]) for i in range(2)
               for t, a in zip(together, run_session(session, {input_name: x[i: i + 1]})))


def _batch_axis(dims) -> int | None:
    """A step model state's batch axis: the dimension named ``batch``, else its one dynamic dimension (None: no
    batch, a state shared by samples stepping together; -1: several unnamed, so it cannot batch). Its other
    named dimensions grow as it steps (a KV cache's tokens) and start empty."""
    named = [i for i, d in enumerate(dims) if d.dim_param == "batch"]
    dynamic = [i for i, d in enumerate(dims) if d.dim_param]
    return named[0] if named else dynamic[0] if len(dynamic) == 1 else None if not dynamic else -1


class StepRunner:
    """The exported step model with zero initial states; ``run(cut)`` feeds (1, T, n) window by window;
    ``step_many`` runs one window of many samples in one call, each with its own state in a row of every
    state input that has a batch dimension (its one dynamic dimension: ``batch_axes``). A state without one
    (a step counter) is shared by samples that step together; :meth:`batches_exactly` checks, once, on
    random windows, that a batch of two gives what each sample gives alone."""

    def __init__(self, path, input_name: str, window: int, prefer_gpu: bool = True, threads: int | None = None) -> None:
        import onnx

        self.session = make_session(path, prefer_gpu, spinning=False, threads=threads)
        self.window, self.input_name = window, input_name
        self.states, self.batch_axes = [], []
        graph = onnx.load(str(path), load_external_data=False).graph
        for vi in graph.input[1:]:
            tt = vi.type.tensor_type
            axis = _batch_axis(tt.shape.dim)
            shape = [1 if i == axis else 0 if d.dim_param else d.dim_value for i, d in enumerate(tt.shape.dim)]
            self.states.append((vi.name, np.zeros(shape, dtype=onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type))))
            self.batch_axes.append(axis)
        self.growing = any(zero.size == 0 for _, zero in self.states)  # a KV cache: starts empty, grows per step
        first = graph.input[0].type.tensor_type.shape.dim
        self.batchable = bool(first) and bool(first[0].dim_param) and -1 not in self.batch_axes
        self.window_shape = [d.dim_value for d in first[1:]]
        self._exact: bool | None = None
        self.n_out = self.session.get_outputs()[0].shape[-1]
        self.invocations = 0  # sample windows the step model ran (what the GPU computed)
        self.calls = 0  # ONNX Runtime calls (one per window of a batch of samples)

    def zero_states(self, batch: int) -> dict[str, np.ndarray]:
        """Every state at zero for ``batch`` samples (stacked on each state's batch axis)."""
        return {name: np.zeros([batch if i == axis else d for i, d in enumerate(zero.shape)], zero.dtype)
                for (name, zero), axis in zip(self.states, self.batch_axes)}

    @property
    def shared_states(self) -> bool:
        """Some state has no batch dimension (shared by samples stepping together)."""
        return None in self.batch_axes

    def batches_exactly(self) -> bool:
        """Whether two random samples stepped together for three windows give exactly what each gives alone
        (outputs and every state); checked once."""
        if self._exact is None:
            self._exact = self.batchable and self._same_alone_and_together()
        return self._exact

    def _same_alone_and_together(self) -> bool:
        windows = (np.random.default_rng(0).random((3, 2, *self.window_shape)) < 0.3).astype(np.float32)
        together, alone = self.zero_states(2), [self.zero_states(1), self.zero_states(1)]
        for window in windows:
            y, *new = run_session(self.session, {self.input_name: window, **together})
            together = dict(zip(together, new))
            for i in range(2):
                y_i, *new_i = run_session(self.session, {self.input_name: window[i:i + 1], **alone[i]})
                alone[i] = dict(zip(alone[i], new_i))
                if not np.array_equal(y[i], y_i[0]) or not all(
                        np.array_equal(self.take(together, np.array([i]))[k], v) for k, v in alone[i].items()):
                    return False
        return True

    def step_many(self, windows: np.ndarray, states: dict[str, np.ndarray]) -> tuple[np.ndarray, dict]:
        """One window of B samples (B, K, ...) from their stacked states -> (y (B, n_out), new states): one
        ONNX Runtime call, B invocations."""
        y, *new = run_session(self.session, {self.input_name: np.asarray(windows, dtype=np.float32), **states})
        self.invocations += len(windows)
        self.calls += 1
        return y, dict(zip(states, new))

    def take(self, states: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
        """The states of samples ``rows`` (indices into the batch)."""
        return {name: v if axis is None else np.take(v, rows, axis=axis)
                for (name, v), axis in zip(states.items(), self.batch_axes)}

    def put(self, states: dict[str, np.ndarray], rows: np.ndarray, part: dict[str, np.ndarray]) -> None:
        """Write ``part`` (the states of samples ``rows``) back into ``states``, in place."""
        for (name, v), axis in zip(states.items(), self.batch_axes):
            if axis is None:
                continue
            index = [slice(None)] * v.ndim
            index[axis] = rows
            v[tuple(index)] = part[name]

    def next_many(self, windows: np.ndarray, states: dict, held: np.ndarray,
                  threshold: float | None = None) -> tuple[np.ndarray, dict]:
        """The outputs (B, n_out) after one window of B samples and their new states (``held``: each sample's
        last output, kept where ``threshold`` (the event schedule) finds its window not salient)."""
        if threshold is None:
            return self.step_many(windows, states)
        rows = np.flatnonzero(salient_windows(windows, threshold))
        y = held.copy()
        if self.growing:  # caches hold as many tokens as each sample's salient windows so far
            return self._next_by_length(windows, states, rows, y)
        if len(rows):
            y[rows], part = self.step_many(windows[rows], self.take(states, rows))
            self.put(states, rows, part)
        return y, states

    def _next_by_length(self, windows: np.ndarray, states: dict, rows: np.ndarray,
                        y: np.ndarray) -> tuple[np.ndarray, dict]:
        """The event schedule with growing states (``states["per_sample"]``: each sample's own, batch of 1):
        the salient ``rows`` whose caches are as long step together, one ONNX Runtime call per length."""
        per_sample = states.setdefault("per_sample", [self.take(states, np.array([b])) for b in range(len(windows))])
        for key in [k for k in states if k != "per_sample"]:
            del states[key]
        lengths = {b: tuple(v.shape for v in per_sample[b].values()) for b in rows}
        for length in sorted(set(lengths.values())):
            same = np.array([b for b in rows if lengths[b] == length])
            stacked = {name: per_sample[same[0]][name] if axis is None else  # shared: samples step alone
                       np.concatenate([per_sample[b][name] for b in same], axis=axis)
                       for (name, _), axis in zip(self.states, self.batch_axes)}
            y[same], new = self.step_many(windows[same], stacked)
            for i, b in enumerate(same):
                per_sample[b] = self.take(new, np.array([i]))
        return y, states

    def reset(self) -> None:
        """Back to the zero state (the start of a sample)."""
        self.state = {name: value for name, value in self.states}
        self.held = np.zeros(self.n_out, np.float32)

    def step(self, window: np.ndarray) -> np.ndarray:
        """One window (1, K, n) -> y (n_out,), advancing the state."""
        y, *new = run_session(self.session, {self.input_name: np.asarray(window, dtype=np.float32), **self.state})
        self.state = dict(zip(self.state, new))
        self.invocations += 1
        self.calls += 1
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


class PrefixRunner(StepRunner):
    """A captured model's dense code re-run on the windows so far, as a :class:`StepRunner`
    (:func:`neurodeploy.compiler.stepping.derive_prefix`): ``paths[l]`` is its ONNX graph on l + 1 windows, or
    with ``any_length`` the one graph ``paths[0]`` takes any number. A sample's state is its windows so far
    (on the event schedule its salient windows so far); the output after a window is the graph's on them, for
    the samples of a call that have as many windows so far in one ONNX Runtime call."""

    def __init__(self, paths, input_name: str, window: int, n_out: int, prefer_gpu: bool = True,
                 threads: int | None = None, any_length: bool = False) -> None:
        import onnx

        self.sessions = [make_session(p, prefer_gpu, spinning=False, threads=threads) for p in paths]
        self.session, self.window, self.input_name, self.n_out = self.sessions[-1], window, input_name, n_out
        self.any_length = any_length
        dims = onnx.load(str(paths[-1]), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
        shape = [d.dim_value for d in dims[2:]]
        self.window_shape = [window, *shape]
        self.states, self.batch_axes = [("windows_so_far", np.zeros((1, 0, *shape), np.float32))], [0]
        self.batchable, self._exact = True, None
        self.invocations = self.calls = 0

    @property
    def max_windows(self) -> int | None:
        """The most windows a sample may have (None: any number)."""
        return None if self.any_length else len(self.sessions)

    def _graph(self, so_far: np.ndarray) -> np.ndarray:
        """The dense code on ``so_far`` (B, l K, ...): one ONNX Runtime call, B invocations."""
        count = so_far.shape[1] // self.window
        if self.max_windows is not None and count > self.max_windows:
            raise InputShapeError(f"the prefix runner has graphs for up to {self.max_windows} windows of "
                                  f"{self.window} steps; this sample has more (run it on the end schedule)")
        y = run_session(self.sessions[0 if self.any_length else count - 1], {self.input_name: so_far})[0]
        self.invocations += len(so_far)
        self.calls += 1
        return y.reshape(len(y), -1)

    def zero_states(self, batch: int) -> dict[str, list[np.ndarray]]:
        """Each sample's windows so far, none yet (a list: on the event schedule samples have different numbers)."""
        return {"windows_so_far": [np.zeros((0, *self.window_shape[1:]), np.float32) for _ in range(batch)]}

    def next_many(self, windows: np.ndarray, states: dict, held: np.ndarray,
                  threshold: float | None = None) -> tuple[np.ndarray, dict]:
        rows = np.arange(len(windows)) if threshold is None else np.flatnonzero(salient_windows(windows, threshold))
        so_far, y = states["windows_so_far"], held.copy()
        for b in rows:
            so_far[b] = np.concatenate([so_far[b], np.asarray(windows[b], dtype=np.float32)])
        for length in sorted({len(so_far[b]) for b in rows}):
            same = [b for b in rows if len(so_far[b]) == length]
            y[same] = self._graph(np.stack([so_far[b] for b in same]))
        return y, states

    def step(self, window: np.ndarray) -> np.ndarray:
        so_far = np.concatenate([self.state["windows_so_far"], np.asarray(window, dtype=np.float32)], axis=1)
        self.state = {"windows_so_far": so_far}
        return self._graph(so_far)[0]

    def _same_alone_and_together(self) -> bool:
        return all(sequence_batches_exactly(s, self.input_name, ((i + 1) * self.window, *self.window_shape[1:]))
                   for i, s in enumerate(self.sessions))


def model_output(dense, y: np.ndarray, stepped: bool, exits: np.ndarray | None = None) -> np.ndarray:
    """The model's output from the dense part's: where a captured model's step model ran (``stepped``) and
    its output after window l is the model's on the first l + 1 windows (``dense.step_output == "last"``),
    the last window's (or each sample's exit window's, with early ``exits``), in the model's shape
    (B, *output_shape); else ``y`` as it is (a zoo back-end's per window outputs (B, L, n), or the
    whole-sequence model's)."""
    if not stepped or dense is None or dense.step_output != "last":
        return y
    last = y[:, -1] if exits is None else y[np.arange(len(y)), exits]
    return last.reshape(len(y), *dense.output_shape)


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
