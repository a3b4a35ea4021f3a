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
largest exponent, and a bound on ``|u|`` (24-bit, wraps). A conv synapse's exponent is never negative:
Lava 0.10's Python ``Conv`` fixed model has a ``weight_exp`` but ignores it, so the runtime hands it the
mantissas shifted left, ``w 2**e`` (:func:`neurodeploy.spiking.loihi.lava_conv_weights`: what the chip
computes for ``e >= 0``, exactly), as the emulator does. The largest ``S`` gives the smallest rounding error.
With ``per_synapse_exponents=False`` all synapses into a population share one exponent (the largest),
which shows what the per-synapse exponents buy.

Options (each reported per layer):

- ``precision="double"`` spends synapses for bits: each dense or conv synapse whose weight grid is coarser
  than one unit of ``a_in`` becomes two synapse layers between the same populations. The first holds the grid
  point at or below ``W S`` at exponent ``e`` (8-bit mantissas, even when mixed-sign); the second,
  one-signed (excitatory: 8 full bits), holds the rest at the smallest exponent ``e_lo >= 0`` that fits
  it, so that both sums stay exact integers (Lava floors a sum shifted right)::

      hi = step * floor(W S / (step 2**e)),   lo = round((W S - hi 2**e) / 2**e_lo),   lo in [0, 255]

  The effective weight ``hi 2**e + lo 2**e_lo`` is within half a unit of ``a_in`` of ``W S`` (about 14
  bits), at no more than twice the synapses (a weight on the first grid needs no second synapse). On the
  chip the second layer shares the first one's axons (no extra fan-in). ``"single"``: one synapse per
  weight. ``"auto"`` (:func:`quantize_for`): ``double`` where the profile's cores hold it (no more cores
  than ``single``), else ``single``.
- ``grid`` pins each population's scale and each synapse's exponent (a bundle stores the grid it was
  compiled on, :attr:`Quantized.options`, so that every later run rebuilds exactly those integers
  rather than re-deriving them from the weights).
- ``peaks`` (calibration, :func:`calibration_peaks` of inputs run through the float model; for the
  populations it names): the bound on ``|u|`` is the largest ``|u|`` seen times :data:`CALIBRATION_MARGIN`
  instead of every input at once. A larger ``S`` is a finer grid (v may then reach Lava's 24-bit clip,
  which the emulator counts, as it counts wraps of u by inputs far beyond the calibration set).
  :func:`neurodeploy.compiler.calibration.calibrated` chooses per population whether to use its peak.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from neurodeploy.choices import PRECISIONS
from neurodeploy.errors import QuantizationError
from neurodeploy.spiking.loihi import LAVA, LoihiNumerics, is_mixed
from neurodeploy.spiking.plan import (FixedNeuron, FixedSynapse, NeuronLayer, SpikingPlan, SynapseLayer,
                                      copy_sharing_arrays)

GRADED_MESSAGE_BITS = 16
"""Bits of a graded message into a synapse (graded input or sigma-delta sources), at most the chip's."""

CALIBRATION_MARGIN = 2.0
"""Calibrated peaks of |u| and |v| are multiplied by this before they bound a population's scale."""
FINE_SUFFIX = ".fine"  # the name of the second synapse layer of precision "double"


@dataclass
class SynapseReport:
    name: str
    weight_exp: int
    mantissa_max: int
    zeroed: int  # nonzero float weights that became 0
    clipped: int  # weights beyond the mantissa range
    max_abs_err: float  # in float weight units
    rel_rms_err: float  # rms error / rms weight
    precision: str = "single"  # "double": a second synapse layer at fine_exp holds the rest
    fine_exp: int | None = None
    weights: int = 0  # nonzero weights of the model's layer
    synapses: int = 0  # synapses on the chip: nonzero mantissas, both layers for "double"


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
    calibrated: bool = False  # the scale's |u| bound comes from calibration peaks
    calibration_disagreement: dict[str, float] | None = None  # spikes vs float on the calibration inputs (compile)


