"""Loihi's integer operations on float64 tensors, with straight-through gradients: the arithmetic over which
:func:`neurodeploy.spiking.loihi.lif_fixed_step` runs for fine-tuning (:class:`StraightThroughArithmetic`).

Every value is an integer below 2**53, so float64 holds it exactly and each function returns exactly
what :mod:`neurodeploy.spiking.loihi`'s integer primitives compute in int64; the backward pass treats the rounding as the
identity (the straight-through estimator) and the threshold as a fast sigmoid (a surrogate gradient)::

    decay(x, keep) = sign(x) floor(|x| keep / 4096)       d/dx = keep / 4096
    shift(x, e)    = x 2**e, floor for e < 0               d/dx = 2**e
    spike(v, vth)  = [v > vth]                              d/dv = 1 / (vth (1 + k |v / vth - 1|)**2)
"""
from __future__ import annotations

import torch

from neurodeploy.spiking.loihi import LoihiNumerics
from neurodeploy.spiking.resets import after_spike

SURROGATE_SLOPE = 10.0  # k of the fast sigmoid, in units of the threshold


def straight_through(exact: torch.Tensor, smooth: torch.Tensor) -> torch.Tensor:
    """``exact``'s value with ``smooth``'s gradient."""
    return smooth + (exact - smooth).detach()


def decay(x: torch.Tensor, keep: int, one: int) -> torch.Tensor:
    """Loihi's ``sign(x) (|x| keep >> 12)`` (rounding toward zero); ``one`` = 4096 for 12-bit decays."""
    smooth = x * (keep / one)
    return straight_through(torch.sign(x) * torch.floor(torch.abs(x) * keep / one), smooth)


def shift(x: torch.Tensor, exp: int) -> torch.Tensor:
    """``x << exp``, or ``x >> -exp`` rounding toward -inf (Lava's Dense after its sum)."""
    smooth = x * 2.0 ** exp
    return smooth if exp >= 0 else straight_through(torch.floor(smooth), smooth)


def spike(v: torch.Tensor, exact: torch.Tensor, vth: float) -> torch.Tensor:
    """The spikes ``exact`` (bool, as the neuron decided them) as 0/1 with a surrogate gradient in v."""
    scale = max(float(vth), 1.0)
    z = v / scale - 1
    return straight_through(exact.to(v.dtype), z / (1 + SURROGATE_SLOPE * torch.abs(z)))  # a fast sigmoid's integral


class StraightThroughArithmetic:
    """The operations of :func:`~neurodeploy.spiking.loihi.lif_fixed_step` on float64 tensors: the same values
    as the emulator's integers, straight-through gradients, the spikes sent with a surrogate gradient."""

    def __init__(self, numerics: LoihiNumerics) -> None:
        self.one, self.act_scale = numerics.decay_one, 2 ** numerics.act_shift
        self.limit = 1 << (numerics.state_bits - 1)

    def decay(self, x: torch.Tensor, keep: int) -> torch.Tensor:
        return decay(x, keep, self.one)

    def current(self, a: torch.Tensor) -> torch.Tensor:
        return a * self.act_scale

    def add(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + y

    def wrap_u(self, u: torch.Tensor) -> torch.Tensor:
        return straight_through(torch.remainder(u + self.limit - 1, 2 * self.limit) - (self.limit - 1), u)

    def clip_v(self, v: torch.Tensor) -> torch.Tensor:
        return straight_through(v.clamp(1 - self.limit, self.limit - 1), v)

    def output(self, v: torch.Tensor, fired: torch.Tensor, vth: int) -> torch.Tensor:
        return spike(v, fired, vth)

    def reset(self, v: torch.Tensor, fired: torch.Tensor, vth: int, mode: str) -> torch.Tensor:
        return after_spike(v, fired, vth, mode)
