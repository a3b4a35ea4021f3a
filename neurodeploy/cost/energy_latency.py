"""Energy and latency per inference: neuromorphic events, the cut transfer, the GPU, and an all-GPU baseline.

Every figure comes from a hardware profile (``hw_profiles/``, each with its source and label); every
count from the run (spikes, synaptic operations) or the exported graph (MACs, FLOPs, bytes, kernels).

Neuromorphic (per sample, T steps)::

    E_nm  = dense synops * E_synop + conv synops * E_synop_conv + neuron_updates * E_neuron
            + sum_p spikes_p * (E_spike + m_p * E_message + hops_p * E_hop) + P_static * chips * t_nm
    t_nm  = T * (max over populations p of the work of one of its cores in one step + t_barrier)
    work_p = [dense synops_p * t_synop + conv synops_p * t_synop_conv + spikes_p * (t_spike + m_p * t_message)]
             / (T * cores_p) + ceil(n_p / cores_p) * t_neuron

``synops`` are the effective synaptic operations (counted at their target population; a convolution's
priced apart where the profile does), ``neuron_updates`` = n * T per population, ``m_p`` the mean number of
destination cores of one of p's spikes (one message each, from the core mapping,
:mod:`neurodeploy.spiking.resources`), ``hops_p`` the mean Manhattan distance on the core mesh (cores placed
in order, row by row, ``ceil(sqrt(cores_per_chip))`` wide) from p's cores to the cores of the populations it
feeds. A core's work is spread evenly over its step (the busiest core of a population is its mean one); the
model leaves out host I/O (a chip that waits on input from the host runs slower than this) and the mesh's
own routing time (spikes cross it while the cores work).

Host input (not in the total; flagged in ``notes`` when it exceeds ``t_nm``, a run the chip would spend
waiting on its input, as lava-dl's PilotNet SDNN benchmark is): a frame held as the input layer's bias is
written once per sample as 16-bit words, spike inputs cross as 32-bit events, over the profile's link::

    t_in = link latency + input bits / bandwidth

Transfer: every cut spike crosses as a 32-bit address event; per window one link latency::

    bytes = 4 * cut_spikes;  t_tr = windows * latency + 8 bytes / bandwidth;  E_tr = 8 bytes * E_bit

GPU (roofline, batch 1: transformer and Mamba blocks at batch 1 are memory- and launch-bound, 4-20 us a launch)::

    t_gpu = max(FLOPs / (eta * peak), bytes / (eta * bandwidth)) + kernels * t_launch
    E_gpu = max(FLOPs * P_tdp / peak, bytes * P_tdp / bandwidth)      (energy per FLOP or byte at full
            throughput, e.g. 0.71 pJ/FLOP on the H100: a lower bound; ``P_tdp * t_gpu`` is reported as the
            upper bound, since batch-1 kernels are launch-bound and the GPU idles between them)

with FLOPs, bytes (weights once + every activation written) and kernels counted from the ONNX graph.
All-GPU baseline: the spiking layers run densely on the GPU too, per step one matmul (2 FLOPs per
synapse pair) and one neuron update kernel (4 FLOPs per neuron), weights re-read every step.
45 nm tier (the Spikformer convention): ``E = E_AC * effective SOPs + E_MAC * dense-part MACs``.
"""
from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from neurodeploy.profiles import GpuProfile, NeuromorphicProfile, ReferenceProfile, load_profile
from neurodeploy.errors import ProfileError
from neurodeploy.spiking.plan import SpikingPlan
from neurodeploy.spiking.resources import ResourceMap

BYTES_PER_EVENT = 4
FLOPS_PER_NEURON_UPDATE = 4  # two decays, one add, one compare


