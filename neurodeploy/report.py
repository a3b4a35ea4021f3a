"""The JSON summary (DESIGN.md's contract) and the terminal table.

Fields whose model is not built yet (energy, latency, dense MACs, GPU baseline) are ``null`` and
listed under ``not_built``: nothing is invented.
"""
from __future__ import annotations

from dataclasses import asdict

import numpy as np
from rich.console import Console
from rich.table import Table

from neurodeploy.bundle import Bundle
from neurodeploy.cosim import CosimResult
from neurodeploy.metrics import sops_summary, spike_rates

NOT_BUILT = ["energy_j", "latency_s", "macs", "baseline_gpu_only"]


def summary(bundle: Bundle, result: CosimResult) -> dict:
    """One JSON-able dict with at least the keys of DESIGN.md's ``--json`` contract."""
    rates = spike_rates(result.spikes)
    return {
        "bundle": str(bundle.path), "model": bundle.manifest.name, "mode": result.mode,
        "backend": result.backend, "schedule": result.schedule,
        "num_samples": int(result.y.shape[0]), "num_steps": int(next(iter(result.spikes.values())).shape[1]),
        "sops": sops_summary(result.sops),
        "macs": {"total": None},
        "spike_rate": {"mean": float(np.mean(list(rates.values()))), "per_layer": rates},
        "spikes_per_step": {name: float(np.sum(s != 0) / (s.shape[0] * s.shape[1])) for name, s in result.spikes.items()},
        "latency_s": {"neuromorphic": None, "transfer": None, "gpu": None, "total": None},
        "energy_j": {"neuromorphic": None, "gpu": None, "total": None},
        "baseline_gpu_only": {"energy_j": None},
        "agreement": asdict(result.agreement) if result.agreement else
        {"spike_mismatches": None, "max_abs_err": None, "top1_match": None},
        "wall_s": result.wall_s,
        "dense_invocations": result.dense_invocations,
        "providers": result.providers,
        "profiles": {"loihi": None, "gpu": None},
        "not_built": NOT_BUILT,
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
        ("wall time, Lava (s)", data["wall_s"]["lava"]),
        ("wall time, ONNX Runtime (s)", data["wall_s"]["dense"]),
        ("wall time, total (s)", data["wall_s"]["total"]),
        ("ONNX Runtime providers", ", ".join(data["providers"])),
    ]
    for name, value in rows:
        table.add_row(name, _fmt(value))
    for layer, sops in data["sops"]["per_layer"].items():
        table.add_row(f"  SOPs {layer} (effective / dense)", f"{sops['effective']:,.0f} / {sops['dense']:,.0f}")
    console.print(table)
    console.print("not built yet (reported as null, never estimated): " + ", ".join(data["not_built"]))
    for note in data["notes"]:
        console.print(f"note: {note}")


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.0f}" if value >= 1000 else f"{value:.3g}"
    return str(value)
