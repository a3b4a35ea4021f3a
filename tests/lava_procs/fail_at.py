"""A Lava process whose model raises RuntimeError at time step ``step`` (tests clean-up on failure)."""
from neurodeploy.runtime.lava_compat import import_lava_core

import_lava_core()
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol


class FailAt(AbstractProcess):
    def __init__(self, shape, step):
        super().__init__(shape=shape, step=step); self.a_in = InPort(shape=shape)
@implements(proc=FailAt, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyFailAtModel(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    def run_spk(self):
        self.a_in.recv()
        if self.time_step == self.proc_params["step"]:
            raise RuntimeError(f"injected failure at step {self.time_step}")