@dataclass
class Quantized:
    plan: SpikingPlan
    report: list[NeuronReport]
    precision: str = "single"  # what was chosen ("auto" resolved)
    peaks: dict[str, dict[str, float]] | None = None  # the calibration peaks used, per population

    @property
    def options(self) -> dict:
        """What a later run needs to rebuild exactly these integers (the bundle's ``spiking.quantizer``)."""
        grid = {"scales": {r.name: r.scale for r in self.report},
                "exponents": {s.name: s.weight_exp for r in self.report for s in r.synapses}}
        return {"precision": self.precision, "peaks": self.peaks, "grid": grid}

    @property
    def synapse_ratio(self) -> float:
        """Synapses on the chip / nonzero weights of the model."""
        weights = sum(r.weights for n in self.report for r in n.synapses)
        return sum(r.synapses for n in self.report for r in n.synapses) / max(weights, 1)

    def as_dict(self) -> list[dict]:
        from dataclasses import asdict

        return [asdict(r) for r in self.report]


def _mantissa_limit(w: np.ndarray, nx: LoihiNumerics) -> float:
    """Largest positive mantissa usable for these weights: 254 mixed sign (even), 255 one-signed at 8 bits."""
    return float(nx.weight_range(is_mixed(w))[1])


def quantize_weights(w_scaled: np.ndarray, exp: int, nx: LoihiNumerics = LAVA) -> tuple[np.ndarray, int]:
    """Integer mantissas for ``w_scaled / 2**exp`` on ``nx``'s grid; returns (mantissas, clipped count)."""
    mixed = is_mixed(w_scaled)
    step = nx.weight_step(mixed)
    m = w_scaled / 2.0 ** exp  # step * round(w / 2**exp / step), in place: one temporary of the weights' size
    m /= step
    np.round(m, out=m)
    m *= step
    lo, hi = nx.weight_range(mixed)
    clipped = int(np.count_nonzero(m < lo)) + int(np.count_nonzero(m > hi))
    return np.clip(m, lo, hi, out=m).astype(np.int64), clipped


def _weight_exp(w_scaled: np.ndarray, nx: LoihiNumerics, conv: bool = False) -> int:
    """The smallest exponent whose mantissas hold ``w_scaled`` (a conv's: >= 0, the module docstring)."""
    peak = float(np.abs(w_scaled).max(initial=0))
    if peak == 0:
        return 0
    e = math.ceil(math.log2(peak / _mantissa_limit(w_scaled, nx)))
    return int(np.clip(e, 0 if conv else nx.weight_exp_min, nx.weight_exp_max))


def _input_bound(plan: SpikingPlan, syns: list[SynapseLayer]) -> float:
    """Largest current one step can deliver (all inputs active, graded input counted at its max 1)."""
    total = 0.0
    for syn in syns:
        if syn.kind == "dense":
            total += float(np.abs(syn.weights).sum(axis=1).max(initial=0))
        else:
            total += float(np.abs(syn.weights).sum(axis=(1, 2, 3)).max(initial=0))
    return total


def _scale(layer: NeuronLayer, syns: list[SynapseLayer], a_max: float, nx: LoihiNumerics,
           observed: dict[str, float] | None = None) -> tuple[float, str]:
    limits = {}
    if layer.model == "lif" and layer.vth > 0:
        limits["threshold"] = nx.vth_max / layer.vth
    bias_peak = float(np.abs(layer.bias).max(initial=0))
    if bias_peak > 0:
        limits["bias"] = nx.bias_mant_max * 2 ** nx.bias_exp_max / (bias_peak * 2 ** nx.act_shift)
    for syn in syns:
        peak = float(np.abs(syn.weights).max(initial=0))
        if peak > 0:
            limits[f"weights of {syn.name}"] = _mantissa_limit(syn.weights, nx) * 2 ** nx.weight_exp_max / peak
    if observed is not None and observed["u"] > 0:
        limits[f"{nx.state_bits}-bit current (calibrated)"] = \
            nx.state_max / (observed["u"] * CALIBRATION_MARGIN * 2 ** nx.act_shift)
    elif a_max > 0:
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
    return FixedNeuron(du=du_f, dv=dv_f, vth=vth_mant, bias_mant=bias_mant, bias_exp=bias_exp,
                       v_unit=scale * 2 ** nx.act_shift), report


