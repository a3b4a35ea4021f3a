"""Pricing a run: the JSON summary (the CLI's ``--json`` contract) and the :class:`CostReport` the API returns.

Energy and latency come from :mod:`neurodeploy.cost.energy_latency` with the named hardware profiles; every
figure it used is listed under ``assumptions`` with its source and label. The contract's keys are at
least ``sops.{total,dense,effective,per_layer}``, ``macs.total``, ``spike_rate``,
``latency_s.{neuromorphic,transfer,gpu,total}``, ``energy_j.{neuromorphic,gpu,total}``,
``baseline_gpu_only.energy_j``, ``agreement.{spike_mismatches,max_abs_err,top1_match}``,
``wall_s.{lava,dense,total}`` and ``profiles``. Layers are keyed by their NIR node names;
``layer_names`` gives each one's module in the user's model, which the terminal and HTML reports show
(:mod:`neurodeploy.report` renders it).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from neurodeploy.bundle import Bundle
from neurodeploy.cost.counts import (LayerSops, activation_sparsity, membrane_updates, sops_summary, spike_rates,
                                     synaptic_ops)
from neurodeploy.cost.energy_latency import Counts, counts_from_run, estimate, estimate_gpu_only
from neurodeploy.runtime.cosim import CosimResult
from neurodeploy.spiking.float_simulation import simulate_batch
from neurodeploy.spiking.resources import map_resources
from neurodeploy.tables import data_frame, html_table
from neurodeploy.units import display_name, listing, number, si


@dataclass
class CostReport:
    """What :func:`neurodeploy.estimate` returns: the priced co-simulation, as the CLI's ``--json`` prints it.

    ``figures`` is that JSON object; the attributes below are its main parts (per sample).
    """

    figures: dict
    loihi: str = "loihi2"  # the neuromorphic profile priced (a name or a .json path), for the resource map

    energy_j = property(lambda self: self.figures["energy_j"], doc="J per sample: neuromorphic, transfer, gpu, total")
    latency_s = property(lambda self: self.figures["latency_s"], doc="s per sample, by device and total")
    sops = property(lambda self: self.figures["sops"], doc="synaptic operations per sample, per layer")
    macs = property(lambda self: self.figures["macs"], doc="MACs of the dense part per sample")
    baseline_gpu_only = property(lambda self: self.figures["baseline_gpu_only"], doc="the all-GPU baseline")
    early_exit = property(lambda self: self.figures.get("early_exit"), doc="priced early exits, when run with them")

    def as_dict(self) -> dict:
        return self.figures

    def __repr__(self) -> str:
        e, f = self.energy_j, self.figures
        return (f"CostReport({f['model']}: {si(e['total'], 'J')} and {si(self.latency_s['total'], 's')} per sample "
                f"(neuromorphic {si(e['neuromorphic'], 'J')}, transfer {si(e['transfer'], 'J')}, GPU "
                f"{si(e['gpu'], 'J')}; all-GPU {si(self.baseline_gpu_only['energy_j'], 'J')}); "
                f"{number(self.sops['effective'])} SOPs; {listing(f['profiles'])})")

    def _devices(self) -> list[dict]:
        e, lat, base = self.energy_j, self.latency_s, self.baseline_gpu_only
        rows = [{"device": d, "energy_j": e[d], "latency_s": lat.get(d)} for d in ("neuromorphic", "transfer", "gpu")]
        return rows + [{"device": "total", "energy_j": e["total"], "latency_s": lat["total"]},
                       {"device": "all-GPU baseline", "energy_j": base["energy_j"], "latency_s": base.get("latency_s")}]

    def _repr_html_(self) -> str:
        f = self.figures
        rows = [[r["device"], si(r["energy_j"], "J"), si(r["latency_s"], "s")] for r in self._devices()]
        return html_table(f"{f['model']} per sample ({listing(f['profiles'])}): {number(self.sops['effective'])} "
                          f"SOPs, {number(self.macs['total'])} MACs", ["device", "energy", "latency"], rows)

    def to_dataframe(self):
        """Energy (J) and latency (s) per sample by device, the total and the all-GPU baseline (pandas)."""
        return data_frame(self._devices())


def cost(bundle: Bundle, result: CosimResult, loihi: str = "loihi2", gpu: str = "h100",
         sops: list[LayerSops] | None = None):
    """The cost model on the counts of ``result`` (``sops``: its synaptic operations, when already counted)."""
    m, plan = bundle.manifest, result.plan
    cut = plan.outputs.get(m.spiking.cut_output) if m.spiking.cut_output else None
    counts = counts_from_run(plan, result.inputs, result.spikes, cut, m.windowed(result.schedule),
                             None if m.dense is None else bundle.dense_path, sops=sops,
                             step_path=None if m.dense is None or not m.dense.step_file else bundle.path / m.dense.step_file,
                             prefix_paths=None if m.dense is None or not m.dense.prefix_files or result.schedule == "end"
                             else [bundle.path / f for f in m.dense.prefix_files],
                             prefix_any_length=m.dense is not None and m.dense.prefix_any_length,
                             windows_run=windows_run(m, result, cut))
    return estimate(plan, map_resources(plan, loihi), counts, loihi, gpu), counts


def windows_run(m, result: CosimResult, cut: str | None) -> np.ndarray | None:
    """On the event schedule, the windows each sample's dense part ran: those where the cut fired at least
    the bundle's ``event_threshold`` (``salient_windows``, as the co-simulation decides); else None."""
    from neurodeploy.models.backends import salient_windows

    if result.schedule != "event" or cut is None or m.dense is None or m.dense.event_threshold is None:
        return None
    spikes, k = np.asarray(result.spikes[cut]), m.windowed(result.schedule)
    windows = spikes.shape[1] // k
    return sum(salient_windows(spikes[:, w * k: (w + 1) * k], m.dense.event_threshold).astype(int)
               for w in range(windows))