@dataclass
class Counts:
    """What one sample does, averaged over the samples of a run."""

    num_steps: int
    synops: dict[str, float]  # target population -> effective synaptic operations (bias lines included)
    dense_synops: float  # every pre x post pair, every step (NeuroBench "Dense")
    spikes: dict[str, float]  # population -> spikes emitted
    neurons: dict[str, int]
    cut_spikes: float
    windows: int
    dense_flops: float = 0.0
    dense_macs: float = 0.0
    dense_bytes: float = 0.0
    dense_kernels: float = 0.0
    synapse_weights: float = 0.0  # stored weights of the spiking part (for the all-GPU baseline)
    conv_synops: dict[str, float] = field(default_factory=dict)  # target population -> those of convolutions
    input_bits: float = 0.0  # what the host sends the chip per sample (module docstring: host input)
    neurobench_synops: float = 0.0  # effective SOPs as NeuroBench counts them (bias lines excluded)


@dataclass
class DeviceCost:
    energy_j: dict[str, float]
    latency_s: dict[str, float]
    terms_j: dict[str, float]
    baseline_gpu_only: dict[str, float]
    tiers_j: dict[str, float]
    profiles: dict[str, str]
    assumptions: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _v(figure) -> float:
    return float(figure.value)


def _or(figure, fallback=None) -> float:
    """An optional figure's value: ``fallback``'s where the profile has none (0 without a fallback)."""
    chosen = figure if figure is not None else fallback
    return 0.0 if chosen is None else _v(chosen)


def _require(profile: NeuromorphicProfile) -> None:
    missing = [s for s in ("energy", "timing", "link") if getattr(profile, s) is None]
    if missing:
        raise ProfileError(f"profile {profile.name!r} has no {', '.join(missing)} section(s): the energy and "
                           "latency model needs them (see hw_profiles/loihi2.json)")


