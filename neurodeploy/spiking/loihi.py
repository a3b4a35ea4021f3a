"""Loihi number formats in one place: bit widths, shifts and ranges of the fixed-point neuron and synapse.

Lava's bit-accurate models (``lava.proc.lif.models.PyLifModelBitAcc``, ``lava.proc.dense.models
.PyDenseModelBitAcc``, Lava 0.10.0), which the emulator reproduces, compute per step::

    u <- sign(u) ((|u| (2**decay_bits - du)) >> decay_bits) + (a_in << act_shift)    state_bits, wraps
    v <- sign(v) ((|v| (2**decay_bits - dv)) >> decay_bits) + u + (bias_mant << bias_exp)   clipped
    s  = v > (vth << act_shift);  v <- 0 where s
    a  = sum(w s) << weight_exp      w: weight_bits mantissas, mixed-sign ones even (Lava truncates the low bit)

with ``du``, ``dv`` of ``decay_bits`` (12) bits, ``vth`` of ``vth_bits`` (17), ``bias_mant`` a signed
``bias_mant_bits`` (13) mantissa with a ``bias_exp_bits`` (3) exponent, ``u`` and ``v`` of
``state_bits`` (24), weights of 8 bits with a weight exponent in [-8, 7], and graded spikes of up to
``graded_spike_bits`` (24 on Loihi 2; Loihi 1 sends binary spikes only).

:data:`LAVA` holds these numbers as Lava's CPU models implement them (the runtime and the emulator
model exactly them); :func:`numerics_of` reads a profile's ``numerics`` section, so that the quantizer
targets the chip the user names (``--profile loihi1`` quantizes for Loihi 1).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from neurodeploy.errors import ProfileError


@dataclass(frozen=True)
class LoihiNumerics:
    """Bit widths of one chip's fixed-point neuron and synapse (see the module docstring)."""

    weight_bits: int = 8
    weight_exp_min: int = -8
    weight_exp_max: int = 7
    state_bits: int = 24
    vth_bits: int = 17
    bias_mant_bits: int = 13
    bias_exp_bits: int = 3
    decay_bits: int = 12
    act_shift: int = 6
    graded_spike_bits: int = 24
    decay_one: int = field(init=False)
    state_max: int = field(init=False)
    vth_max: int = field(init=False)
    bias_mant_max: int = field(init=False)
    bias_exp_max: int = field(init=False)

    def __post_init__(self) -> None:
        derived = {"decay_one": 1 << self.decay_bits,  # the decay that keeps nothing: 4096 for 12 bits
                   "state_max": (1 << (self.state_bits - 1)) - 1,  # largest |u| or |v|: 2**23 - 1
                   "vth_max": (1 << self.vth_bits) - 1,
                   "bias_mant_max": (1 << (self.bias_mant_bits - 1)) - 1,  # signed: 4095 for 13 bits
                   "bias_exp_max": (1 << self.bias_exp_bits) - 1}
        for name, value in derived.items():
            object.__setattr__(self, name, value)

    def weight_step(self, mixed: bool) -> int:
        """Lava clears the low ``8 - weight_bits + mixed`` bits of every 8-bit weight mantissa."""
        return 1 << (LAVA_WEIGHT_REGISTER_BITS - self.weight_bits + int(mixed))

    def weight_range(self, mixed: bool) -> tuple[int, int]:
        """(lowest, highest) mantissa: (-256, 254) mixed and (-255, 255) one-signed at 8 bits."""
        step = self.weight_step(mixed)
        top = (1 << LAVA_WEIGHT_REGISTER_BITS) - 1
        if mixed:
            return -(1 << LAVA_WEIGHT_REGISTER_BITS), top // step * step
        high = top // step * step
        return -high, high


LAVA_WEIGHT_REGISTER_BITS = 8
"""Lava's Dense and Conv fixed models clip every weight to 8 bits before the ``num_weight_bits`` truncation."""

LAVA = LoihiNumerics()
"""The numbers of Lava 0.10.0's bit-accurate CPU models (Loihi 2)."""

_RUNTIME_FIXED = ("state_bits", "decay_bits", "act_shift", "vth_bits")
"""Formats Lava's models hard-code: a profile may not change them, as nothing could run the result."""


def numerics_of(profile) -> LoihiNumerics:
    """The :class:`LoihiNumerics` of a neuromorphic profile (its ``numerics`` section; Lava's where absent).

    Raises :class:`ProfileError` when a figure is outside what Lava's fixed-point models can run.
    """
    section = getattr(profile, "numerics", None)
    if section is None:
        return LAVA
    values = {f.name: int(getattr(section, f.name).value) for f in fields(LoihiNumerics)
              if f.init and getattr(section, f.name, None) is not None}
    numerics = LoihiNumerics(**values)
    problems = [f"numerics.{name} = {getattr(numerics, name)}: Lava's fixed-point models use {getattr(LAVA, name)}"
                for name in _RUNTIME_FIXED if getattr(numerics, name) != getattr(LAVA, name)]
    if not 1 <= numerics.weight_bits <= LAVA_WEIGHT_REGISTER_BITS:
        problems.append(f"numerics.weight_bits = {numerics.weight_bits}: Lava runs 1 to 8-bit weight mantissas")
    if problems:
        raise ProfileError(f"profile {profile.name!r} cannot be run by Lava's fixed-point models:\n  - "
                           + "\n  - ".join(problems))
    return numerics
