"""Event-driven synaptic sums for the emulator on a CPU (numba): where binary spikes enter a dense synaptic
layer, a row's sum is the sum of the weight rows of the inputs that spiked, so the work follows the spikes,
not every input x weight pair.

For one row of spikes ``s`` (n_in,) and integer weights ``W`` (n_out, n_in), Lava's dense synapse computes
``a = W s``; here ``a = sum over i with s_i != 0 of W[:, i]``, added in int32 over the transposed weights (int16
where they fit): the same integers exactly, since the synapse's bound (``max |W| * fan_in``) is below 2**31
(the emulator's float32 product needs it below 2**24). Which of the two runs a block is chosen by
measurement (:class:`EventSums`): the first block runs both and times them, later blocks take the one that
is faster for their number of spikes.
"""
from __future__ import annotations

import time

import numpy as np

MIN_PAIRS = 1 << 22
"""Input x weight pairs below which a block's sums are always one matrix product (about 0.1 ms of it here):
smaller products cost little more than the calls around them, which the per-spike timing does not see."""

try:
    import numba
except ImportError:  # pragma: no cover - the matrix product runs instead
    numba = None


def _event_sums(spikes, w_t, out, exp):
    """spikes (R, n_in) bool; w_t (n_in, n_out) int16/int32; out (R, n_out) int64, added to. Per row: the
    inputs that spiked, then their weight rows added four at a time in int32 (one pass over the sums per four);
    the row's sums shifted by ``exp`` (``<< exp``, or an arithmetic ``>> -exp``: Lava's Dense after its sum)
    and added to ``out`` in place (zeros and ``exp`` 0: the sums themselves; the emulator's input buffer of
    the target population: no sums array, shift pass or addition pass of its own)."""
    rows, n_in = spikes.shape
    n_out = w_t.shape[1]
    active = np.empty(n_in, np.int64)
    acc = np.zeros(n_out, np.int32)
    for r in range(rows):
        k = 0
        for i in range(n_in):
            if spikes[r, i]:
                active[k] = i
                k += 1
        acc[:] = 0
        e = 0
        while e + 3 < k:
            a, b, c, d = w_t[active[e]], w_t[active[e + 1]], w_t[active[e + 2]], w_t[active[e + 3]]
            for j in range(n_out):
                acc[j] += np.int32(a[j]) + np.int32(b[j]) + np.int32(c[j]) + np.int32(d[j])
            e += 4
        while e < k:
            a = w_t[active[e]]
            for j in range(n_out):
                acc[j] += a[j]
            e += 1
        if exp >= 0:
            for j in range(n_out):
                out[r, j] += np.int64(acc[j]) << exp
        else:
            for j in range(n_out):
                out[r, j] += np.int64(acc[j]) >> -exp


if numba is not None:
    _event_sums = numba.njit(cache=True, nogil=True)(_event_sums)


class EventSums:
    """A dense synapse's sums, event-driven or as the caller's matrix product, whichever measured faster:
    ``sums(spikes)`` returns the int64 sums, or None where the matrix product should run (then the caller
    reports its time with :meth:`product_took`)."""

    def __init__(self, weights: np.ndarray) -> None:
        self.weights = np.asarray(weights)  # (n_out, n_in); transposed and narrowed on the first event-driven block
        self.n_out = self.weights.shape[0]
        self._w_t: np.ndarray | None = None
        self.s_per_event: float | None = None  # seconds per spike and row, measured
        self.s_per_row: float | None = None  # seconds per row of the matrix product, measured
        self.min_pairs = MIN_PAIRS  # (0 in tests: every block event-driven where the timing says so)

    @staticmethod
    def available() -> bool:
        return numba is not None

    @property
    def w_t(self) -> np.ndarray:
        """The weights (n_in, n_out), int16 where they fit, else int32; made (and the kernel compiled or loaded
        from numba's cache, outside any timing) when first needed, so a synapse whose blocks stay small never
        copies them."""
        if self._w_t is None:
            w_t = np.ascontiguousarray(self.weights.T)
            self._w_t = w_t.astype(np.int16 if np.abs(w_t).max(initial=0) < 2 ** 15 else np.int32)
            _event_sums(np.ones((1, len(self._w_t)), np.bool_), self._w_t, np.zeros((1, self.n_out), np.int64), 0)
        return self._w_t

    def sums(self, spikes: np.ndarray) -> np.ndarray | None:
        """spikes (R, n_in) bool -> (R, n_out) int64, or None: the matrix product is expected to be faster (or
        the product is too small for the timing to tell: below :data:`MIN_PAIRS` pairs, the calls' own cost
        decides, and the product is taken)."""
        if not self.chooses_events(spikes):
            return None
        w_t, out = self.w_t, np.zeros((len(spikes), self.n_out), dtype=np.int64)
        t0 = time.perf_counter()
        _event_sums(np.ascontiguousarray(spikes), w_t, out, 0)
        if self.s_per_event is None:  # the first event-driven block times the spikes
            self.s_per_event = (time.perf_counter() - t0) / max(int(np.count_nonzero(spikes)), 1)
        return out

    def chooses_events(self, spikes: np.ndarray) -> bool:
        """Whether ``spikes`` (R, n_in) bool are summed event-driven: pairs enough for the timing to tell, and
        their spikes cheaper event-driven than the rows as a matrix product (until both are timed: yes)."""
        if spikes.size * self.n_out < self.min_pairs:
            return False
        return self.s_per_event is None or self.s_per_row is None or \
            int(np.count_nonzero(spikes)) * self.s_per_event < len(spikes) * self.s_per_row

    def add_into(self, spikes: np.ndarray, out: np.ndarray, exp: int) -> None:
        """``out`` (R, n_out) int64 += the sums of ``spikes`` (R, n_in) bool shifted by ``exp``, event-driven."""
        _event_sums(np.ascontiguousarray(spikes), self.w_t, out, exp)

    @property
    def measuring(self) -> bool:
        """The product has not been timed yet: the caller runs it too, and reports its time."""
        return self.s_per_row is None

    def product_took(self, seconds: float, rows: int) -> None:
        self.s_per_row = seconds / max(rows, 1)
