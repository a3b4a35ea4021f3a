"""Loihi 2 fixed point for a float :class:`SpikingPlan` (Lava ``fixed_pt`` units), with a report.

Lava's bit-accurate LIF (REFERENCE.md section 2) keeps ``u`` and ``v`` as integers in units of
2**-6 of the weight scale: one float unit of current or voltage of a population is ``64 * S`` integer
units, ``S`` being that population's scale. Per population:

    vth_mant   = round(vth * S)                               (17 bits)
    bias       = bias_mant << bias_exp ~= bias * S * 64       (13-bit mantissa, 3-bit exponent)
    du_fixed   = round(du * 4096) - 1, dv_fixed = round(dv * 4096)   (12 bits; Lava decays u by 4096-(du+1))

and per incoming synapse, its own exponent ``e`` (the "per-layer exponent")::

    weights * 2**e ~= W * S    (8-bit mantissas; mixed-sign mantissas are even, Lava truncates the low bit)

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

from neurodeploy.spiking_plan import FixedNeuron, FixedSynapse, NeuronLayer, SpikingPlan, SpikingPlanError, SynapseLayer

VTH_MAX = (1 << 17) - 1
BIAS_MANT_MAX = (1 << 12) - 1
BIAS_EXP_MAX = 7
STATE_MAX = (1 << 23) - 1
WEIGHT_EXP_RANGE = (-8, 7)
ACT_SHIFT = 6


class QuantizationError(SpikingPlanError):
    """A population cannot be represented in Loihi's integer ranges; the message lists each one."""


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


def _mantissa_limit(w: np.ndarray) -> float:
    """Largest |mantissa| usable for these weights: mixed sign -> 254 (even), one sign -> 255."""
    return 254.0 if (w.min(initial=0) < 0 < w.max(initial=0)) else 255.0


def quantize_weights(w_scaled: np.ndarray, exp: int) -> tuple[np.ndarray, int]:
    """Integer mantissas for ``w_scaled / 2**exp``; returns (mantissas, clipped count)."""
    mixed = w_scaled.min(initial=0) < 0 < w_scaled.max(initial=0)
    x = w_scaled / 2.0 ** exp
    m = 2 * np.round(x / 2) if mixed else np.round(x)
    lo, hi = (-256, 254) if mixed else (-255, 255)
    clipped = int(np.count_nonzero((m < lo) | (m > hi)))
    return np.clip(m, lo, hi).astype(np.int64), clipped


def _weight_exp(w_scaled: np.ndarray) -> int:
    peak = float(np.abs(w_scaled).max(initial=0))
    if peak == 0:
        return 0
    e = math.ceil(math.log2(peak / _mantissa_limit(w_scaled)))
    return int(np.clip(e, *WEIGHT_EXP_RANGE))


def _input_bound(plan: SpikingPlan, syns: list[SynapseLayer]) -> float:
    """Largest current one step can deliver (all inputs active, graded input counted at its max 1)."""
    total = 0.0
    for syn in syns:
        if syn.kind == "dense":
            total += float(np.abs(syn.weights).sum(axis=1).max(initial=0))
        else:
            total += float(np.abs(syn.weights).sum(axis=(1, 2, 3)).max(initial=0))
    return total


def _scale(layer: NeuronLayer, syns: list[SynapseLayer], a_max: float) -> tuple[float, str]:
    limits = {}
    if layer.model == "lif" and layer.vth > 0:
        limits["threshold"] = VTH_MAX / layer.vth
    bias_peak = float(np.abs(layer.bias).max(initial=0))
    if bias_peak > 0:
        limits["bias"] = BIAS_MANT_MAX * 2 ** BIAS_EXP_MAX / (bias_peak * 2 ** ACT_SHIFT)
    for syn in syns:
        peak = float(np.abs(syn.weights).max(initial=0))
        if peak > 0:
            top_exp = 0 if syn.kind == "conv" else WEIGHT_EXP_RANGE[1]
            limits[f"weights of {syn.name}"] = _mantissa_limit(syn.weights) * 2 ** top_exp / peak
    if a_max > 0:
        u_peak = a_max / max(layer.du, 1.0 / 4096)
        limits["24-bit current"] = STATE_MAX / (u_peak * 2 ** ACT_SHIFT)
    if not limits:
        return 1.0, "nothing (no weights, bias or threshold)"
    which = min(limits, key=limits.get)
    return limits[which], which


