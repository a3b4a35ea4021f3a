"""Lava's LIF + Dense processes, float and fixed point, against NumPy implementations of their equations.

The NumPy code here is written from Lava 0.10.0's bit-accurate model source (``PyLifModelBitAcc``); it
is independent of neurodeploy. Fixed point: u decays by (4096 - (du + 1)) >> 12 (Loihi's ds_offset
register adds 1 to du), v by (4096 - dv) >> 12; inputs enter u shifted left by 6; threshold vth << 6.
"""
from __future__ import annotations

import numpy as np
import pytest

from neurodeploy.runtime.lava_compat import import_lava_core
from neurodeploy.runtime.lava_runner import stopped_on_exit

import_lava_core()
from lava.magma.core.run_conditions import RunSteps  # noqa: E402
from lava.magma.core.run_configs import Loihi2SimCfg  # noqa: E402
from lava.proc.dense.process import Dense  # noqa: E402
from lava.proc.io.sink import RingBuffer as Sink  # noqa: E402
from lava.proc.io.source import RingBuffer as Source  # noqa: E402
from lava.proc.lif.process import LIF  # noqa: E402

T, N_IN, N_HID, N_OUT = 60, 12, 20, 8


def _sign_shift(x: np.ndarray, decay: int) -> np.ndarray:
    prod = x.astype(np.int64) * (4096 - decay)
    return (np.sign(prod) * (np.abs(prod) >> 12)).astype(np.int64)


def numpy_float(x, layers):
    """layers: [(W, du, dv, vth, bias)]; returns spikes of each population, Lava-delayed."""
    s_in, out = x, []
    for w, du, dv, vth, bias in layers:
        u, v = np.zeros(w.shape[0]), np.zeros(w.shape[0])
        a_buff, spikes = np.zeros(w.shape[0]), np.zeros((T, w.shape[0]))
        for t in range(T):
            a_in, a_buff = a_buff, w @ s_in[t]  # Dense: one-step delay
            u = u * (1 - du) + a_in
            v = v * (1 - dv) + u + bias
            spikes[t] = v > vth
            v[spikes[t] > 0] = 0
        out.append(spikes)
        s_in = spikes
    return out


def numpy_fixed(x, layers, weight_exp=0):
    s_in, out = x, []
    for w, du, dv, vth, bias in layers:
        u, v = np.zeros(w.shape[0], np.int64), np.zeros(w.shape[0], np.int64)
        a_buff, spikes = np.zeros(w.shape[0], np.int64), np.zeros((T, w.shape[0]))
        for t in range(T):
            a_in = a_buff
            acc = w.astype(np.int64) @ s_in[t].astype(np.int64)
            a_buff = acc << weight_exp if weight_exp >= 0 else acc >> -weight_exp
            u = _sign_shift(u, du + 1) + (a_in << 6)
            u = np.where(u > 2**23, u - 2**24, u)
            u = np.where(u <= -(2**23), u + 2**24, u)
            v = np.clip(_sign_shift(v, dv) + u + bias, -(2**23) + 1, 2**23 - 1)
            spikes[t] = v > (vth << 6)
            v[spikes[t] > 0] = 0
        out.append(spikes)
        s_in = spikes
    return out


def run_lava(x, layers, tag, weight_exp=0):
    source = Source(data=x.T.copy())
    upstream, sinks = source.s_out, []
    for w, du, dv, vth, bias in layers:
        dense = Dense(weights=w, weight_exp=weight_exp) if tag == "fixed_pt" else Dense(weights=w)
        lif = LIF(shape=(w.shape[0],), du=du, dv=dv, vth=vth, bias_mant=bias)
        sink = Sink(shape=(w.shape[0],), buffer=T)
        upstream.connect(dense.s_in)
        dense.a_out.connect(lif.a_in)
        lif.s_out.connect(sink.a_in)
        upstream, sinks = lif.s_out, sinks + [sink]
    with stopped_on_exit(source):
        source.run(condition=RunSteps(num_steps=T), run_cfg=Loihi2SimCfg(select_tag=tag))
        return [s.data.get().T for s in sinks]


_rng = np.random.default_rng(2)
# even mixed-sign 8-bit weights survive Lava's truncation unchanged
FIXED_LAYERS = [(2 * _rng.integers(-20, 30, (N_HID, N_IN)), 1000, 300, 300, _rng.integers(-5, 20, N_HID)),
                (2 * _rng.integers(-20, 30, (N_OUT, N_HID)), 4095, 500, 150, np.zeros(N_OUT, int))]


@pytest.fixture
def spikes_in():
    rng = np.random.default_rng(7)
    return (rng.random((T, N_IN)) < 0.3).astype(float)


def test_float_lif_dense_matches_numpy(spikes_in):
    rng = np.random.default_rng(1)
    layers = [(rng.normal(0.3, 0.6, (N_HID, N_IN)), 0.3, 0.1, 1.0, np.full(N_HID, 0.02)),
              (rng.normal(0.2, 0.5, (N_OUT, N_HID)), 1.0, 0.2, 0.8, np.zeros(N_OUT))]
    expected, got = numpy_float(spikes_in, layers), run_lava(spikes_in, layers, "floating_pt")
    assert sum(e.sum() for e in expected) > 20  # the network is active
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(g, e)


def test_fixed_lif_dense_matches_numpy(spikes_in):
    expected, got = numpy_fixed(spikes_in, FIXED_LAYERS), run_lava(spikes_in, FIXED_LAYERS, "fixed_pt")
    assert all(0.1 < e.mean() < 0.5 for e in expected)  # active, not saturated
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(g, e)


def test_fixed_reference_would_catch_a_wrong_decay(spikes_in):
    """The ds_offset detail matters: dropping it changes the spikes, so the test above can fail."""
    right = numpy_fixed(spikes_in, FIXED_LAYERS)
    wrong = numpy_fixed(spikes_in, [(w, du - 1, dv, vth, b) for w, du, dv, vth, b in FIXED_LAYERS])
    assert any(not np.array_equal(r, w) for r, w in zip(right, wrong))
