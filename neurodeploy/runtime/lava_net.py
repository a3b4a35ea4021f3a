"""SpikingPlan -> Lava processes (Dense, Conv, LIF, sigma-delta), a RingBuffer input and one sink per population.

Layouts: a plan keeps NIR's channel-first shapes; Lava uses ``(X, Y, C) = (W, H, C)``. A 1-D
population ``(n,)`` is unchanged, a 2-D one ``(C, L)`` becomes ``(L, 1, C)``, a 3-D one ``(C, H, W)``
becomes ``(W, H, C)``. Dense weights are permuted so that Lava's C-order flattening of a Lava-layout
source equals NIR's flattening of the NIR-layout source; conv kernels become Lava's true-convolution
layout ``w.transpose(0, 3, 2, 1)[:, ::-1, ::-1, :]`` (Lava's Conv takes (Cout, Kx, Ky, Cin) kernels in (X, Y, C)
layout and computes a true convolution, not PyTorch's cross-correlation). Every Dense and Conv process
emits the previous step's sum, so each synaptic layer adds one step of delay.

``mode == "float"`` uses the float parameters; ``mode == "fixed"`` uses ``plan.fixed`` (Loihi integers).
Lava must be imported through :func:`neurodeploy.runtime.lava_compat.import_lava_core` first (Python 3.11).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurodeploy.errors import SpikingPlanError
from neurodeploy.runtime.lava_compat import import_lava_core
from neurodeploy.spiking.loihi import lava_conv_weights
from neurodeploy.spiking.plan import NEURON_STATE, RESETS, NeuronLayer, SpikingPlan, SynapseLayer

import_lava_core()
from lava.proc.conv.process import Conv  # noqa: E402
from lava.proc.dense.process import Dense  # noqa: E402
from lava.proc.io.extractor import Extractor  # noqa: E402
from lava.proc.io.sink import RingBuffer as SinkBuffer  # noqa: E402
from lava.proc.io.source import RingBuffer as SourceBuffer  # noqa: E402
from lava.proc.lif.process import LIF, LIFReset  # noqa: E402
from lava.proc.sdn.process import Delta, Sigma, SigmaDelta  # noqa: E402

from neurodeploy.runtime.lava_procs.reset_lif import ResetLIF  # noqa: E402

EXTRACTOR_STEPS = 64  # a stream's output channels hold this many steps; then Lava waits for the receiver
FLOAT_VTH_NEVER = 1e300  # a population that must never fire (LI readout) in floating_pt


def lava_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """NIR (n,) / (C, L) / (C, H, W) -> Lava (n,) / (L, 1, C) / (W, H, C)."""
    if len(shape) == 1:
        return tuple(shape)
    if len(shape) == 2:
        return (shape[1], 1, shape[0])
    if len(shape) == 3:
        return (shape[2], shape[1], shape[0])
    raise SpikingPlanError(f"a population of shape {shape} has no Lava layout (1, 2 or 3 dimensions)")


def to_lava(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(*shape, ...) in NIR layout -> (*lava_shape(shape), ...)."""
    extra = x.shape[len(shape):]
    if len(shape) == 1:
        return x
    if len(shape) == 2:
        x = x[:, None]  # (C, 1, L, ...)
    axes = (2, 1, 0) + tuple(range(3, 3 + len(extra)))
    return np.transpose(x, axes)


