"""``ResetLIF``: Lava's LIF with a chosen reset, for Loihi 2's programmable neurons (float and fixed point).

Loihi 2 neurons are microcode-programmable; Lava 0.10.0's ``LIF`` only resets v to zero. This process
keeps every variable, port and the sub-threshold dynamics of Lava's LIF (its ``floating_pt`` and
bit-accurate ``fixed_pt`` models are reused) and replaces only what happens at the threshold, by
``reset_mode`` (the order of :data:`neurodeploy.spiking.plan.RESETS`)::

    0 zero              v <- 0 where s                   (Lava's LIF)
    1 subtract          s = v - vth r > vth, r = v_old > vth; v <- v - vth where s
                        (snnTorch reset_mechanism="subtract", reset_delay=False: its spike test subtracts
                        again while the voltage left after the last reset is above vth)
    2 subtract_delayed  v <- v - vth r, r = v_old > vth, before the threshold; no reset after it
                        (snnTorch's default: reset_mechanism="subtract", reset_delay=True)
    3 none              no reset

With ``reset_interval = P > 0``, u and v are set to zero at every step ``t`` (Lava's 1-based time step)
with ``t % P == reset_offset``, before that step's update (as Lava's ``LIFReset``): how a stream of
samples, one every P steps, starts each sample from rest without any ``Var.set``
(:mod:`neurodeploy.runtime.lava_stream`).

With ``send_v=True`` the output port carries ``v`` each step instead of the spikes: a graded voltage
readout (NIR's LI/CubaLI, whose output is its membrane), recorded like spikes; such a population runs
with ``reset_mode=3`` and a threshold it never reaches. A spiking population read at the cut by its
membrane (snnTorch's ``mem``, a norse state's ``v``) keeps its threshold and reset and sends ``v`` after
the reset, which is what those frameworks return.

In fixed point ``vth`` is ``vth << 6`` and mode 2 subtracts after Lava's 24-bit clip of v, then clips
again below (``-(2**23 - 1)``). The emulator (:mod:`neurodeploy.runtime.emulator`) runs the same
equations; ``tests/test_reset_lif.py`` checks both against each other and the float model against snnTorch.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.ports import PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.lif.models import AbstractPyLifModelFixed, AbstractPyLifModelFloat
from lava.proc.lif.process import LIF

ZERO, SUBTRACT, SUBTRACT_DELAYED, NONE = range(4)


class ResetLIF(LIF):
    """Lava's LIF (same arguments) with ``reset_mode``: 0 zero, 1 subtract, 2 subtract_delayed, 3 none;
    ``send_v``: send v on ``s_out`` (a voltage readout) instead of spikes."""

    def __init__(self, *, reset_mode: int = ZERO, send_v: bool = False, reset_interval: int = 0,
                 reset_offset: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.reset_mode = Var(shape=(1,), init=int(reset_mode))
        self.send_v = Var(shape=(1,), init=int(send_v))
        self.reset_interval = Var(shape=(1,), init=int(reset_interval))
        self.reset_offset = Var(shape=(1,), init=int(reset_offset))


def _periodic_reset(model) -> None:
    """Zero u and v at the steps the population is reset at (``reset_interval`` > 0)."""
    interval = int(model.reset_interval[0])
    if interval and model.time_step % interval == int(model.reset_offset[0]):
        model.u[:] = 0
        model.v[:] = 0


def _after_threshold(model, v_threshold, low: float) -> np.ndarray:
    """The shared step of both models once the sub-threshold update ran: delayed subtraction, spike, reset."""
    mode = int(model.reset_mode[0])
    if mode == SUBTRACT_DELAYED:
        model.v[:] = np.maximum(model.v - v_threshold * model.fired_before, low)
    spikes = model.v > v_threshold
    if mode == SUBTRACT:
        spikes = model.v - v_threshold * model.fired_before > v_threshold
    if mode == ZERO:
        model.v[spikes] = 0
    elif mode == SUBTRACT:
        model.v[spikes] -= v_threshold
    return spikes


@implements(proc=ResetLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyResetLifModelFloat(AbstractPyLifModelFloat):
    """Lava's float LIF, then :func:`_after_threshold`."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    vth: float = LavaPyType(float, float)
    reset_mode: np.ndarray = LavaPyType(np.ndarray, int)
    send_v: np.ndarray = LavaPyType(np.ndarray, int)
    reset_interval: np.ndarray = LavaPyType(np.ndarray, int)
    reset_offset: np.ndarray = LavaPyType(np.ndarray, int)

    def run_spk(self) -> None:
        a_in = self.a_in.recv()
        _periodic_reset(self)
        self.fired_before = self.v > self.vth
        self.subthr_dynamics(activation_in=a_in)
        spikes = _after_threshold(self, self.vth, -np.inf)
        self.s_out.send(self.v.copy() if self.send_v[0] else spikes)


@implements(proc=ResetLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyResetLifModelFixed(AbstractPyLifModelFixed):
    """Lava's bit-accurate LIF (``PyLifModelBitAcc``), then :func:`_after_threshold` in integer units."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    vth: int = LavaPyType(int, np.int32, precision=17)
    reset_mode: np.ndarray = LavaPyType(np.ndarray, int)
    send_v: np.ndarray = LavaPyType(np.ndarray, int)
    reset_interval: np.ndarray = LavaPyType(np.ndarray, int)
    reset_offset: np.ndarray = LavaPyType(np.ndarray, int)

    def run_spk(self) -> None:
        a_in = self.a_in.recv()
        _periodic_reset(self)
        self.scale_bias()
        effective_vth = np.left_shift(self.vth, self.vth_shift)
        self.fired_before = self.v > effective_vth
        self.subthr_dynamics(activation_in=a_in)
        spikes = _after_threshold(self, effective_vth, -self.max_uv_val + 1)
        self.s_out.send(self.v.copy() if self.send_v[0] else spikes)
