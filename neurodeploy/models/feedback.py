"""A hybrid with a feedback channel: a dense-side output flows back into the spiking part.

The Mamba-Liquid-SNN seed modulates the liquid (spiking) part with the Mamba state. Here the dense
back-end's output of window l, through a fixed linear map, becomes ``n_fb`` extra input currents of
the spiking front-end (graded inputs beside the spikes of its first synaptic layer)::

    fb_l = W_fb y_l + b_fb            (after window l has been processed)
    input[t] = [x[t], fb_l]           for (l+1) K + latency <= t < (l+2) K + latency   (zeros before)

``latency`` is the spiking pipeline depth (Lava's synaptic delay of the cut population): that is when
the last spikes of window l leave the spiking part on the hardware, so the feedback cannot arrive
earlier without stopping the chip. The model is defined with this latency so that PyTorch and the
co-simulation compute the same thing. Float mode only (the feedback currents are graded).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from neurodeploy.models.backends import StreamingBackend
from neurodeploy.models.time_stepping import FrontendStepper
from neurodeploy.models.hybrid import HybridModel


class FeedbackHybrid(HybridModel):
    """``HybridModel`` whose back-end output feeds ``n_fb`` currents back into the front-end's input.

    The front-end's input width is ``n_in + n_fb``; callers pass (B, T, n_in) spikes.
    """

    def __init__(self, frontend: nn.Module, backend: StreamingBackend, n_fb: int, latency_steps: int) -> None:
        super().__init__(frontend, backend)
        if not isinstance(backend, StreamingBackend):
            raise TypeError("feedback needs a streaming back-end (neurodeploy.models.backends.StreamingBackend)")
        self.feedback = nn.Linear(backend.head.out_features, n_fb)
        self.n_fb, self.latency_steps = int(n_fb), int(latency_steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_with_feedback(self, x)[0]


def feedback_schedule(num_steps: int, window: int, latency_steps: int) -> list[tuple[int, int]]:
    """(window l, first input step t it affects) for every window whose feedback lands inside the sample."""
    return [(l, (l + 1) * window + latency_steps) for l in range(num_steps // window)
            if (l + 1) * window + latency_steps < num_steps]


def run_with_feedback(model: FeedbackHybrid, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """x (B, T, n_in) -> (outputs per window (B, L, n_out), spikes per population (B, T, n)); one sample at a time."""
    k, outputs, spikes = model.backend.adapter.window, [], []
    for sample in x.split(1):
        stepper, state = FrontendStepper(model.frontend), model.backend.init_state(1)
        state = tuple(s.to(sample.dtype) if s.is_floating_point() else s for s in state)
        fb = sample.new_zeros(1, model.n_fb)
        lands = dict((t, l) for l, t in feedback_schedule(sample.shape[1], k, model.latency_steps))
        pending: dict[int, torch.Tensor] = {}
        ys, per_step, cut = [], [], []
        with torch.no_grad():
            for t in range(sample.shape[1]):
                if t in lands:
                    fb = pending.pop(lands[t])
                step_spikes = stepper.step(torch.cat([sample[:, t], fb], dim=-1))
                per_step.append(step_spikes)
                cut.append(list(step_spikes.values())[-1])
                if (t + 1) % k == 0:
                    y, *state = model.backend.step(torch.stack(cut[-k:], dim=1), *state)
                    ys.append(y[0])
                    pending[t // k] = model.feedback(y)
        outputs.append(torch.stack(ys))
        spikes.append({name: torch.cat([s[name] for s in per_step]) for name in per_step[0]})
    return torch.stack(outputs), {name: torch.stack([s[name] for s in spikes]) for name in spikes[0]}


def feedback_arrays(model: FeedbackHybrid) -> dict[str, np.ndarray]:
    """The fixed map the runtime applies to the dense output: ``fb = weight @ y + bias``."""
    return {"weight": model.feedback.weight.detach().double().numpy(), "bias": model.feedback.bias.detach().double().numpy()}
