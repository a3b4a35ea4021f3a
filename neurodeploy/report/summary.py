"""The JSON summary (DESIGN.md's contract) and the terminal table.

Energy and latency come from :mod:`neurodeploy.cost.model` with the named hardware profiles; every
figure it used is listed under ``assumptions`` with its source and label.
"""
from __future__ import annotations

from dataclasses import asdict

import numpy as np
from rich.console import Console
from rich.table import Table

from neurodeploy.bundle import Bundle
from neurodeploy.runtime.cosim import CosimResult
from neurodeploy.cost.counts import sops_summary, spike_rates

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
    rates = spike_rates(result.spikes)
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
        "spikes_per_step": {name: float(np.sum(s != 0) / (s.shape[0] * s.shape[1])) for name, s in result.spikes.items()},
        "latency_s": report.latency_s,
        "energy_j": report.energy_j | {"terms": report.terms_j},
        "baseline_gpu_only": report.baseline_gpu_only,
        "tiers_j": report.tiers_j,
        "agreement": asdict(result.agreement) if result.agreement else
        {"spike_mismatches": None, "max_abs_err": None, "top1_match": None},
        "wall_s": result.wall_s,
        "dense_invocations": result.dense_invocations,
        "providers": result.providers,
        "profiles": report.profiles,
        "assumptions": report.assumptions,
        "notes": result.notes,
    }


def print_summary(data: dict, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"neurodeploy: {data['model']} ({data['mode']} co-simulation, {data['num_samples']} samples)")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    agreement = data["agreement"]
    rows = [
        ("spike mismatches vs PyTorch", agreement["spike_mismatches"]),
        ("output max |error| vs PyTorch", agreement["max_abs_err"]),
        ("top-1 agreement", agreement["top1_match"]),
        ("SOPs / sample, effective", data["sops"]["effective"]),
        ("SOPs / sample, dense", data["sops"]["dense"]),
        ("mean spike rate", data["spike_rate"]["mean"]),
        ("energy / sample, Loihi + link + GPU (J)", data["energy_j"]["total"]),
        ("  neuromorphic / transfer / GPU (J)", " / ".join(_fmt(data["energy_j"][k]) for k in ("neuromorphic", "transfer", "gpu"))),
        ("energy / sample, all-GPU baseline (J)", data["baseline_gpu_only"]["energy_j"]),
        ("energy / sample, 45 nm SOP tier (J)", data["tiers_j"]["cmos45nm_sops"]),
        ("latency / sample, estimated (s)", data["latency_s"]["total"]),
        (f"wall time, {data['backend']} (s)", data["wall_s"][data["backend"]]),
        ("wall time, ONNX Runtime (s)", data["wall_s"]["dense"]),
        ("wall time, total (s)", data["wall_s"]["total"]),
        ("ONNX Runtime providers", ", ".join(data["providers"])),
    ]
    for name, value in rows:
        table.add_row(name, _fmt(value))
    for layer, sops in data["sops"]["per_layer"].items():
        table.add_row(f"  SOPs {layer} (effective / dense)", f"{sops['effective']:,.0f} / {sops['dense']:,.0f}")
    if "early_exit" in data:
        ee = data["early_exit"]
        table.add_row("early exit: mean exit window", f"{ee['mean_exit_window']:.2f} of {ee['windows']}")
        for key, unit in (("energy_j", "J"), ("latency_s", "s")):
            table.add_row(f"early exit: {key.split('_')[0]} with exits / full ({unit})",
                          f"{ee[key]['with_exits']:.3g} / {ee[key]['full']:.3g} ({ee[key]['saved_fraction']:.0%} saved)")
    console.print(table)
    console.print(f"profiles: {data['profiles']}; every figure used, with its source, is under 'assumptions' "
                  "in the JSON output")
    for note in data["notes"]:
        console.print(f"note: {note}")


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.0f}" if value >= 1000 else f"{value:.3g}"
    if isinstance(value, str):
        return value
    return str(value)
