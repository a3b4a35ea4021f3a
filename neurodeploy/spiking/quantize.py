"""Loihi fixed point for a float :class:`SpikingPlan` (Lava ``fixed_pt`` units), with a report.

The bit widths come from the chip's profile (:mod:`neurodeploy.spiking.loihi`; Loihi 2's by default).
Lava's bit-accurate LIF (``u <- u (4096 - du) >> 12 + (a_in << 6)``, ``v <- v (4096 - dv) >> 12 + u +
bias``, spike when ``v > vth << 6``) keeps ``u`` and ``v`` as integers in units of 2**-act_shift of the
weight scale: one float unit of current or voltage of a population is ``2**act_shift * S`` integer
units, ``S`` being that population's scale. Per population (widths of Loihi 2 in brackets):

    vth_mant   = round(vth * S)                               (vth_bits: 17)
    bias       = bias_mant << bias_exp ~= bias * S * 64       (13-bit signed mantissa, 3-bit exponent)
    du_fixed   = round(du * 4096) - 1, dv_fixed = round(dv * 4096)   (12 bits; Lava decays u by 4096-(du+1))

and per incoming synapse, its own exponent ``e`` (the "per-layer exponent")::

    weights * 2**e ~= W * S    (weight_bits mantissas held in Lava's 8-bit register: the low
                                8 - weight_bits + mixed bits are zero, so mixed-sign 8-bit mantissas are even)

``S`` is the largest scale that keeps every mantissa in range: the threshold, the bias, the weights at the
largest exponent (Lava's Conv fixed model has no weight exponent, so a conv fixes ``S`` by its largest
weight), and a bound on ``|u|`` (24-bit, wraps). The largest ``S`` gives the smallest rounding error. With
``per_synapse_exponents=False`` all synapses into a population share one exponent (the largest), which
shows what the per-synapse exponents buy.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np

from neurodeploy.errors import QuantizationError
from neurodeploy.spiking.loihi import LAVA, LoihiNumerics
from neurodeploy.spiking.plan import FixedNeuron, FixedSynapse, NeuronLayer, SpikingPlan, SynapseLayer

GRADED_MESSAGE_BITS = 16
"""Bits of a graded message into a synapse (graded input or sigma-delta sources), at most the chip's."""


@dataclass
class SynapseReport:
    name: str
    weight_exp: int
    mantissa_max: int
    zeroed: int  # nonzero float weights that became 0
    clipped: int  # weights beyond the mantissa range
    max_abs_err: float  # in float weight units
    rel_rms_err: float  # rms error / rms weight


@dataclass
class NeuronReport:
    name: str
    scale: float
    limited_by: str
    vth_mant: int
    vth_rel_err: float
    du_fixed: int
    dv_fixed: int
    du_err: float
    dv_err: float
    bias_exp: int
    bias_max_abs_err: float
    synapses: list[SynapseReport] = field(default_factory=list)


@dataclass
class Quantized:
    plan: SpikingPlan
    report: list[NeuronReport]

    def as_dict(self) -> list[dict]:
        from dataclasses import asdict

        return [asdict(r) for r in self.report]


def _is_mixed(w: np.ndarray) -> bool:
    return bool(w.min(initial=0) < 0 < w.max(initial=0))


def _mantissa_limit(w: np.ndarray, nx: LoihiNumerics) -> float:
    """Largest positive mantissa usable for these weights: 254 mixed sign (even), 255 one-signed at 8 bits."""
    return float(nx.weight_range(_is_mixed(w))[1])


def quantize_weights(w_scaled: np.ndarray, exp: int, nx: LoihiNumerics = LAVA) -> tuple[np.ndarray, int]:
    """Integer mantissas for ``w_scaled / 2**exp`` on ``nx``'s grid; returns (mantissas, clipped count)."""
    mixed = _is_mixed(w_scaled)
    step = nx.weight_step(mixed)
    m = step * np.round(w_scaled / 2.0 ** exp / step)
    lo, hi = nx.weight_range(mixed)
    clipped = int(np.count_nonzero((m < lo) | (m > hi)))
    return np.clip(m, lo, hi).astype(np.int64), clipped