def _synapse(syn: SynapseLayer, scale: float, exp: int, graded: bool,
             nx: LoihiNumerics) -> tuple[FixedSynapse, SynapseReport]:
    """The synapse's mantissas on the chip's weight grid at exponent ``exp``, and their report."""
    mant, clipped = quantize_weights(syn.weights * scale, exp, nx)
    bits = min(GRADED_MESSAGE_BITS, nx.graded_spike_bits) if graded else 0
    fixed = FixedSynapse(weights=mant, weight_exp=exp, num_weight_bits=nx.weight_bits, num_message_bits=bits)
    return fixed, _synapse_report(syn, scale, [fixed], clipped)


def _effective(parts: list[FixedSynapse]) -> np.ndarray:
    """``sum(mantissas 2**exp)`` over a synapse's layers: its weights in units of ``a_in``."""
    return sum(np.asarray(part.weights, dtype=np.float64) * 2.0 ** part.weight_exp for part in parts)


def effective_weights(plan: SpikingPlan, name: str) -> np.ndarray:
    """A quantized plan's weights of synapse ``name`` in units of ``a_in``, both layers for precision ``double``."""
    return _effective([plan.fixed[name]] + [plan.fixed[s.name] for s in plan.synapses if s.refines == name])


def _synapse_report(syn: SynapseLayer, scale: float, parts: list[FixedSynapse], clipped: int) -> SynapseReport:
    """Errors of the effective weights ``sum(mantissas 2**exp) / S`` against the model's, and the synapse count."""
    effective = _effective(parts)
    err = effective / scale - syn.weights
    rms = float(np.sqrt(np.mean(syn.weights ** 2))) or 1.0
    return SynapseReport(
        name=syn.name, weight_exp=parts[0].weight_exp, mantissa_max=int(np.abs(parts[0].weights).max(initial=0)),
        zeroed=int(np.count_nonzero((effective == 0) & (syn.weights != 0))), clipped=clipped,
        max_abs_err=float(np.abs(err).max(initial=0)), rel_rms_err=float(np.sqrt(np.mean(err ** 2)) / rms),
        precision="double" if len(parts) > 1 else "single",
        fine_exp=parts[1].weight_exp if len(parts) > 1 else None, weights=int(np.count_nonzero(syn.weights)),
        synapses=sum(int(np.count_nonzero(part.weights)) for part in parts))


def _fine_exponent(lsb: float, nx: LoihiNumerics) -> int:
    """The smallest exponent >= 0 at which a one-signed mantissa holds a rest below ``lsb``."""
    return max(0, math.ceil(math.log2(lsb / nx.weight_range(False)[1])))


