"""Lava's fixed-point LIF over a block of steps, as one compiled loop (numba), for the emulator on a CPU.

Per step and neuron, the integers of :func:`neurodeploy.spiking.loihi.lif_fixed_step` with the emulator's
``IntegerArithmetic`` (Lava's ``PyLifModelBitAcc``; ``U`` = 2**23, int32 wraps ``w32`` only where the
population's input may exceed 2**17, ``small`` otherwise)::

    r = v > vth                                        (the last step's spike, for the subtractive resets)
    u = w24(decay(u, keep_u) + (a << 6))              w24: onto (-U, U] (counted: saturated[0])
    v = clip(decay(v, keep_v) + u + bias, 1 - U, U - 1)   (counted: saturated[1])
    decay(x, keep) = sign(x) (|x| keep >> 12)

then by reset mode (:mod:`neurodeploy.spiking.resets`): ``zero`` s = v > vth, v <- 0 where s; ``subtract``
s = v - vth r > vth, v <- v - vth where s; ``subtract_delayed`` v <- max(v - vth r, 1 - U), s = v > vth;
``none`` s = v > vth.

with u and v zeroed first at the run's step ``reset_step`` (a LIF with a bias and a delay, as netx's
``LIFReset``). The emulator's step-by-step torch path computes the same; tests compare both with Lava.
Without numba (the ``fast`` extra) the emulator takes that path.
"""
from __future__ import annotations

import numpy as np

try:
    import numba
except ImportError:  # pragma: no cover - the torch path runs instead
    numba = None

U = 1 << 23  # Loihi's 24-bit state: u wraps onto (-U, U], v clips to +-(U - 1)


def available() -> bool:
    """Whether the compiled kernel can run (numba is installed)."""
    return numba is not None


def _w32(x):
    """Two's-complement wrap of an int64 to 32 bits."""
    return (x << 32) >> 32


def _lif_block(a, u, v, bias, keep_u, keep_v, vth, small, has_bias, mode, reset_rows, spikes, saturated):
    """a (steps, n) int64, or float32 holding integers (a channels-last conv's exact sums); u, v (n,) int64,
    updated in place; bias (n,) int64; mode: the index of the reset in :data:`MODES`; reset_rows (steps,) bool:
    zero u and v before that step; spikes (steps, n) bool, written.

    No branch in the loop over neurons (so that it runs in SIMD lanes): the decays as
    ``(y + ((y >> 63) & 4095)) >> 12`` for every ``keep`` (exact for 0 and 4096 too); u's wrap onto (-U, U]
    as a mask where the input is ``small`` (the identity within range), else as Lava's int32 wraps and one
    2U step; v's clip as min/max; the resets as selects; the saturation counts as sums."""
    steps, n = a.shape
    m0, m1, m2 = int(mode == 0), int(mode == 1), int(mode == 2)
    wraps, clips = 0, 0
    for t in range(steps):
        if reset_rows[t]:
            u[:] = 0
            v[:] = 0
        for i in range(n):
            before = int(v[i] > vth)
            a_in = np.int64(a[t, i])
            y = u[i] * keep_u
            if small:
                x = ((y + ((y >> 63) & 4095)) >> 12) + (a_in << 6)
                shifted = x + (U - 1)
                wraps += int((shifted >> 24) != 0)
                x = (shifted & (2 * U - 1)) - (U - 1)
            else:
                x = _w32(((y + ((y >> 63) & 4095)) >> 12) + _w32(_w32(a_in) << 6))
                over, under = int(x > U), int(x <= -U)
                wraps += over + under
                x = _w32(x - 2 * U * over + 2 * U * under)
            u[i] = x
            y = v[i] * keep_v
            w = ((y + ((y >> 63) & 4095)) >> 12) + x
            w = w + bias[i] * has_bias if small else _w32(_w32(w) + bias[i] * has_bias)
            clips += int(w > U - 1) + int(w < 1 - U)
            w = max(min(w, U - 1), 1 - U)
            w = max(w - vth * (before * m2), 1 - U)  # subtract_delayed: last step's spike, before the threshold
            fired = int(w - vth * (before * m1) > vth)
            spikes[t, i] = fired
            v[i] = w - w * (fired * m0) - vth * (fired * m1)
    saturated[0] += wraps
    saturated[1] += clips


if numba is not None:
    _w32 = numba.njit(inline="always")(_w32)
    _lif_block = numba.njit(cache=True, nogil=True)(_lif_block)

MODES = ("zero", "subtract", "subtract_delayed", "none")
"""The reset modes the loop runs, by index (all of :data:`neurodeploy.spiking.plan.RESETS`)."""


def lif_block(a: np.ndarray, u: np.ndarray, v: np.ndarray, bias: np.ndarray, keep_u: int, keep_v: int, vth: int,
              small: bool, has_bias: bool, reset: str, reset_rows: np.ndarray, saturated: np.ndarray,
              spikes: np.ndarray | None = None) -> np.ndarray:
    """The block's spikes (steps, n) bool, written into ``spikes`` where given; ``u``, ``v`` and ``saturated``
    (u wraps, v clips) updated in place."""
    spikes = np.empty(a.shape, dtype=np.bool_) if spikes is None else spikes
    _lif_block(a, u, v, bias, int(keep_u), int(keep_v), int(vth), bool(small), bool(has_bias), MODES.index(reset),
               reset_rows, spikes, saturated)
    return spikes
