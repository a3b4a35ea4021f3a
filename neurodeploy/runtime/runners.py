"""The spiking back-ends behind one call: Lava's CPU simulation, or the batched emulator.

Both give the same spikes for the same plan, mode and input (bit-exact in fixed mode; the emulator
is verified against Lava in ``tests/test_emulator.py``). ``lava`` runs one sample at a time, in
Lava's own processes; ``emulator`` (:mod:`neurodeploy.runtime.emulator`) runs batches, on a GPU when present.
"""
from __future__ import annotations

import numpy as np

from neurodeploy.choices import BACKENDS
from neurodeploy.errors import UsageError
from neurodeploy.spiking.plan import SpikingPlan


def open_runner(backend: str, plan: SpikingPlan, num_steps: int, mode: str = "float"):
    """A :class:`~neurodeploy.runtime.lava_runner.LavaRunner` or an :class:`~neurodeploy.runtime.emulator.EmulatorRunner`
    (both context managers with ``run_sample``)."""
    if backend == "lava":
        from neurodeploy.runtime.lava_runner import LavaRunner

        return LavaRunner(plan, num_steps, mode=mode)
    if backend == "emulator":
        from neurodeploy.runtime.emulator import EmulatorRunner

        return EmulatorRunner(plan, num_steps, mode=mode)
    raise UsageError(f"unknown backend {backend!r}; backends: {list(BACKENDS)}")


def run_spikes(backend: str, plan: SpikingPlan, x: np.ndarray, mode: str) -> dict[str, np.ndarray]:
    """Outputs per population (B, T, *shape) of ``backend`` on x (B, T, *input_shape): the emulator as a
    batch, Lava one sample after another."""
    with open_runner(backend, plan, x.shape[1], mode) as run:
        if backend == "emulator":
            return run.run_many(x)[0]
        samples = [run.run_sample(sample).spikes for sample in x]
    return {name: np.stack([s[name] for s in samples]) for name in samples[0]}