def _weight_exp(w_scaled: np.ndarray, nx: LoihiNumerics) -> int:
    peak = float(np.abs(w_scaled).max(initial=0))
    if peak == 0:
        return 0
    e = math.ceil(math.log2(peak / _mantissa_limit(w_scaled, nx)))
    return int(np.clip(e, nx.weight_exp_min, nx.weight_exp_max))


def _input_bound(plan: SpikingPlan, syns: list[SynapseLayer]) -> float:
    """Largest current one step can deliver (all inputs active, graded input counted at its max 1)."""
    total = 0.0
    for syn in syns:
        if syn.kind == "dense":
            total += float(np.abs(syn.weights).sum(axis=1).max(initial=0))
        else:
            total += float(np.abs(syn.weights).sum(axis=(1, 2, 3)).max(initial=0))
    return total


def _scale(layer: NeuronLayer, syns: list[SynapseLayer], a_max: float, nx: LoihiNumerics) -> tuple[float, str]:
    limits = {}
    if layer.model == "lif" and layer.vth > 0:
        limits["threshold"] = nx.vth_max / layer.vth
    bias_peak = float(np.abs(layer.bias).max(initial=0))
    if bias_peak > 0:
        limits["bias"] = nx.bias_mant_max * 2 ** nx.bias_exp_max / (bias_peak * 2 ** nx.act_shift)
    for syn in syns:
        peak = float(np.abs(syn.weights).max(initial=0))
        if peak > 0:
            top_exp = 0 if syn.kind == "conv" else nx.weight_exp_max
            limits[f"weights of {syn.name}"] = _mantissa_limit(syn.weights, nx) * 2 ** top_exp / peak
    if a_max > 0:
        u_peak = a_max / max(layer.du, 1.0 / nx.decay_one)
        limits[f"{nx.state_bits}-bit current"] = nx.state_max / (u_peak * 2 ** nx.act_shift)
    if not limits:
        return 1.0, "nothing (no weights, bias or threshold)"
    which = min(limits, key=limits.get)
    return limits[which], which


def _decay(value: float, offset: int, nx: LoihiNumerics) -> int:
    return int(np.clip(round(value * nx.decay_one) - offset, 0, nx.decay_one - 1))


def _neuron(layer: NeuronLayer, scale: float, limited_by: str, nx: LoihiNumerics) -> tuple[FixedNeuron, NeuronReport]:
    """The population's integers (threshold, decays, bias mantissa and exponent) and their report."""
    vth_mant = nx.vth_max if layer.model == "li" else int(round(layer.vth * scale))
    bias_fixed = layer.bias * scale * 2 ** nx.act_shift
    peak = float(np.abs(bias_fixed).max(initial=0))
    bias_exp = 0 if peak == 0 else int(np.clip(math.ceil(math.log2(max(peak / nx.bias_mant_max, 1))), 0,
                                               nx.bias_exp_max))
    bias_mant = np.clip(np.round(bias_fixed / 2 ** bias_exp), -nx.bias_mant_max, nx.bias_mant_max).astype(np.int64)
    du_f, dv_f = _decay(layer.du, 1, nx), _decay(layer.dv, 0, nx)
    one = nx.decay_one
    report = NeuronReport(
        name=layer.name, scale=scale, limited_by=limited_by, vth_mant=vth_mant,
        vth_rel_err=0.0 if layer.model == "li" else abs(vth_mant / scale - layer.vth) / layer.vth,
        du_fixed=du_f, dv_fixed=dv_f, du_err=abs((du_f + 1) / one - layer.du), dv_err=abs(dv_f / one - layer.dv),
        bias_exp=bias_exp, bias_max_abs_err=float(np.abs(bias_mant * 2.0 ** bias_exp / (scale * 2 ** nx.act_shift)
                                                         - layer.bias).max(initial=0)))
    return FixedNeuron(du=du_f, dv=dv_f, vth=vth_mant, bias_mant=bias_mant, bias_exp=bias_exp), report


