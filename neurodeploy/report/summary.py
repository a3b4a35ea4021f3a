"""The JSON summary (the CLI's ``--json`` contract), the :class:`CostReport` the API returns, and the terminal table.

Energy and latency come from :mod:`neurodeploy.cost.model` with the named hardware profiles; every
figure it used is listed under ``assumptions`` with its source and label. The contract's keys are at
least ``sops.{total,dense,effective,per_layer}``, ``macs.total``, ``spike_rate``,
``latency_s.{neuromorphic,transfer,gpu,total}``, ``energy_j.{neuromorphic,gpu,total}``,
``baseline_gpu_only.energy_j``, ``agreement.{spike_mismatches,max_abs_err,top1_match}``,
``wall_s.{lava,dense,total}`` and ``profiles``. Layers are keyed by their NIR node names;
``layer_names`` gives each one's module in the user's model, which the terminal and HTML reports show.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from rich.console import Console
from rich.table import Table

from neurodeploy.bundle import Bundle
from neurodeploy.cost.counts import activation_sparsity, membrane_updates, sops_summary, spike_rates
from neurodeploy.report.units import display_name, number, percent, si
from neurodeploy.runtime.cosim import CosimResult


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

def cost(bundle: Bundle, result: CosimResult, loihi: str = "loihi2", gpu: str = "h100"):
    """The cost model on the counts of ``result``."""
    from neurodeploy.cost.model import counts_from_run, estimate
    from neurodeploy.spiking.resources import map_resources

    m, plan = bundle.manifest, result.plan
    cut = plan.outputs.get(m.spiking.cut_output) if m.spiking.cut_output else None
    counts = counts_from_run(plan, result.inputs, result.spikes, cut, m.adapter.window if m.adapter else None,
                             None if m.dense is None else bundle.dense_path, sops=result.sops)
    return estimate(plan, map_resources(plan, loihi), counts, loihi, gpu), counts


def early_exit_cost(bundle: Bundle, result: CosimResult, full, loihi: str, gpu: str) -> dict:
    """Energy and latency per sample when each sample stops at its exit window, against the full run.

    Samples are grouped by exit window e; each group is priced by the cost model on its run cut to the
    first (e + 1) K steps (spikes, inputs, and the dense part's work at that length), and the groups
    are averaged by size.
    """
    from dataclasses import replace

    from neurodeploy.cost.counts import synaptic_ops

    exits, k = result.exit_windows, bundle.manifest.adapter.window
    windows = int(result.y.shape[1])
    energy = latency = 0.0
    for e in np.unique(exits):
        rows, steps = exits == e, int(e + 1) * k
        spikes = {name: s[rows, :steps] for name, s in result.spikes.items()}
        part = replace(result, spikes=spikes, inputs=result.inputs[rows, :steps],
                       sops=synaptic_ops(result.plan, result.inputs[rows, :steps], spikes))
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
    spikes = result.plan.spikes_only(result.spikes)
    rates = spike_rates(spikes)
    report, counts = cost(bundle, result, loihi, gpu)
    extra = {} if result.exit_windows is None else {"early_exit": early_exit_cost(bundle, result, report, loihi, gpu)}
    return extra | {
        "bundle": str(bundle.path), "model": bundle.manifest.name, "mode": result.mode,
        "backend": result.backend, "schedule": result.schedule,
        "num_samples": int(result.y.shape[0]), "num_steps": int(next(iter(result.spikes.values())).shape[1]),
        "sops": sops_summary(result.sops),
        "macs": {"total": counts.dense_macs, "flops": counts.dense_flops, "kernels": counts.dense_kernels,
                 "unit": "dense part per sample, counted from the ONNX graph"},
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
        "agreement": asdict(result.agreement) if result.agreement else
        {"spike_mismatches": None, "max_abs_err": None, "top1_match": None},
        "wall_s": result.wall_s,
        "dense_invocations": result.dense_invocations,
        "timeline": result.timeline,
        "providers": result.providers,
        "profiles": report.profiles,
        "assumptions": report.assumptions,
        "layer_names": {name: display_name(name, bundle.manifest.spiking.module_paths)
                        for name in [*result.spikes, *(s.layer for s in result.sops)]},
        "quantization": bundle.manifest.spiking.quantization,
        "notes": result.notes,
    }


def _membrane_updates(result: CosimResult) -> dict:
    """NeuroBench's MembraneUpdates per sample, counted on the float model of the plan run on this run's
    inputs (Lava and the emulator return spikes, not voltages); None for sigma-delta (netx SDNN) plans."""
    from neurodeploy.spiking.reference import simulate_batch

    unit = "NeuroBench MembraneUpdates per sample, of the float model on this run's inputs"
    if any(p.model not in ("lif", "li") for p in result.plan.neurons):
        return {"value": None, "unit": unit, "note": "sigma-delta populations have no float model"}
    _, voltages = simulate_batch(result.plan, result.inputs, voltages=True)
    return {"value": membrane_updates(voltages), "unit": unit}


def _rows(data: dict) -> list[tuple[str, str]]:
    agreement, e, lat = data["agreement"], data["energy_j"], data["latency_s"]
    return [
        ("spike mismatches vs PyTorch", number(agreement["spike_mismatches"])),
        ("output max |error| vs PyTorch", number(agreement["max_abs_err"])),
        ("top-1 agreement", percent(agreement["top1_match"])),
        ("SOPs / sample, effective", number(data["sops"]["effective"])),
        ("SOPs / sample, dense", number(data["sops"]["dense"])),
        ("MACs / sample, dense part", number(data["macs"]["total"])),
        ("SOPs / sample, bias lines (not NeuroBench SOPs)", number(data["sops"]["bias"]["effective"])),
        ("mean spike rate", number(data["spike_rate"]["mean"])),
        ("activation sparsity (NeuroBench)", number(data["activation_sparsity"]["value"])),
        ("membrane updates / sample (NeuroBench)", number(data["membrane_updates"]["value"])),
        ("energy / sample, Loihi + link + GPU", si(e["total"], "J")),
        ("  neuromorphic / transfer / GPU", " / ".join(si(e[k], "J") for k in ("neuromorphic", "transfer", "gpu"))),
        ("energy / sample, all-GPU baseline", si(data["baseline_gpu_only"]["energy_j"], "J")),
        ("energy / sample, 45 nm SOP tier", si(data["tiers_j"]["cmos45nm_sops"], "J")),
        ("latency / sample, estimated", si(lat["total"], "s")),
        (f"wall time, {data['backend']}", si(data["wall_s"][data["backend"]], "s")),
        ("wall time, ONNX Runtime", si(data["wall_s"]["dense"], "s")),
        ("wall time, total", si(data["wall_s"]["total"], "s")),
        ("ONNX Runtime providers", ", ".join(data["providers"]) or "n/a"),
    ]


def _early_exit_rows(ee: dict) -> list[tuple[str, str]]:
    rows = [("early exit: mean exit window", f"{ee['mean_exit_window']:.2f} of {ee['windows']}")]
    for key, unit in (("energy_j", "J"), ("latency_s", "s")):
        rows.append((f"early exit: {key.split('_')[0]} with exits / full",
                     f"{si(ee[key]['with_exits'], unit)} / {si(ee[key]['full'], unit)} "
                     f"({ee[key]['saved_fraction']:.0%} saved)"))
    return rows


def print_summary(data: dict, console: Console | None = None) -> None:
    """The terminal table: figures with units, layers under the user's module names."""
    console = console or Console()
    table = Table(title=f"neurodeploy: {data['model']} ({data['mode']} co-simulation, {data['num_samples']} samples, "
                        f"schedule {data['schedule']})")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    names = data.get("layer_names", {})
    for name, value in _rows(data):
        table.add_row(name, value)
    for layer, sops in data["sops"]["per_layer"].items():
        table.add_row(f"  SOPs {names.get(layer, layer)} (effective / dense)",
                      f"{number(sops['effective'])} / {number(sops['dense'])}")
    for name, value in _early_exit_rows(data["early_exit"]) if "early_exit" in data else []:
        table.add_row(name, value)
    console.print(table)
    if data.get("quantization"):
        print_quantization(data["quantization"], names, console)
    console.print(f"profiles: {data['profiles']}; every figure used, with its source, is under 'assumptions' "
                  "in the JSON output")
    for note in data["notes"]:
        console.print(f"note: {note}")


def print_quantization(report: list[dict], names: dict[str, str], console: Console) -> None:
    """The fixed-point report of the spiking part, one line per population and its synapses; ``names``:
    NIR node -> the user's module (a manifest's ``module_paths`` or a summary's ``layer_names``)."""
    def label(name: str) -> str:
        return display_name(name, names)

    console.print("fixed point (Loihi integers) per population:")
    for q in report:
        syn = "; ".join(f"{label(s['name'])}: {_grid(s)}, rms error {s['rel_rms_err']:.2%}"
                        + (f", {s['zeroed']} weights rounded to 0" if s["zeroed"] else "") for s in q["synapses"])
        limit = q["limited_by"]
        if limit.startswith("weights of "):
            limit = "weights of " + label(limit.removeprefix("weights of "))
        measured = q.get("calibration_disagreement")
        spikes = "" if not measured else (f"; spikes unlike float on the calibration inputs: {measured['after']:.2%} "
                                          f"(8-bit, uncalibrated: {measured['before']:.2%})")
        console.print(f"  {label(q['name'])}: scale {q['scale']:.4g} (limited by {limit}), "
                      f"threshold {q['vth_mant']}; {syn}{spikes}")


def _grid(synapse: dict) -> str:
    """A synapse's weight grid in words: its exponent(s) and, for precision ``double``, the synapse count."""
    if synapse.get("precision", "single") == "single":
        return f"exp {synapse['weight_exp']}"
    return (f"two synapses, exp {synapse['weight_exp']} and {synapse['fine_exp']} "
            f"({synapse['synapses']:,} synapses for {synapse['weights']:,} weights)")