def from_lava(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`to_lava`."""
    if len(shape) == 1:
        return x
    extra = x.ndim - 3
    y = np.transpose(x, (2, 1, 0) + tuple(range(3, 3 + extra)))
    return y[:, 0] if len(shape) == 2 else y


def _flat_permutation(shape: tuple[int, ...]) -> np.ndarray:
    """perm[j] = NIR flat index of the element at Lava flat index j."""
    n = int(np.prod(shape))
    return to_lava(np.arange(n).reshape(shape), shape).ravel()


def dense_weights_lava(weights: np.ndarray, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> np.ndarray:
    return weights[np.ix_(_flat_permutation(out_shape), _flat_permutation(in_shape))]


def conv_kernel_lava(weights: np.ndarray) -> np.ndarray:
    """PyTorch (C_out, C_in/g, kH, kW) cross-correlation -> Lava (C_out, kX, kY, C_in/g) convolution."""
    return np.ascontiguousarray(weights.transpose(0, 3, 2, 1)[:, ::-1, ::-1, :])


@dataclass
class LavaNetwork:
    """The processes of one plan: ``source`` drives the input; ``sinks[name]`` record a population."""

    source: SourceBuffer
    synapses: dict[str, Dense | Conv]
    neurons: dict[str, LIF | SigmaDelta | Sigma | Delta]
    sinks: dict[str, SinkBuffer]
    steps_per_run: int
    bias_lines: dict[str, SourceBuffer]


@dataclass(frozen=True)
class StreamLayout:
    """Samples one after another in one Lava run, one every ``period`` steps: each population is zeroed at
    step ``reset_offsets[name]`` (mod period) of every period (:mod:`neurodeploy.runtime.lava_stream`)."""

    period: int
    reset_offsets: dict[str, int]


def _lif(layer: NeuronLayer, steps_per_run: int, stream: StreamLayout | None = None, **params):
    """A LIF, or a LIFReset where :meth:`NeuronLayer.zeroed_at_step` says the population is zeroed; an LI
    readout is a ResetLIF that never resets and sends its voltage. In a stream every population is a
    ResetLIF zeroed once per period."""
    if stream is not None:
        return ResetLIF(reset_mode=RESETS.index("none" if layer.model == "li" else layer.reset),
                        send_v=layer.sends_voltage, reset_interval=stream.period,
                        reset_offset=stream.reset_offsets[layer.name], **params)
    step = layer.zeroed_at_step(params["bias_mant"])
    if layer.model == "li" and step is None:
        return ResetLIF(reset_mode=RESETS.index("none"), send_v=True, **params)
    if layer.reset != "zero" or layer.sends_voltage:
        if step is not None:
            raise SpikingPlanError(f"{layer.name}: a {layer.reset} reset and a bias before its delayed input "
                                   "(a netx-style LIFReset) are not combined; move the bias to a bias line")
        return ResetLIF(reset_mode=RESETS.index(layer.reset), send_v=layer.sends_v, **params)
    if step is not None:
        return LIFReset(reset_interval=steps_per_run, reset_offset=step % steps_per_run, **params)
    return LIF(**params)


def _neuron(layer: NeuronLayer, plan: SpikingPlan, mode: str, steps_per_run: int, stream: StreamLayout | None = None):
    shape = lava_shape(layer.shape)
    if mode == "float":
        if layer.model not in ("lif", "li"):
            raise SpikingPlanError(f"{layer.name}: {layer.model} neurons run in fixed mode only")
        vth = FLOAT_VTH_NEVER if layer.model == "li" else layer.vth
        return _lif(layer, steps_per_run, stream, shape=shape, du=layer.du, dv=layer.dv, vth=vth,
                    bias_mant=to_lava(layer.bias, layer.shape), name=layer.name)
    q = plan.fixed[layer.name]
    bias = to_lava(np.broadcast_to(q.bias_mant, layer.shape), layer.shape).astype(np.int32)
    if layer.model in ("lif", "li"):
        return _lif(layer, steps_per_run, stream, shape=shape, du=q.du, dv=q.dv, vth=q.vth, bias_mant=bias,
                    bias_exp=q.bias_exp, name=layer.name)
    if layer.model == "sigma_delta":
        return SigmaDelta(shape=shape, vth=q.vth, bias=bias, spike_exp=q.spike_exp, state_exp=q.state_exp)
    if layer.model == "delta":
        return Delta(shape=shape, vth=q.vth, spike_exp=q.spike_exp, state_exp=q.state_exp)
    return Sigma(shape=shape)


GRADED_FLOAT_BITS = 24  # float models multiply by the input instead of treating it as a 0/1 spike


def _synapse(syn: SynapseLayer, plan: SpikingPlan, mode: str):
    fixed = plan.fixed.get(syn.name) if mode == "fixed" else None
    weights = syn.weights if fixed is None else fixed.weights
    if fixed is not None and syn.kind == "conv":
        weights = lava_conv_weights(fixed.weights, fixed.weight_exp)
        extra = dict(num_weight_bits=fixed.num_weight_bits, num_message_bits=fixed.num_message_bits)
    elif fixed is not None:
        extra = dict(weight_exp=fixed.weight_exp, num_weight_bits=fixed.num_weight_bits,
                     num_message_bits=fixed.num_message_bits)
    else:  # Lava's float Dense/Conv binarise the input unless told it is graded: the external input may be
        extra = dict(num_message_bits=GRADED_FLOAT_BITS) if syn.carries_values else {}
    if syn.kind == "dense":
        return Dense(weights=dense_weights_lava(weights, syn.in_shape, syn.out_shape), name=syn.name, **extra)
    return Conv(weight=conv_kernel_lava(weights), input_shape=lava_shape(syn.in_shape),
                padding=syn.padding[::-1], stride=syn.stride[::-1], dilation=syn.dilation[::-1], groups=syn.groups,
                name=syn.name, **extra)


def build_network(plan: SpikingPlan, steps_per_run: int, first_input: np.ndarray, mode: str = "float",
                  stream: StreamLayout | None = None) -> LavaNetwork:
    """Processes for one plan; ``first_input`` is (*lava_shape(input_shape), steps_per_run). With ``stream``,
    ``first_input`` holds every sample, one per period, the bias lines repeat per period, the populations
    reset themselves, and each population's output leaves through an ``Extractor`` (``net.sinks``), read
    step by step while Lava runs, instead of a ring buffer read afterwards."""
    if mode == "fixed" and not plan.is_quantized:
        raise SpikingPlanError("the plan has no fixed-point parameters; run neurodeploy.spiking.quantize.quantize(plan) first")
    source = SourceBuffer(data=first_input)
    neurons = {layer.name: _neuron(layer, plan, mode, steps_per_run, stream) for layer in plan.neurons}
    synapses = {syn.name: _synapse(syn, plan, mode) for syn in plan.synapses}
    for layer in plan.neurons:
        if layer.driven_by_input:
            source.s_out.connect(neurons[layer.name].a_in)
    bias_lines = {}
    for syn in plan.synapses:
        if syn.source == "bias":
            line = bias_line(syn.start_step, steps_per_run) if stream is None else \
                np.tile(bias_line(syn.start_step, stream.period) * _live(stream.period, plan),
                        steps_per_run // stream.period)
            bias_lines[syn.name] = SourceBuffer(data=line)
            upstream = bias_lines[syn.name].s_out
        else:
            upstream = source.s_out if syn.source == "input" else neurons[syn.source].s_out
        if syn.kind == "dense" and len(syn.in_shape) > 1:
            upstream = upstream.flatten()
        upstream.connect(synapses[syn.name].s_in)
        a_out = synapses[syn.name].a_out
        target_shape = lava_shape(syn.out_shape)
        if syn.kind == "dense" and len(target_shape) > 1:
            a_out = a_out.reshape(target_shape)
        a_out.connect(neurons[syn.target].a_in)
    sinks = {}
    for layer in plan.neurons:
        sinks[layer.name] = SinkBuffer(shape=lava_shape(layer.shape), buffer=steps_per_run) if stream is None else \
            Extractor(shape=lava_shape(layer.shape), buffer_size=min(steps_per_run, EXTRACTOR_STEPS))
        (neurons[layer.name].s_out.connect(sinks[layer.name].a_in) if stream is None else
         neurons[layer.name].s_out.connect(sinks[layer.name].in_port))
    return LavaNetwork(source, synapses, neurons, sinks, steps_per_run, bias_lines)


def _live(period: int, plan: SpikingPlan) -> np.ndarray:
    """(1, period): 1 over a sample's T + D steps, 0 over the gap after them (a stream's bias lines are off
    there, so that every population is silent when it is zeroed)."""
    live = np.zeros((1, period))
    live[:, : period - stream_gap(plan)] = 1.0
    return live


def stream_gap(plan: SpikingPlan) -> int:
    """Steps of silence between two samples of a stream, ``D + 1`` (D the deepest population's delay): a
    population with delay d is zeroed at gap step d + 1, after everything upstream of it fell silent."""
    return plan.max_delay_steps + 1


def bias_line(start_step: int, steps: int) -> np.ndarray:
    """(1, steps): 0 before ``start_step``, 1 from it on."""
    line = np.zeros((1, steps))
    line[:, start_step:] = 1.0
    return line


STATE_VARS = ("u", "v", "a_buff", "a_buf", "sigma", "act", "residue", "error")


def reset_state(net: LavaNetwork) -> None:
    """Zero every neuron's and synapse's state (the sample-start state)."""
    for proc in list(net.neurons.values()) + list(net.synapses.values()):
        for name in STATE_VARS:
            var = getattr(proc, name, None)
            if var is not None and hasattr(var, "set"):
                var.set(np.zeros(var.shape))


def read_state(net: LavaNetwork, plan: SpikingPlan) -> dict[str, dict[str, np.ndarray]]:
    """Every neuron's state variables (:data:`NEURON_STATE`) and every synapse's buffered output
    (``a_buff``: what it sends next step), in the plan's (NIR) layout."""
    state = {}
    for layer in plan.neurons:
        proc = net.neurons[layer.name]
        state[layer.name] = {k: from_lava(np.asarray(getattr(proc, k).get()), layer.shape)
                             for k in NEURON_STATE[layer.model]}
    for syn in plan.synapses:
        proc = net.synapses[syn.name]
        buf = np.asarray((proc.a_buff if syn.kind == "dense" else proc.a_buf).get())
        state[syn.name] = {"a_buff": from_lava(buf.reshape(lava_shape(syn.out_shape)), syn.out_shape)}
    return state