def early_exit_cost(bundle: Bundle, result: CosimResult, full, loihi: str, gpu: str) -> dict:
    """Energy and latency per sample when each sample stops at its exit window, against the full run.

    Samples are grouped by exit window e; each group is priced by the cost model on its run cut to the
    first (e + 1) K steps (spikes, inputs, and the dense part's work at that length), and the groups
    are averaged by size.
    """
    exits, k = result.exit_windows, bundle.manifest.window_steps
    windows = int(result.inputs.shape[1]) // k
    energy = latency = 0.0
    for e in np.unique(exits):
        rows, steps = exits == e, int(e + 1) * k
        spikes = {name: s[rows, :steps] for name, s in result.spikes.items()}
        part = replace(result, spikes=spikes, inputs=result.inputs[rows, :steps])
        report, _ = cost(bundle, part, loihi, gpu)
        energy += report.energy_j["total"] * rows.sum() / len(exits)
        latency += report.latency_s["total"] * rows.sum() / len(exits)
    return {"threshold": bundle.manifest.dense.exit_threshold, "windows": windows,
            "mean_exit_window": float(exits.mean() + 1), "exit_windows": (exits + 1).tolist(),
            "steps_run_fraction": float((exits + 1).mean() / windows),
            "energy_j": _saving(energy, full.energy_j["total"]), "latency_s": _saving(latency, full.latency_s["total"])}


def _saving(with_exits: float, full: float) -> dict:
    return {"with_exits": with_exits, "full": full, "saved": full - with_exits, "saved_fraction": 1 - with_exits / full}