def _synapse(syn: SynapseLayer, scale: float, exp: int, graded: bool,
             nx: LoihiNumerics) -> tuple[FixedSynapse, SynapseReport]:
    """The synapse's mantissas on the chip's weight grid at exponent ``exp``, and their report."""
    mant, clipped = quantize_weights(syn.weights * scale, exp, nx)
    err = mant * 2.0 ** exp / scale - syn.weights
    rms = float(np.sqrt(np.mean(syn.weights ** 2))) or 1.0
    report = SynapseReport(
        name=syn.name, weight_exp=exp, mantissa_max=int(np.abs(mant).max(initial=0)),
        zeroed=int(np.count_nonzero((mant == 0) & (syn.weights != 0))), clipped=clipped,
        max_abs_err=float(np.abs(err).max(initial=0)), rel_rms_err=float(np.sqrt(np.mean(err ** 2)) / rms))
    bits = min(GRADED_MESSAGE_BITS, nx.graded_spike_bits) if graded else 0
    return FixedSynapse(weights=mant, weight_exp=exp, num_weight_bits=nx.weight_bits, num_message_bits=bits), report


def _population_problems(layer: NeuronLayer, vth_mant: int, scale: float, graded: list[str],
                         nx: LoihiNumerics) -> list[str]:
    problems = []
    if layer.model == "lif" and vth_mant < 1:
        problems.append(f"{layer.name}: threshold {layer.vth:g} rounds to 0 at scale {scale:g}")
    if graded and nx.graded_spike_bits == 0:
        problems.append(f"{layer.name}: synapses {graded} carry graded values, but this chip sends binary spikes "
                        "only (graded_spike_bits = 0); feed binary spikes or target Loihi 2")
    return problems


def quantize(plan: SpikingPlan, per_synapse_exponents: bool = True, numerics: LoihiNumerics = LAVA) -> Quantized:
    """Fixed-point parameters for every LIF population of ``plan`` and its incoming synapses, in the bit
    widths of ``numerics`` (:func:`neurodeploy.spiking.loihi.numerics_of` a profile; Loihi 2's by default)."""
    out = copy.deepcopy(plan)
    reports, problems = [], []
    for layer in out.neurons:
        if layer.model not in ("lif", "li"):
            problems.append(f"{layer.name}: {layer.model} populations come with their own integers (netx)")
            continue
        syns = out.incoming(layer.name)
        scale, limited_by = _scale(layer, syns, _input_bound(out, syns), numerics)
        fixed, report = _neuron(layer, scale, limited_by, numerics)
        exps = {s.name: (0 if s.kind == "conv" else _weight_exp(s.weights * scale, numerics)) for s in syns}
        if not per_synapse_exponents and exps:
            exps = dict.fromkeys(exps, max(exps.values()))
        graded = [s.name for s in syns if s.graded or (s.source == "input" and out.graded_input)]
        problems += _population_problems(layer, fixed.vth, scale, graded, numerics)
        for syn in syns:
            out.fixed[syn.name], syn_report = _synapse(syn, scale, exps[syn.name], syn.name in graded, numerics)
            report.synapses.append(syn_report)
        out.fixed[layer.name] = fixed
        reports.append(report)
    if problems:
        raise QuantizationError(problems, "cannot quantize the plan for Loihi")
    return Quantized(out, reports)


def quantize_for(plan: SpikingPlan, profile: str = "loihi2", per_synapse_exponents: bool = True) -> Quantized:
    """:func:`quantize` in the bit widths of the neuromorphic profile ``profile`` (a name or a .json path)."""
    from neurodeploy.cost.profiles import load_profile
    from neurodeploy.spiking.loihi import numerics_of

    return quantize(plan, per_synapse_exponents, numerics_of(load_profile(profile)))
