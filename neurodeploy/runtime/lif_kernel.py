"""Lava's fixed-point LIF with the zero reset over a block of steps, as one compiled loop (numba), for the
emulator on a CPU.

Per step and neuron, the integers of :func:`neurodeploy.spiking.loihi.lif_fixed_step` with the emulator's
``IntegerArithmetic`` (Lava's ``PyLifModelBitAcc``; ``U`` = 2**23, int32 wraps ``w32`` only where the
population's input may exceed 2**17, ``small`` otherwise)::

    u = w24(decay(u, keep_u) + (a << 6))              w24: onto (-U, U] (counted: saturated[0])
    v = clip(decay(v, keep_v) + u + bias, 1 - U, U - 1)   (counted: saturated[1])
    s = v > vth;  v <- 0 where s
    decay(x, keep) = sign(x) (|x| keep >> 12)

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


def _lif_zero_block(a, u, v, bias, keep_u, keep_v, vth, small, has_bias, reset_rows, spikes, saturated):
    """a (steps, n) int64; u, v (n,) int64, updated in place; bias (n,) int64; reset_rows (steps,) bool: zero
    u and v before that step; spikes (steps, n) bool, written."""
    steps, n = a.shape
    for t in range(steps):
        if reset_rows[t]:
            u[:] = 0
            v[:] = 0
        for i in range(n):
            x = _u_next(u[i], a[t, i], keep_u, small, saturated)
            u[i] = x
            w = _v_next(v[i], x, bias[i], keep_v, small, has_bias, saturated)
            fired = w > vth
            spikes[t, i] = fired
            v[i] = 0 if fired else w


if numba is not None:
    _w32, _decay, _u_next, _v_next = (numba.njit(inline="always")(f) for f in (_w32, _decay, _u_next, _v_next))
    _lif_zero_block = numba.njit(cache=True, nogil=True)(_lif_zero_block)


def lif_zero_block(a: np.ndarray, u: np.ndarray, v: np.ndarray, bias: np.ndarray, keep_u: int, keep_v: int,
                   vth: int, small: bool, has_bias: bool, reset_rows: np.ndarray,
                   saturated: np.ndarray) -> np.ndarray:
    """The block's spikes (steps, n) bool; ``u``, ``v`` and ``saturated`` (u wraps, v clips) updated in place."""
    spikes = np.empty(a.shape, dtype=np.bool_)
    _lif_zero_block(a, u, v, bias, int(keep_u), int(keep_v), int(vth), bool(small), bool(has_bias), reset_rows,
                    spikes, saturated)
    return spikes
