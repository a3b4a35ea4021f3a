"""Loihi's numerics in one place: bit widths, shifts and ranges of the fixed-point neuron and synapse, the
integer primitives (wraps, decays, shifts), Lava's weight truncation, the LIF constants, and the LIF step
itself, which the emulator computes exactly and :mod:`neurodeploy.qat` with straight-through gradients.

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
from typing import Protocol

import numpy as np
import torch

from neurodeploy.errors import ProfileError
from neurodeploy.spiking.resets import fired_before, subtract_delayed, threshold


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


# -- integer primitives on int64 tensors (Lava's int32 arithmetic, exactly) ---------------------------------

UV_LIMIT = 1 << (LAVA.state_bits - 1)
"""2**23: LIF u and v are 24-bit, so |u| <= 2**23 after the wrap, |v| <= 2**23 - 1 after the clip."""


def wrap_int(x: torch.Tensor, bits: int = 32) -> torch.Tensor:
    """Two's-complement wrap of an int64 tensor to ``bits`` bits (numpy's int32 overflow): the low bits,
    sign-extended."""
    return (x << (64 - bits)) >> (64 - bits)


def shift(x: torch.Tensor, exp: int) -> torch.Tensor:
    """``x << exp`` (exp > 0) or ``x >> -exp`` (arithmetic, rounds toward -inf): Lava's Dense after its sum
    (``x`` itself for exp 0)."""
    if exp == 0:
        return x
    return x << exp if exp > 0 else x >> -exp


def decay(x: torch.Tensor, keep: int) -> torch.Tensor:
    """Loihi's decay ``sign(x) (|x| keep >> 12)``, rounding toward zero (``keep`` in 0..4096)."""
    if keep == LAVA.decay_one:
        return x
    if keep == 0:
        return torch.zeros_like(x)
    y = x * keep
    # a negative y is raised by 4095 first: the shift then truncates toward 0
    return (y + ((y >> 63) & (LAVA.decay_one - 1))) >> LAVA.decay_bits


def is_mixed(w: np.ndarray) -> bool:
    """Whether a weight matrix has both signs (Lava's mixed sign mode: one bit of precision less)."""
    return bool(w.min(initial=0) < 0 < w.max(initial=0))


def lava_conv_weights(weights: np.ndarray, weight_exp: int) -> np.ndarray:
    """The integer kernel handed to Lava's fixed ``Conv``: its Python model has a ``weight_exp`` Var but
    ignores it, so the mantissas come shifted left, ``w << e`` (what the chip computes; ``e >= 0`` for a conv)."""
    return np.asarray(weights, dtype=np.int64) << weight_exp


def lava_dense_weights(weights: np.ndarray, num_weight_bits: int = 8) -> np.ndarray:
    """The integer weights Lava's fixed Dense uses (``lava.utils.weightutils``, applied on its first step).

    The sign mode comes from the whole matrix: excitatory (all >= 0), inhibitory (all <= 0) or mixed.
    Magnitudes are clipped to 8 bits (``[-256, 255]`` mixed, ``[0, 255]`` one-signed, inhibitory
    negated first) and the low ``8 - num_weight_bits + mixed`` bits are cleared.
    """
    w = np.asarray(weights).astype(np.int32)  # Lava's weight Var holds int32
    sign = -1 if (w.size and w.min() < 0 and w.max() <= 0) else 1
    mixed = int(is_mixed(w))
    top = 1 << LAVA_WEIGHT_REGISTER_BITS
    w = np.clip(sign * w, -top * mixed, top - 1)
    drop = LAVA_WEIGHT_REGISTER_BITS - num_weight_bits + mixed
    return sign * ((w >> drop) << drop)


def fixed_lif_constants(p, q) -> dict:
    """A fixed-point LIF population's constants as Lava's bit-accurate model uses them: the decays' keep
    factors ``keep_u = 4096 - (du + 1)`` and ``keep_v = 4096 - dv``, ``vth << 6``, and the bias
    ``mant << bias_exp`` (the mantissa held in an int16 Var; a negative exponent shifts right), int64 of
    the population's shape on the CPU. ``p``: the population (a NeuronLayer), ``q``: its FixedNeuron."""
    mant = np.broadcast_to(np.asarray(q.bias_mant), p.shape)
    mant16 = wrap_int(torch.as_tensor(mant.astype(np.int64)), 16)  # an int16 Var
    bias = mant16 << q.bias_exp if q.bias_exp >= 0 else mant16 >> -q.bias_exp
    return {"bias": bias, "keep_u": LAVA.decay_one - (int(q.du) + 1), "keep_v": LAVA.decay_one - int(q.dv),
            "vth": int(q.vth) << LAVA.act_shift}


# -- the LIF step, once, over an arithmetic --------------------------------------------------------------

class LifArithmetic(Protocol):
    """How the operations of :func:`lif_fixed_step` are computed: exactly on int64 tensors (the emulator),
    or on float64 tensors with straight-through gradients (:mod:`neurodeploy.qat`)."""

    def decay(self, x: torch.Tensor, keep: int) -> torch.Tensor: ...

    def current(self, a: torch.Tensor) -> torch.Tensor: ...  # a_in << act_shift

    def add(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...  # an int32 sum

    def wrap_u(self, u: torch.Tensor) -> torch.Tensor: ...  # the 24-bit wrap of u

    def clip_v(self, v: torch.Tensor) -> torch.Tensor: ...  # v clipped to +-(2**23 - 1)

    def output(self, v: torch.Tensor, fired: torch.Tensor, vth: int) -> torch.Tensor: ...  # the spikes sent

    def reset(self, v: torch.Tensor, fired: torch.Tensor, vth: int, mode: str) -> torch.Tensor: ...


def lif_fixed_step(u: torch.Tensor, v: torch.Tensor, a: torch.Tensor, c: dict, mode: str, arith: LifArithmetic
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of Lava's ``PyLifModelBitAcc`` (the module docstring's equations) with the reset ``mode`` of
    :mod:`neurodeploy.spiking.resets`; ``c``: :func:`fixed_lif_constants` (``has_bias`` False skips a zero
    bias). Returns (u, v, the spikes sent)."""
    fired = fired_before(v, c["vth"], mode)  # read before the arithmetic, which may update v in place
    u = arith.wrap_u(arith.add(arith.decay(u, c["keep_u"]), arith.current(a)))
    v = arith.add(arith.decay(v, c["keep_v"]), u)
    if c.get("has_bias", True):
        v = arith.add(v, c["bias"])
    v = subtract_delayed(arith.clip_v(v), fired, c["vth"], mode, low=1 - UV_LIMIT)  # after the clip, as ResetLIF
    fired_now = threshold(v, fired, c["vth"], mode)
    s = arith.output(v, fired_now, c["vth"])
    return u, arith.reset(v, fired_now, c["vth"], mode), s
