"""The spiking back-ends behind one protocol: Lava's CPU simulation, or the batched emulator.

Both give the same spikes for the same plan, mode and input (bit-exact in fixed mode; the emulator
is verified against Lava in ``tests/test_emulator.py``). ``lava`` runs one sample at a time, in
Lava's own processes; ``emulator`` (:mod:`neurodeploy.runtime.emulator`) runs batches, on a GPU when present.
The streamed co-simulation drives either through :mod:`neurodeploy.runtime.streaming`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from neurodeploy.choices import BACKENDS
from neurodeploy.errors import InputShapeError, UsageError
from neurodeploy.spiking.plan import SpikingPlan


@dataclass
class SampleSpikes:
    """Spikes per population, (T, n) each, aligned to the input; wall time of the run."""

    spikes: dict[str, np.ndarray]
    wall_s: float
    timings: dict[str, float] = field(default_factory=dict)
    raw: dict[str, np.ndarray] = field(default_factory=dict)  # (T + D, *shape), as recorded (not aligned)


PauseFn = Callable[[int, Callable, Callable], None]
"""``on_pause(steps_run, read_population, write_input)``, called at each step count of ``pause_at``."""


class SpikingRunner(Protocol):
    """What runs a plan for T steps per sample: a context manager whose ``run_sample`` returns the spikes of
    every population aligned to the input, pausing where asked (the feedback channel writes the input there)."""

    plan: SpikingPlan
    num_steps: int

    def run_sample(self, x: np.ndarray, pause_at: list[int] | None = None,
                   on_pause: PauseFn | None = None) -> SampleSpikes: ...

    def close(self) -> None: ...

    def __enter__(self) -> SpikingRunner: ...

    def __exit__(self, *exc) -> None: ...


def check_input_values(plan: SpikingPlan, mode: str, x: np.ndarray) -> None:
    """Fixed-point runs take binary spikes (0/1) unless the plan was quantized for graded input."""
    if mode == "fixed" and not plan.graded_input and np.any((x != 0) & (x != 1)):
        raise InputShapeError("fixed-point runs take binary spikes (0/1) as input; this input has other values. "
                              "Use mode='float', or quantize a plan with graded input")


def check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; backends: {list(BACKENDS)}")


def open_runner(backend: str, plan: SpikingPlan, num_steps: int, mode: str = "float",
                device: str | None = None) -> SpikingRunner:
    """A :class:`~neurodeploy.runtime.lava_runner.LavaRunner` or an
    :class:`~neurodeploy.runtime.emulator.EmulatorRunner` on the torch ``device`` (None: CUDA where torch sees
    a GPU; Lava runs on the CPU)."""
    check_backend(backend)
    if backend == "lava":
        from neurodeploy.runtime.lava_runner import LavaRunner

        return LavaRunner(plan, num_steps, mode=mode)
    from neurodeploy.runtime.emulator import EmulatorRunner

    return EmulatorRunner(plan, num_steps, mode=mode, device=device)


def run_spikes(backend: str, plan: SpikingPlan, x: np.ndarray, mode: str) -> dict[str, np.ndarray]:
    """Outputs per population (B, T, *shape) of ``backend`` on x (B, T, *input_shape): the emulator as a
    batch, Lava one sample after another."""
    with open_runner(backend, plan, x.shape[1], mode) as run:
        if backend == "emulator":
            return run.run_many(x)[0]
        samples = [run.run_sample(sample).spikes for sample in x]
    return {name: np.stack([s[name] for s in samples]) for name in samples[0]}
