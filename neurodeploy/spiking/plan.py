"""Backend-neutral description of a spiking network in Lava's discrete-time parameters.

A :class:`SpikingPlan` is what the NIR and netx importers produce and what the Lava builder (and
later the emulator) consume. Shapes are kept in NIR's channel-first order ``(C, H, W)`` (or ``(n,)``);
the Lava builder converts to Lava's ``(X, Y, C) = (W, H, C)``.

Every synaptic layer adds Lava's one-step delay; ``delay_steps`` of a population is the number of
feed-forward synaptic layers between the input and it. A recurrent synapse (its source is fed, directly
or not, by its target) adds no delay to the population: it carries the previous step's spikes.

Fixed-point parameters (Loihi's integer units) live beside the float ones in
:attr:`SpikingPlan.fixed`, filled by :mod:`neurodeploy.spiking.quantize` or read from a netx file.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

RESETS = ("zero", "subtract", "subtract_delayed", "none")
"""What a LIF population does after a spike (:mod:`neurodeploy.spiking.resets` gives the equations)."""

NEURON_MODELS = ("lif", "li", "sigma_delta", "sigma", "delta")
"""``lif``: Lava LIF; ``li``: LIF that never fires and outputs its voltage v (NIR's LI/CubaLI readout); ``sigma_delta``/``sigma``/``delta``:
Lava's sigma-delta processes (``lava.proc.sdn``), as netx builds them."""

NEURON_STATE = {"lif": ("u", "v"), "li": ("u", "v"), "sigma_delta": ("sigma", "act", "residue"),
                "sigma": ("sigma",), "delta": ("act", "residue")}
"""The state variables of each model, as Lava names them."""



def copy_sharing_arrays(obj, owners: Iterable):
    """A deep copy of ``obj`` in which the NumPy arrays held by ``owners`` (layers of a plan, nodes of a NIR
    graph) are the originals, not copies: for code that rebinds those attributes but never writes into the
    arrays (a 4096 x 4096 float64 weight matrix is 134 MB)."""
    shared = {id(a): a for owner in owners for a in vars(owner).values() if isinstance(a, np.ndarray)}
    return copy.deepcopy(obj, shared)

@dataclass
class SynapseLayer:
    """Synapses from ``source`` (``"input"``, a population, or ``"bias"``: an always-on line) into ``target``.

    ``kind == "dense"``: ``a = weights @ flatten(s)`` with ``weights`` (n_out, n_in) and the input
    flattened in C order of its NIR shape. ``kind == "conv"``: a 2-D convolution (PyTorch semantics,
    cross-correlation) with ``weights`` (C_out, C_in/groups, kH, kW). Both deliver one step later.
    """

    name: str
    source: str
    target: str
    weights: np.ndarray
    kind: str = "dense"
    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    recurrent: bool = False
    graded: bool = False  # the source sends graded (multi-bit) spikes
    start_step: int = 0  # for source == "bias": the always-on line is on from this step (0-based)
    refines: str | None = None  # a second synapse layer that adds precision to this one (the quantizer's "double")

    @property
    def carries_values(self) -> bool:
        """The source sends values, not 0/1 spikes: the external input, or a graded population. (Lava's
        float synapses binarise their input unless told otherwise.)"""
        return self.source == "input" or self.graded

    def _of_weights(self, key: str, count) -> int:
        """``count(weights)``, kept until ``weights`` is replaced (a resource map asks many times)."""
        cache = self.__dict__.setdefault("_counts", {})
        if key not in cache or cache[key][0] is not self.weights:
            cache[key] = (self.weights, int(count(self.weights)))
        return cache[key][1]

    @property
    def num_synapses(self) -> int:
        """Stored weights (for a conv: the shared kernel)."""
        return self._of_weights("nonzero", np.count_nonzero)

    @property
    def fan_in(self) -> int:
        """Synapses into one target neuron (the largest, for a dense layer)."""
        if self.kind == "dense":
            return self._of_weights("fan_in", lambda w: np.count_nonzero(w, axis=1).max(initial=0))
        return int(np.prod(self.weights.shape[1:]))

    @property
    def num_connections(self) -> int:
        """Pre x post pairs with a nonzero weight (for a conv: every kernel tap at every output)."""
        if self.kind == "dense":
            return self.num_synapses
        return int(np.prod(self.out_shape[1:]) * np.count_nonzero(self.weights))


@dataclass
class NeuronLayer:
    """A population. For ``model == "lif"``::

        u[t] = u[t-1] (1 - du) + a_in[t];  v[t] = v[t-1] (1 - dv) + u[t] + bias;  spike if v > vth, then
        the ``reset`` (:mod:`neurodeploy.spiking.resets`: ``zero`` as Lava's LIF, ``subtract``,
        ``subtract_delayed`` as snnTorch's default, ``none``)
    """

    name: str
    shape: tuple[int, ...]
    du: float
    dv: float
    vth: float
    bias: np.ndarray  # shape == self.shape
    delay_steps: int = 0
    model: str = "lif"
    driven_by_input: bool = False  # the external input enters a_in directly (netx input layers)
    reset: str = "zero"  # one of RESETS
    sends_v: bool = False  # a LIF that sends its voltage v (after its reset, as the frameworks return it) each step
    # instead of its spikes: a membrane readout at the cut (set by the runtime from the bundle's ``cut_reads``)

    @property
    def sends_voltage(self) -> bool:
        """Its output is its voltage: an LI readout, or a LIF read at the cut by its membrane."""
        return self.model == "li" or self.sends_v

    @property
    def n(self) -> int:
        return int(np.prod(self.shape))

    @property
    def output_dtype(self) -> type:
        """How a run stores this population's output: binary spikes as uint8 (8x less than float64), graded
        values (sigma-delta messages, an LI readout's voltage) as float64."""
        return np.uint8 if self.model == "lif" and not self.sends_v else np.float64

    def zeroed_at_step(self, bias) -> int | None:
        """The step (1-based, within each run) at which u and v are set to zero, or None.

        A Lava bias acts from step 1, earlier than an input delayed by ``delay_steps`` synaptic layers;
        a LIF with a bias and a delay is zeroed just before its first input arrives (Lava ``LIFReset``,
        as netx builds it), so it starts that input from rest like the float simulation.
        """
        if self.delay_steps >= 1 and np.any(np.asarray(bias) != 0):
            return self.delay_steps + 1
        return None


@dataclass
class FixedSynapse:
    """Loihi integer synapse: effective weight ``weights * 2**weight_exp`` (8-bit mantissas)."""

    weights: np.ndarray
    weight_exp: int = 0
    num_weight_bits: int = 8
    num_message_bits: int = 0


@dataclass
class FixedNeuron:
    """Loihi integer neuron (Lava ``fixed_pt`` LIF units): decays out of 4096, ``vth`` and
    ``bias_mant << bias_exp`` in units of 2**-6 of the state; sigma-delta: ``vth``, ``spike_exp``,
    ``state_exp``."""

    du: int = 0
    dv: int = 0
    vth: int = 0
    bias_mant: np.ndarray | int = 0
    bias_exp: int = 0
    spike_exp: int = 0
    state_exp: int = 0
    v_unit: float = 0.0  # integer units of v per float unit, 2**act_shift S (0: not known, e.g. read from netx)


@dataclass
class SpikingPlan:
    """Input shape, layers in build order, and the populations whose spikes leave the graph."""

    input_shape: tuple[int, ...]
    layers: list[SynapseLayer | NeuronLayer]
    outputs: dict[str, str]  # output node name -> NeuronLayer name
    dt: float
    input_name: str = "input"
    metadata: dict = field(default_factory=dict)
    fixed: dict[str, FixedSynapse | FixedNeuron] = field(default_factory=dict)
    graded_input: bool = False

    @property
    def n_in(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def neurons(self) -> list[NeuronLayer]:
        return [layer for layer in self.layers if isinstance(layer, NeuronLayer)]

    @property
    def synapses(self) -> list[SynapseLayer]:
        return [layer for layer in self.layers if isinstance(layer, SynapseLayer)]

    def layer(self, name: str) -> SynapseLayer | NeuronLayer:
        return next(layer for layer in self.layers if layer.name == name)

    def incoming(self, neuron: str) -> list[SynapseLayer]:
        return [s for s in self.synapses if s.target == neuron]

    def source_shape(self, source: str) -> tuple[int, ...]:
        if source == "bias":
            return (1,)
        return self.input_shape if source == "input" else self.layer(source).shape

    @property
    def readouts(self) -> set[str]:
        """Populations whose output is their voltage (LI/CubaLI readouts, a membrane read at the cut), not spikes."""
        return {n.name for n in self.neurons if n.sends_voltage}

    def spikes_only(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``arrays`` keyed by population, without the voltage readouts (what spike counts are taken over)."""
        return {name: a for name, a in arrays.items() if name not in self.readouts}

    @property
    def max_delay_steps(self) -> int:
        return max(n.delay_steps for n in self.neurons)

    def cut_values(self, name: str, values: np.ndarray) -> np.ndarray:
        """What population ``name`` hands the dense part, in the model's units: a membrane sent at the cut
        (``sends_v``) is, in fixed point, Loihi's integer voltage over ``2**act_shift S`` (its float units, as
        the weights' scale defines them); spikes and float values as they are."""
        q = self.fixed.get(name)
        if not self.layer(name).sends_v or not self.is_quantized or not getattr(q, "v_unit", 0.0):
            return values
        return np.asarray(values, dtype=np.float64) / q.v_unit

    @property
    def is_quantized(self) -> bool:
        return all(layer.name in self.fixed for layer in self.layers)
