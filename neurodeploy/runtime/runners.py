"""The spiking back-ends behind one call: Lava's CPU simulation, or the batched emulator.

Both give the same spikes for the same plan, mode and input (bit-exact in fixed mode; the emulator
is verified against Lava in ``tests/test_emulator.py``). ``lava`` runs one sample at a time, in
Lava's own processes; ``emulator`` (:mod:`neurodeploy.runtime.emulator`) runs batches, on a GPU when present.
"""
from __future__ import annotations

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