def mesh_hops(plan: SpikingPlan, resources: ResourceMap) -> dict[str, float]:
    """Mean hops from each population's cores to the cores of the populations it feeds."""
    width = math.ceil(math.sqrt(resources.cores_per_chip))
    cores, start = {}, 0
    for pop in resources.populations:
        cores[pop.name] = [((start + i) % width, (start + i) // width) for i in range(pop.cores)]
        start += pop.cores
    hops = {}
    for pop in resources.populations:
        targets = {s.target for s in plan.synapses if s.source == pop.name and s.target != pop.name}
        pairs = [abs(a[0] - b[0]) + abs(a[1] - b[1]) for t in targets for a in cores[pop.name] for b in cores[t]]
        hops[pop.name] = float(np.mean(pairs)) if pairs else 0.0
    return hops


def updated_fraction(profile: NeuromorphicProfile) -> float:
    """Compartments updated per population per step, as a fraction (the profile's stated assumption; 1 when
    a user profile states none: every compartment, every step)."""
    figure = profile.energy.neuron_updates_per_step
    return 1.0 if figure is None else _v(figure)


def neuromorphic_cost(plan: SpikingPlan, resources: ResourceMap, counts: Counts,
                      profile: NeuromorphicProfile) -> tuple[dict[str, float], float, float]:
    """(energy terms, latency, transfer energy+latency inputs) of the spiking part."""
    _require(profile)
    e, t = profile.energy, profile.timing
    hops = mesh_hops(plan, resources)
    steps = counts.num_steps
    conv, dense = counts.conv_synops, {p: n - counts.conv_synops.get(p, 0.0) for p, n in counts.synops.items()}
    messages = {p.name: p.messages_per_spike for p in resources.populations}
    terms = {
        "synops": sum(dense.values()) * _v(e.synop_j) + sum(conv.values()) * _or(e.synop_conv_j, e.synop_j),
        "neuron_updates": sum(n * steps for n in counts.neurons.values()) * updated_fraction(profile)
        * _v(e.neuron_update_j),
        "spikes": sum(counts.spikes[p] * (_v(e.spike_j) + messages.get(p, 0.0) * _or(e.message_j)
                                          + hops[p] * _v(e.hop_j)) for p in counts.spikes),
    }

    def work_s(p) -> float:
        events = dense.get(p.name, 0.0) * _v(t.synop_s) + conv.get(p.name, 0.0) * _or(t.synop_conv_s, t.synop_s) \
            + counts.spikes.get(p.name, 0.0) * (_or(t.spike_s) + p.messages_per_spike * _or(t.message_s))
        return events / (steps * p.cores) + math.ceil(p.neurons / p.cores) * _v(t.neuron_update_s)

    busiest = max(work_s(p) for p in resources.populations)
    latency = steps * (busiest + _v(t.barrier_s))
    terms["static"] = _v(e.static_w) * resources.chips * latency
    return terms, latency, sum(hops.values())


def roofline(flops: float, bytes_moved: float, kernels: float, gpu: GpuProfile) -> float:
    """Latency in seconds."""
    c = gpu.compute
    eta = _v(c.efficiency)
    return max(flops / (eta * _v(c.peak_flops)), bytes_moved / (eta * _v(c.memory_bw_bps))) + kernels * _v(c.launch_s)


def gpu_energy(flops: float, bytes_moved: float, gpu: GpuProfile) -> float:
    """Joules at the datasheet's energy per FLOP or per byte (TDP / peak), whichever bounds."""
    c = gpu.compute
    return max(flops * _v(c.tdp_w) / _v(c.peak_flops), bytes_moved * _v(c.tdp_w) / _v(c.memory_bw_bps))


def estimate(plan: SpikingPlan, resources: ResourceMap, counts: Counts, loihi: str = "loihi2", gpu: str = "h100",
             reference: str = "cmos45nm") -> DeviceCost:
    """Energy and latency per sample on ``loihi`` + ``gpu``, the all-GPU baseline, and the 45 nm tier."""
    nm, gp = load_profile(loihi, "neuromorphic"), load_profile(gpu, "gpu")
    ref: ReferenceProfile = load_profile(reference, "reference")
    terms, t_nm, _ = neuromorphic_cost(plan, resources, counts, nm)
    link = nm.link
    bits = 8 * BYTES_PER_EVENT * counts.cut_spikes
    t_tr = counts.windows * _v(link.latency_s) + bits / _v(link.bandwidth_bps)
    e_tr = bits * _v(link.energy_j_per_bit)
    t_gpu = roofline(counts.dense_flops, counts.dense_bytes, counts.dense_kernels, gp) if counts.dense_kernels else 0.0
    e_gpu = gpu_energy(counts.dense_flops, counts.dense_bytes, gp)
    e_nm = sum(terms.values())
    t_in = _v(link.latency_s) + counts.input_bits / _v(link.bandwidth_bps)
    notes = [f"input-bound: the host's input takes {t_in:.3g} s per sample over the link, the chip's steps "
             f"{t_nm:.3g} s; the latency leaves host I/O out"] if t_in > t_nm else []
    steps, n_total = counts.num_steps, sum(counts.neurons.values())
    snn_flops = 2 * counts.dense_synops + FLOPS_PER_NEURON_UPDATE * n_total * steps
    snn_bytes = steps * 4.0 * (counts.synapse_weights + 2 * n_total)
    n_layers = len(counts.neurons)
    base_flops, base_bytes = snn_flops + counts.dense_flops, snn_bytes + counts.dense_bytes
    t_base = roofline(base_flops, base_bytes, 2 * n_layers * steps + counts.dense_kernels, gp)
    tiers = {
        "cmos45nm_sops": _v(ref.ops.ac_j) * counts.neurobench_synops + _v(ref.ops.mac_j) * counts.dense_macs,
        "loihi_plus_gpu": e_nm + e_tr + e_gpu,
        "gpu_only": gpu_energy(base_flops, base_bytes, gp),
    }
    return DeviceCost(
        energy_j={"neuromorphic": e_nm, "transfer": e_tr, "gpu": e_gpu, "total": e_nm + e_tr + e_gpu},
        latency_s={"neuromorphic": t_nm, "transfer": t_tr, "gpu": t_gpu, "total": t_nm + t_tr + t_gpu,
                   "host_input": t_in},
        terms_j={f"neuromorphic.{k}": v for k, v in terms.items()} | {"transfer": e_tr, "gpu": e_gpu,
                                                                       "gpu_upper_bound_at_tdp": _v(gp.compute.tdp_w) * t_gpu},
        baseline_gpu_only={"energy_j": tiers["gpu_only"], "latency_s": t_base,
                           "energy_upper_bound_at_tdp_j": _v(gp.compute.tdp_w) * t_base,
                           "ratio_vs_hybrid": tiers["gpu_only"] / (e_nm + e_tr + e_gpu) if e_nm + e_tr + e_gpu else None},
        tiers_j=tiers, profiles={"loihi": nm.name, "gpu": gp.name, "reference": ref.name},
        assumptions=assumptions(nm, gp, ref), notes=notes)


def estimate_gpu_only(counts: Counts, gpu: str = "h100", reference: str = "cmos45nm") -> DeviceCost:
    """A model that runs wholly on the GPU (Loihi cannot start it): the GPU's roofline on the whole model, which
    is also its all-GPU baseline (ratio 1); nothing on Loihi or the link."""
    gp, ref = load_profile(gpu, "gpu"), load_profile(reference, "reference")
    t_gpu = roofline(counts.dense_flops, counts.dense_bytes, counts.dense_kernels, gp)
    e_gpu = gpu_energy(counts.dense_flops, counts.dense_bytes, gp)
    tiers = {"cmos45nm_sops": _v(ref.ops.mac_j) * counts.dense_macs, "loihi_plus_gpu": e_gpu, "gpu_only": e_gpu}
    return DeviceCost(
        energy_j={"neuromorphic": 0.0, "transfer": 0.0, "gpu": e_gpu, "total": e_gpu},
        latency_s={"neuromorphic": 0.0, "transfer": 0.0, "gpu": t_gpu, "total": t_gpu, "host_input": 0.0},
        terms_j={"gpu": e_gpu, "gpu_upper_bound_at_tdp": _v(gp.compute.tdp_w) * t_gpu},
        baseline_gpu_only={"energy_j": e_gpu, "latency_s": t_gpu, "energy_upper_bound_at_tdp_j": _v(gp.compute.tdp_w)
                           * t_gpu, "ratio_vs_hybrid": 1.0},
        tiers_j=tiers, profiles={"gpu": gp.name, "reference": ref.name}, assumptions=assumptions(gp, ref),
        notes=["the whole model runs on the GPU (Loihi cannot start it): priced as the all-GPU baseline"])


def assumptions(*profiles) -> list[dict]:
    """Every figure used, with its value, label and source."""
    rows = []
    for prof in profiles:
        for section, content in prof.model_dump().items():
            if isinstance(content, dict):
                for key, fig in content.items():
                    if isinstance(fig, dict) and {"value", "label", "source"} <= set(fig):
                        rows.append({"profile": prof.name, "figure": f"{section}.{key}", **fig})
    return rows


def counts_from_run(plan: SpikingPlan, inputs: np.ndarray, spikes: dict[str, np.ndarray], cut: str | None,
                    window: int | None, dense_path=None, input_name: str = "spikes", sops=None,
                    step_path=None, prefix_paths=None, prefix_any_length: bool = False,
                    windows_run: np.ndarray | None = None) -> Counts:
    """Counts per sample from a run (inputs (B, T, ...), spikes per population (B, T, ...)) and the dense graph
    (:func:`dense_work`, with ``windows_run`` on the event schedule); ``sops`` are the run's :func:`~neurodeploy.cost.counts.synaptic_ops` when already
    counted."""
    from neurodeploy.cost.counts import fan_out, neurobench_sops, synaptic_ops

    batch, steps = inputs.shape[:2]
    per_layer = sops if sops is not None else synaptic_ops(plan, inputs, spikes)
    synops: dict[str, float] = {}
    conv_synops: dict[str, float] = {}
    for layer in per_layer:
        syn = plan.layer(layer.layer)
        synops[syn.target] = synops.get(syn.target, 0.0) + layer.effective
        if syn.kind == "conv":
            conv_synops[syn.target] = conv_synops.get(syn.target, 0.0) + layer.effective
    counts = Counts(
        num_steps=steps, synops=synops, conv_synops=conv_synops, dense_synops=sum(s.dense for s in per_layer if not s.refines),
        neurobench_synops=neurobench_sops(per_layer),
        spikes={name: float(np.sum(s != 0) / batch) for name, s in plan.spikes_only(spikes).items()},
        neurons={p.name: p.n for p in plan.neurons},
        cut_spikes=float(np.sum(spikes[cut] != 0) / batch) if cut else 0.0,
        windows=steps // window if window else 0,
        synapse_weights=float(sum(fan_out(s).sum() for s in plan.synapses if not s.refines)),
        input_bits=host_input_bits(plan, inputs))
    if dense_path is not None and cut:
        report = dense_work(dense_path, step_path, input_name, steps, window, spikes[cut], prefix_paths,
                            prefix_any_length, windows_run)
        counts.dense_flops, counts.dense_macs = report.flops, report.macs
        counts.dense_bytes = report.weight_bytes + report.activation_bytes
        counts.dense_kernels = report.kernels
    return counts


def dense_work(dense_path, step_path, input_name: str, steps: int, window: int | None, cut_spikes: np.ndarray,
               prefix_paths=None, prefix_any_length: bool = False, windows_run: np.ndarray | None = None):
    """The dense part's MACs, FLOPs, kernels and bytes for one sample of ``steps`` steps: its whole-sequence
    graph at that length, or, where that graph is fixed at another length (a captured model's own loop over
    its compiled T: a run of 2T, or cut short by an early exit), its step model once per window; with
    ``prefix_paths`` (the prefix runner on the window schedule) the graph on the windows so far after each
    window, summed. ``windows_run`` (the event schedule): the windows each sample's step model or prefix
    runner ran (its salient ones), the work averaged over the samples."""
    import onnx

    from neurodeploy.cost.macs import MacReport, count_macs, count_steps, summed

    shape = dense_input_step_shape(dense_path, cut_spikes)

    @functools.cache
    def after_window(i: int) -> MacReport:  # the prefix runner's graph on the first i + 1 windows, counted once
        return count_macs(prefix_paths[0 if prefix_any_length else i], {input_name: (1, (i + 1) * window, *shape)})

    def stepped(n: int) -> MacReport:  # n windows through the step model or the prefix runner
        if not n:
            return MacReport()
        if prefix_paths:
            return summed([after_window(i) for i in range(n)])
        return count_steps(step_path, (window, *shape), n)

    if window and windows_run is not None and (prefix_paths or step_path is not None):
        ran, frequency = np.unique(np.asarray(windows_run, dtype=int), return_counts=True)
        return summed([stepped(int(n)) for n in ran], list(frequency / frequency.sum()))
    if prefix_paths and window:
        return stepped(steps // window)
    dim = onnx.load(str(dense_path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim[1]
    if dim.dim_param or dim.dim_value == steps or step_path is None or not window:
        return count_macs(dense_path, {input_name: (1, steps, *shape)})
    return count_steps(step_path, (window, *shape), steps // window)


def host_input_bits(plan: SpikingPlan, inputs: np.ndarray) -> float:
    """Bits the host sends the chip per sample: a frame held as a LIF input layer's bias (the same values every
    step) once, in 16-bit words; otherwise every nonzero input value as a 32-bit event."""
    first = plan.neurons[0] if plan.neurons else None
    held = first is not None and first.driven_by_input and first.model == "lif" and inputs.shape[1] > 1 \
        and bool(np.all(inputs == inputs[:, :1]))
    if held:
        return 16.0 * plan.n_in
    return 8.0 * BYTES_PER_EVENT * float(np.count_nonzero(inputs)) / max(len(inputs), 1)


def dense_input_step_shape(dense_path, cut_spikes: np.ndarray) -> tuple[int, ...]:
    """The shape of one step of the cut's spikes as the dense ONNX model takes them: flat ``(n,)``, or the
    population's own shape where the model has more input dimensions (populations moved to the GPU)."""
    import onnx

    rank = len(onnx.load(str(dense_path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim)
    return tuple(cut_spikes.shape[2:]) if rank > 3 else (int(np.prod(cut_spikes.shape[2:])),)