def summary(bundle: Bundle, result: CosimResult, loihi: str = "loihi2", gpu: str = "h100") -> dict:
    """One JSON-able dict with at least the keys of DESIGN.md's ``--json`` contract."""
    if bundle.manifest.gpu_only:
        return gpu_only_summary(bundle, result, gpu)
    spikes = result.plan.spikes_only(result.spikes)
    rates = spike_rates(spikes)
    sops = synaptic_ops(result.plan, result.inputs, result.spikes)
    report, counts = cost(bundle, result, loihi, gpu, sops)
    extra = {} if result.exit_windows is None else {"early_exit": early_exit_cost(bundle, result, report, loihi, gpu)}
    return extra | _run_fields(bundle, result, int(next(iter(result.spikes.values())).shape[1])) | {
        "gpu_only": False,
        "sops": sops_summary(sops),
        "macs": {"total": counts.dense_macs, "flops": counts.dense_flops, "kernels": counts.dense_kernels,
                 "unit": "dense part per sample, counted from the ONNX graph"},
        "gpu_sops": _gpu_sops(bundle, result),
        "spike_rate": {"mean": float(np.mean(list(rates.values()))), "per_layer": rates},
        "activation_sparsity": {"value": activation_sparsity(spikes),
                                "unit": "NeuroBench ActivationSparsity: zero outputs / all outputs over every "
                                        "population, step and sample"},
        "membrane_updates": _membrane_updates(result),
        "spikes_per_step": {name: float(np.sum(s != 0) / (s.shape[0] * s.shape[1])) for name, s in spikes.items()},
        "latency_s": report.latency_s,
        "energy_j": report.energy_j | {"terms": report.terms_j},
        "baseline_gpu_only": report.baseline_gpu_only,
        "tiers_j": report.tiers_j,
        "profiles": report.profiles,
        "assumptions": report.assumptions,
        "layer_names": {name: display_name(name, bundle.manifest.spiking.module_paths)
                        for name in [*result.spikes, *(s.layer for s in sops)]},
        "quantization": bundle.manifest.spiking.quantization,
        "partition": partition(bundle, result),
        "notes": result.notes + report.notes + _prefix_note(bundle, result),
    }


def gpu_only_summary(bundle: Bundle, result: CosimResult, gpu: str = "h100") -> dict:
    """:func:`summary` of a bundle whose model runs wholly on the GPU: the contract's keys, the spiking ones
    empty or zero (nothing runs on Loihi), MACs and NeuroBench's synaptic operations of the whole model."""
    from neurodeploy.cost.gpu_sops import gpu_synaptic_ops
    from neurodeploy.cost.macs import count_macs

    m, x = bundle.manifest, result.inputs
    steps = int(x.shape[1])
    macs = count_macs(bundle.dense_path, {m.dense.input_name: (1, steps, *m.sample_shape)})
    counts = Counts(num_steps=steps, synops={}, dense_synops=0.0, spikes={}, neurons={}, cut_spikes=0.0, windows=0,
                    dense_flops=macs.flops, dense_macs=macs.macs, dense_bytes=macs.weight_bytes + macs.activation_bytes,
                    dense_kernels=macs.kernels)
    report = estimate_gpu_only(counts, gpu)
    nothing = "nothing runs on Loihi: the whole model runs on the GPU"
    return _run_fields(bundle, result, steps) | {
        "gpu_only": True,
        "sops": sops_summary([]),
        "macs": {"total": macs.macs, "flops": macs.flops, "kernels": macs.kernels,
                 "unit": "the whole model per sample, counted from the ONNX graph"},
        "gpu_sops": gpu_synaptic_ops(bundle.dense_path, m.dense.input_name, x.astype(np.float32)).as_dict(),
        "spike_rate": {"mean": None, "per_layer": {}},
        "activation_sparsity": {"value": None, "unit": nothing},
        "membrane_updates": {"value": None, "unit": nothing},
        "spikes_per_step": {},
        "latency_s": report.latency_s, "energy_j": report.energy_j | {"terms": report.terms_j},
        "baseline_gpu_only": report.baseline_gpu_only, "tiers_j": report.tiers_j,
        "profiles": report.profiles, "assumptions": report.assumptions,
        "layer_names": {}, "quantization": None, "notes": result.notes + report.notes,
    }


