"""The feedback channel (:mod:`neurodeploy.models.feedback`) on the window schedule: Lava pauses when a
window's cut spikes are complete, the step model runs, and ``fb = W y + b`` joins the spiking input from
``latency_steps`` after the window's end on."""
from __future__ import annotations

import numpy as np

from neurodeploy.bundle import Bundle
from neurodeploy.runtime.dense_step import StepRunner
from neurodeploy.runtime.runners import SampleSpikes, SpikingRunner
from neurodeploy.spiking.plan import SpikingPlan


class FeedbackLoop:
    """One sample at a time: ``run(runner, x)`` with x (T, n_in) the sample without its feedback channels."""

    def __init__(self, bundle: Bundle, plan: SpikingPlan, stepper: StepRunner, num_steps: int) -> None:
        m = bundle.manifest
        with np.load(bundle.path / m.feedback.file) as data:
            self.weight, self.bias = data["weight"], data["bias"]
        self.stepper, self.k, self.latency = stepper, m.window_steps, m.feedback.latency_steps
        self.cut = plan.outputs[m.spiking.cut_output]
        self.num_steps = num_steps

    def run(self, runner: SpikingRunner, x: np.ndarray) -> tuple[SampleSpikes, np.ndarray, np.ndarray]:
        """x (T, n_in) -> (spikes, y per window (L, n_out), the input with its feedback currents)."""
        k, steps = self.k, self.num_steps
        full = np.concatenate([x, np.zeros((steps, self.weight.shape[0]))], axis=1)
        self.stepper.reset()
        ys: list[np.ndarray] = []

        def on_pause(done: int, read, write) -> None:
            window = len(ys)
            cut = read(self.cut)[window * k: (window + 1) * k]
            ys.append(self.stepper.step(cut[None]))
            full[done:, x.shape[1]:] = self.weight @ ys[-1].astype(np.float64) + self.bias
            write(done, full[done:])

        pauses = [(l + 1) * k + self.latency for l in range(steps // k - 1)]
        sample = runner.run_sample(full, pause_at=pauses, on_pause=on_pause)
        cut = sample.spikes[self.cut]
        for window in range(len(ys), steps // k):
            ys.append(self.stepper.step(cut[None, window * k: (window + 1) * k]))
        return sample, np.stack(ys), full
