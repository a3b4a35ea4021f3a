"""The names a user chooses between, defined once (no heavy imports: the CLI builds its parser from them).

- ``Schedule``: how often the dense part runs: ``end`` once per sample, ``window`` once per window of K
  steps (the streaming step model), ``event`` only on windows where the cut fires at least the model's
  salience threshold.
- ``Backend``: what runs the spiking part: ``lava`` (Lava's CPU simulation, one sample at a time) or
  ``emulator`` (batched, bit-exact with Lava ``fixed_pt``, on a GPU when present).
- ``Mode``: ``float`` (Lava ``floating_pt``) or ``fixed`` (Loihi integers, Lava ``fixed_pt``).
- ``Discretisation``: how a NIR graph's ODEs are stepped: ``euler`` (forward Euler, as snnTorch, norse and
  SpikingJelly) or ``exact`` (zero-order hold, as sinabs); :mod:`neurodeploy.spiking.nir_lowering`.
- ``Precision``: fixed-point weights: ``single`` (8-bit mantissas), ``double`` (two synapses per weight,
  about 14 bits) or ``auto`` (double where the profile's cores hold it); :mod:`neurodeploy.spiking.quantize`.
"""
from __future__ import annotations

from typing import Literal, get_args

Schedule = Literal["end", "window", "event"]
Backend = Literal["lava", "emulator"]
Mode = Literal["float", "fixed"]
Discretisation = Literal["euler", "exact"]
Precision = Literal["single", "double", "auto"]

SCHEDULES: tuple[str, ...] = get_args(Schedule)
BACKENDS: tuple[str, ...] = get_args(Backend)
MODES: tuple[str, ...] = get_args(Mode)
DISCRETISATIONS: tuple[str, ...] = get_args(Discretisation)
PRECISIONS: tuple[str, ...] = get_args(Precision)

DEFAULT_SAMPLES = 8
"""Example inputs a zoo model or factory is compiled with (stored in the bundle as its reference)."""