def double_mantissas(ws: np.ndarray, e: int, nx: LoihiNumerics = LAVA) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Precision ``double`` of scaled weights ``ws = W S`` at exponent ``e`` (the module docstring): the coarse
    mantissas at ``e``, the fine ones and their exponent ``e_lo``; None where a second layer would add
    nothing (a grid already at one unit of ``a_in``)."""
    mixed = is_mixed(ws)
    step = nx.weight_step(mixed)
    lsb = step * 2.0 ** e
    e_lo = _fine_exponent(lsb, nx)
    if lsb <= 1 or e_lo >= e:
        return None
    low, high = nx.weight_range(mixed)
    coarse = np.clip(step * np.floor(ws / lsb + 1e-9), low, high).astype(np.int64)  # a weight on the grid stays on it
    rest = ws - coarse * 2.0 ** e
    fine_step, fine_high = nx.weight_step(False), nx.weight_range(False)[1]
    fine = np.clip(fine_step * np.round(rest / 2.0 ** e_lo / fine_step), 0, fine_high).astype(np.int64)
    return coarse, fine, e_lo


def _split(syn: SynapseLayer, scale: float, fixed: FixedSynapse, nx: LoihiNumerics
           ) -> tuple[FixedSynapse, SynapseLayer, FixedSynapse] | None:
    """Precision ``double`` for one dense or conv synapse: its coarse part, the second layer (float weights:
    the rest, so that the two sum to the model's) and that layer's mantissas; None where a second layer would
    add nothing (:func:`double_mantissas` says so)."""
    e = fixed.weight_exp
    parts = double_mantissas(syn.weights * scale, e, nx)
    if parts is None:
        return None
    coarse, fine, e_lo = parts
    coarse_w = coarse * 2.0 ** e / scale
    layer = replace(syn, name=syn.name + FINE_SUFFIX, weights=syn.weights - coarse_w, refines=syn.name)
    syn.weights = coarse_w  # the two layers' float weights sum to the model's
    return replace(fixed, weights=coarse), layer, replace(fixed, weights=fine, weight_exp=e_lo)


def _population_problems(layer: NeuronLayer, vth_mant: int, scale: float, graded: list[str],
                         nx: LoihiNumerics) -> list[str]:
    problems = []
    if layer.model == "lif" and vth_mant < 1:
        problems.append(f"{layer.name}: threshold {layer.vth:g} rounds to 0 at scale {scale:g}")
    if graded and nx.graded_spike_bits == 0:
        problems.append(f"{layer.name}: synapses {graded} carry graded values, but this chip sends binary spikes "
                        "only (graded_spike_bits = 0); feed binary spikes or target Loihi 2")
    return problems


def quantize(plan: SpikingPlan, per_synapse_exponents: bool = True, numerics: LoihiNumerics = LAVA,
             precision: str = "single", peaks: dict[str, dict[str, float]] | None = None,
             grid: dict | None = None) -> Quantized:
    """Fixed-point parameters for every LIF population of ``plan`` and its incoming synapses, in the bit
    widths of ``numerics`` (:func:`neurodeploy.spiking.loihi.numerics_of` a profile; Loihi 2's by default).
    ``precision`` (``single`` or ``double``), ``peaks`` (calibration) and ``grid`` (pinned scales and
    exponents) as the module docstring says."""
    if precision not in PRECISIONS[:2]:
        raise QuantizationError([f"precision {precision!r}: one of {list(PRECISIONS[:2])} (auto: quantize_for)"],
                                "cannot quantize the plan")
    return _quantize(plan, per_synapse_exponents, numerics, (precision,), peaks, grid)[precision]


def _quantize(plan: SpikingPlan, per_synapse_exponents: bool, nx: LoihiNumerics, precisions: tuple[str, ...],
              peaks: dict | None, grid: dict | None) -> dict[str, Quantized]:
    """:func:`quantize` in each of ``precisions``, the scales, exponents and single mantissas computed once
    (precision ``double`` refines the single mantissas: its first layer is derived from them)."""
    outs = {p: copy_sharing_arrays(plan, plan.layers) for p in precisions}
    reports: dict[str, list[NeuronReport]] = {p: [] for p in precisions}
    problems = []
    for layer in plan.neurons:
        if layer.model not in ("lif", "li"):
            problems.append(f"{layer.name}: {layer.model} populations come with their own integers (netx)")
            continue
        syns = plan.incoming(layer.name)
        peak = None if peaks is None else peaks.get(layer.name)
        scale, limited_by = _scale(layer, syns, _input_bound(plan, syns), nx, peak)
        pinned = (grid or {}).get("scales", {})
        if layer.name in pinned:
            scale, limited_by = float(pinned[layer.name]), f"the grid it was compiled on ({limited_by} now)"
        fixed, report = _neuron(layer, scale, limited_by, nx)
        report.calibrated = peak is not None
        exps = {s.name: _weight_exp(s.weights * scale, nx, s.kind == "conv") for s in syns}
        if not per_synapse_exponents and exps:
            exps = dict.fromkeys(exps, max(exps.values()))
        exps.update({k: int(v) for k, v in (grid or {}).get("exponents", {}).items() if k in exps})
        graded = [s.name for s in syns if s.graded or (s.source == "input" and plan.graded_input)]
        problems += _population_problems(layer, fixed.vth, scale, graded, nx)
        singles = {s.name: _synapse(s, scale, exps[s.name], s.name in graded, nx) for s in syns}
        for precision, out in outs.items():
            own = replace(report, synapses=[_quantize_synapse(out, out.layer(s.name), scale, singles[s.name], nx,
                                                              precision) for s in syns])
            out.fixed[layer.name] = fixed
            reports[precision].append(own)
    if problems:
        raise QuantizationError(problems, "cannot quantize the plan for Loihi")
    return {p: Quantized(outs[p], reports[p], p, peaks) for p in precisions}


def _quantize_synapse(out: SpikingPlan, syn: SynapseLayer, scale: float, single: tuple[FixedSynapse, SynapseReport],
                      nx: LoihiNumerics, precision: str) -> SynapseReport:
    """``out.fixed[syn]`` from the ``single`` mantissas (and, for ``double``, the second layer, inserted after
    ``syn``); the report."""
    fixed, report = single
    model_syn = replace(syn)  # the model's weights: the split rebinds syn's to the coarse part
    out.fixed[syn.name] = replace(fixed)
    split = _split(syn, scale, fixed, nx) if precision == "double" else None
    if split is None:
        return report
    out.fixed[syn.name], layer, out.fixed[layer.name] = split
    out.layers.insert(out.layers.index(syn) + 1, layer)
    return _synapse_report(model_syn, scale, [out.fixed[syn.name], out.fixed[layer.name]], report.clipped)


def dequantized(plan: SpikingPlan, q: Quantized) -> SpikingPlan:
    """``plan`` (float) with every weight replaced by its fixed-point value ``sum(mantissas 2**exp) / S``
    (both layers for precision ``double``): the float model with only the weights quantized, the middle
    stage between float and fixed point."""
    out, scales = copy_sharing_arrays(plan, plan.layers), {r.name: r.scale for r in q.report}
    for syn in out.synapses:
        syn.weights = effective_weights(q.plan, syn.name) / scales[syn.target]
    return out


def calibration_peaks(plan: SpikingPlan, x: np.ndarray) -> dict[str, dict[str, float]]:
    """The largest ``|u|`` and ``|v|`` of every population of the float model on inputs x (B, T, *input_shape)."""
    from neurodeploy.spiking.float_simulation import simulate_batch

    peaks: dict[str, dict[str, float]] = {}
    simulate_batch(plan, np.asarray(x, dtype=np.float64), peaks=peaks)
    return peaks


def quantize_for(plan: SpikingPlan, profile: str = "loihi2", per_synapse_exponents: bool = True,
                 precision: str = "auto", calibration: np.ndarray | None = None,
                 peaks: dict[str, dict[str, float]] | None = None, grid: dict | None = None) -> Quantized:
    """:func:`quantize` in the bit widths of the neuromorphic profile ``profile`` (a name or a .json path).
    ``precision="auto"``: ``double`` where it needs no more cores on ``profile`` than ``single``.
    ``calibration`` (inputs (B, T, *input_shape)) gives the ``peaks``; ``grid`` pins the scales and exponents
    (a bundle's ``spiking.quantizer`` holds all three: ``quantize_for(plan, profile, **quantizer)``)."""
    from neurodeploy.profiles import load_profile
    from neurodeploy.spiking.loihi import numerics_of
    from neurodeploy.spiking.resources import map_resources

    if calibration is not None:
        peaks = calibration_peaks(plan, calibration)
    prof = load_profile(profile)
    nx = numerics_of(prof)
    if precision != "auto":
        return quantize(plan, per_synapse_exponents, nx, precision, peaks, grid)
    both = _quantize(plan, per_synapse_exponents, nx, ("single", "double"), peaks, grid)
    single, double = both["single"], both["double"]
    fits = map_resources(double.plan, prof).cores <= map_resources(single.plan, prof).cores
    return double if fits else single
