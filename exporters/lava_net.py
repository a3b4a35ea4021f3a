"""SpikingPlan -> Lava processes (Dense + LIF), with RingBuffer input and one sink per population.

Lava must be imported through :func:`neurodeploy.lava_compat.import_lava_core` first (Python 3.11).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurodeploy.lava_compat import import_lava_core
from neurodeploy.spiking_plan import NeuronLayer, SpikingPlan, SynapseLayer

import_lava_core()
from lava.proc.dense.process import Dense  # noqa: E402
from lava.proc.io.sink import RingBuffer as SinkBuffer  # noqa: E402
from lava.proc.io.source import RingBuffer as SourceBuffer  # noqa: E402
from lava.proc.lif.process import LIF  # noqa: E402


@dataclass
class LavaNetwork:
    """The processes of one plan: ``source`` drives the input; ``sinks[name]`` record a population."""

    source: SourceBuffer
    dense: dict[str, Dense]
    lif: dict[str, LIF]
    sinks: dict[str, SinkBuffer]
    steps_per_run: int


def build_float_network(plan: SpikingPlan, steps_per_run: int, first_input: np.ndarray) -> LavaNetwork:
    """Processes for ``floating_pt`` (float64 parameters); ``first_input`` is (n_in, steps_per_run)."""
    source = SourceBuffer(data=first_input)
    dense: dict[str, Dense] = {}
    lif: dict[str, LIF] = {}
    sinks: dict[str, SinkBuffer] = {}
    for layer in plan.layers:
        if isinstance(layer, SynapseLayer):
            proc = Dense(weights=layer.weights, name=layer.name)
            upstream = source.s_out if layer.source == "input" else lif[layer.source].s_out
            upstream.connect(proc.s_in)
            dense[layer.name] = proc
        elif isinstance(layer, NeuronLayer):
            proc = LIF(shape=(layer.n,), du=layer.du, dv=layer.dv, vth=layer.vth,
                       bias_mant=layer.bias, name=layer.name)
            dense[layer.source].a_out.connect(proc.a_in)
            sink = SinkBuffer(shape=(layer.n,), buffer=steps_per_run)
            proc.s_out.connect(sink.a_in)
            lif[layer.name], sinks[layer.name] = proc, sink
    return LavaNetwork(source, dense, lif, sinks, steps_per_run)


def reset_state(net: LavaNetwork) -> None:
    """Zero every LIF's u and v and every Dense's pending output (the sample-start state)."""
    for proc in net.lif.values():
        n = proc.u.shape
        proc.u.set(np.zeros(n))
        proc.v.set(np.zeros(n))
    for proc in net.dense.values():
        proc.a_buff.set(np.zeros(proc.a_buff.shape))
