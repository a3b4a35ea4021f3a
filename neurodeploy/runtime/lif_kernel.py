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


def _decay(x, keep):
    if keep == 4096:
        return x
    if keep == 0:
        return x * 0
    y = x * keep
    return (y + ((y >> 63) & 4095)) >> 12


def _u_next(u, a, keep_u, small, saturated):
    if small:
        x = _decay(u, keep_u) + (a << 6)
        if x < 1 - U or x > U:
            t = x + (U - 1)
            if t >> 24 != 0:
                saturated[0] += 1
            x = (t & (2 * U - 1)) - (U - 1)
        return x
    x = _w32(_decay(u, keep_u) + _w32(_w32(a) << 6))
    if x > U:
        saturated[0] += 1
        x = x - 2 * U
    elif x <= -U:
        saturated[0] += 1
        x = x + 2 * U
    return _w32(x)


def _v_next(v, u, bias, keep_v, small, has_bias, saturated):
    w = _decay(v, keep_v) + u if small else _w32(_decay(v, keep_v) + u)
    if has_bias:
        w = w + bias if small else _w32(w + bias)
    if w > U - 1:
        saturated[1] += 1
        w = U - 1
    elif w < 1 - U:
        saturated[1] += 1
        w = 1 - U
    return w


def _lif_block(a, u, v, bias, keep_u, keep_v, vth, small, has_bias, mode, reset_rows, spikes, saturated):
    """a (steps, n) int64; u, v (n,) int64, updated in place; bias (n,) int64; mode: the index of the reset in
    :data:`MODES`; reset_rows (steps,) bool: zero u and v before that step; spikes (steps, n) bool, written."""
    steps, n = a.shape
    for t in range(steps):
        if reset_rows[t]:
            u[:] = 0
            v[:] = 0
        for i in range(n):
            before = v[i] > vth
            x = _u_next(u[i], a[t, i], keep_u, small, saturated)
            u[i] = x
            w = _v_next(v[i], x, bias[i], keep_v, small, has_bias, saturated)
            if mode == 2 and before:  # subtract_delayed
                w = max(w - vth, 1 - U)
            fired = (w - vth if mode == 1 and before else w) > vth
            spikes[t, i] = fired
            if fired and mode == 0:
                w = 0
            elif fired and mode == 1:
                w = w - vth
            v[i] = w


if numba is not None:
    _w32, _decay, _u_next, _v_next = (numba.njit(inline="always")(f) for f in (_w32, _decay, _u_next, _v_next))
    _lif_block = numba.njit(cache=True, nogil=True)(_lif_block)

MODES = ("zero", "subtract", "subtract_delayed", "none")
"""The reset modes the loop runs, by index (all of :data:`neurodeploy.spiking.plan.RESETS`)."""


def lif_block(a: np.ndarray, u: np.ndarray, v: np.ndarray, bias: np.ndarray, keep_u: int, keep_v: int, vth: int,
              small: bool, has_bias: bool, reset: str, reset_rows: np.ndarray, saturated: np.ndarray) -> np.ndarray:
    """The block's spikes (steps, n) bool; ``u``, ``v`` and ``saturated`` (u wraps, v clips) updated in place."""
    spikes = np.empty(a.shape, dtype=np.bool_)
    _lif_block(a, u, v, bias, int(keep_u), int(keep_v), int(vth), bool(small), bool(has_bias), MODES.index(reset),
               reset_rows, spikes, saturated)
    return spikes