def _decay(value: float, offset: int) -> int:
    return int(np.clip(round(value * 4096) - offset, 0, 4095))


def quantize(plan: SpikingPlan, per_synapse_exponents: bool = True) -> Quantized:
    """Fixed-point parameters for every LIF population of ``plan`` and its incoming synapses."""
    out = copy.deepcopy(plan)
    reports, problems = [], []
    for layer in out.neurons:
        if layer.model not in ("lif", "li"):
            problems.append(f"{layer.name}: {layer.model} populations come with their own integers (netx)")
            continue
        syns = out.incoming(layer.name)
        scale, limited_by = _scale(layer, syns, _input_bound(out, syns))
        vth_mant = VTH_MAX if layer.model == "li" else int(round(layer.vth * scale))
        if layer.model == "lif" and vth_mant < 1:
            problems.append(f"{layer.name}: threshold {layer.vth:g} rounds to 0 at scale {scale:g}")
        bias_fixed = layer.bias * scale * 2 ** ACT_SHIFT
        peak = float(np.abs(bias_fixed).max(initial=0))
        bias_exp = 0 if peak == 0 else int(np.clip(math.ceil(math.log2(max(peak / BIAS_MANT_MAX, 1))), 0, BIAS_EXP_MAX))
        bias_mant = np.clip(np.round(bias_fixed / 2 ** bias_exp), -BIAS_MANT_MAX, BIAS_MANT_MAX).astype(np.int64)
        du_f, dv_f = _decay(layer.du, 1), _decay(layer.dv, 0)
        report = NeuronReport(
            name=layer.name, scale=scale, limited_by=limited_by, vth_mant=vth_mant,
            vth_rel_err=0.0 if layer.model == "li" else abs(vth_mant / scale - layer.vth) / layer.vth,
            du_fixed=du_f, dv_fixed=dv_f, du_err=abs((du_f + 1) / 4096 - layer.du), dv_err=abs(dv_f / 4096 - layer.dv),
            bias_exp=bias_exp,
            bias_max_abs_err=float(np.abs(bias_mant * 2.0 ** bias_exp / (scale * 64) - layer.bias).max(initial=0)))
        exps = {s.name: (0 if s.kind == "conv" else _weight_exp(s.weights * scale)) for s in syns}
        if not per_synapse_exponents and exps:
            exps = dict.fromkeys(exps, max(exps.values()))
        for syn in syns:
            mant, clipped = quantize_weights(syn.weights * scale, exps[syn.name])
            effective = mant * 2.0 ** exps[syn.name] / scale
            err = effective - syn.weights
            rms = float(np.sqrt(np.mean(syn.weights ** 2))) or 1.0
            report.synapses.append(SynapseReport(
                name=syn.name, weight_exp=exps[syn.name], mantissa_max=int(np.abs(mant).max(initial=0)),
                zeroed=int(np.count_nonzero((mant == 0) & (syn.weights != 0))), clipped=clipped,
                max_abs_err=float(np.abs(err).max(initial=0)), rel_rms_err=float(np.sqrt(np.mean(err ** 2)) / rms)))
            graded = syn.graded or (syn.source == "input" and out.graded_input)
            out.fixed[syn.name] = FixedSynapse(weights=mant, weight_exp=exps[syn.name], num_weight_bits=8,
                                               num_message_bits=16 if graded else 0)
        out.fixed[layer.name] = FixedNeuron(du=du_f, dv=dv_f, vth=vth_mant, bias_mant=bias_mant, bias_exp=bias_exp)
        reports.append(report)
    if problems:
        raise QuantizationError(problems, "cannot quantize the plan for Loihi")
    return Quantized(out, reports)