def _run_fields(bundle: Bundle, result: CosimResult, steps: int) -> dict:
    """The summary's fields that describe the run itself."""
    return {
        "bundle": str(bundle.path), "model": bundle.manifest.name, "mode": result.mode,
        "backend": result.backend, "schedule": result.schedule,
        "num_samples": int(result.y.shape[0]), "num_steps": steps,
        "agreement": asdict(result.agreement) if result.agreement is not None else
        {"spike_mismatches": None, "max_abs_err": None, "top1_match": None},
        "wall_s": result.wall_s, "dense_invocations": result.dense_invocations,
        "timeline": result.timeline, "providers": result.providers,
    }


def _prefix_note(bundle: Bundle, result: CosimResult) -> list[str]:
    """The prefix runner's cost, said where it ran."""
    m = bundle.manifest
    if m.dense is None or not m.dense.prefix_files or result.schedule == "end":
        return []
    return [f"the dense part re-ran on the windows so far at every window (prefix runner: "
            f"{len(m.dense.prefix_files)} graphs); its work, priced here, grows with the square of the windows"]


def partition(bundle: Bundle, result: CosimResult) -> dict:
    """Where each of the user's modules runs (``placement``: module, device, reason, in the model's order) and
    what crosses the cut: the population (by the user's module name), its values per step (spikes, or its
    voltage), the steps per window the dense part takes, and the spikes per step measured in this run."""
    m = bundle.manifest
    placed = [p.model_dump() for p in m.placement]
    if m.dense is None or not m.spiking.cut_output:
        return {"placement": placed, "cut": None}
    name = result.plan.outputs[m.spiking.cut_output]
    spikes = result.spikes[name]
    values = int(np.prod(spikes.shape[2:]))
    return {"placement": placed, "cut": {
        "population": display_name(name, m.spiking.module_paths), "reads": m.spiking.cut_reads,
        "values_per_step": values, "window_steps": m.windowed(result.schedule),
        "steps": int(spikes.shape[1]), "schedule": result.schedule,
        "spikes_per_step": float(np.sum(spikes != 0) / (spikes.shape[0] * spikes.shape[1]))}}


def _gpu_sops(bundle: Bundle, result: CosimResult) -> dict | None:
    """NeuroBench's synaptic operations of the dense part on the run's cut spikes
    (:mod:`neurodeploy.cost.gpu_sops`); None for a spiking-only bundle."""
    from neurodeploy.cost.energy_latency import dense_input_step_shape
    from neurodeploy.cost.gpu_sops import gpu_synaptic_ops

    m = bundle.manifest
    if m.dense is None or not m.spiking.cut_output:
        return None
    spikes = result.spikes[result.plan.outputs[m.spiking.cut_output]]
    cut = spikes.reshape(*spikes.shape[:2], *dense_input_step_shape(bundle.dense_path, spikes))
    return gpu_synaptic_ops(bundle.dense_path, m.dense.input_name, cut).as_dict()


def _membrane_updates(result: CosimResult) -> dict:
    """NeuroBench's MembraneUpdates per sample, counted on the float model of the plan run on this run's
    inputs (Lava and the emulator return spikes, not voltages); None for sigma-delta (netx SDNN) plans."""
    unit = "NeuroBench MembraneUpdates per sample, of the float model on this run's inputs"
    if any(p.model not in ("lif", "li") for p in result.plan.neurons):
        return {"value": None, "unit": unit, "note": "sigma-delta populations have no float model"}
    _, voltages = simulate_batch(result.plan, result.inputs, voltages=True)
    return {"value": membrane_updates(voltages), "unit": unit}


def price(bundle: Bundle, result: CosimResult, loihi: str | None = None, gpu: str = "h100") -> CostReport:
    """Price ``result``: :func:`summary` as a :class:`CostReport` (``loihi``: default the profile the bundle
    was compiled for)."""
    m = bundle.manifest
    loihi = loihi or (m.spiking.profile if m.spiking is not None else "loihi2")
    return CostReport(summary(bundle, result, loihi, gpu), loihi)
