"""The terminal rendering of a priced run (:func:`print_summary`) and of a bundle's fixed-point report
(:func:`print_quantization`): figures with units, layers under the user's module names.

The figures come from :func:`neurodeploy.cost.pricing.summary` (the JSON contract); this module only renders.
"""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from neurodeploy.units import display_name, listing, number, percent, si


def _gpu_only_rows(data: dict) -> list[tuple[str, str]]:
    """The rows of a model that runs wholly on the GPU (nothing on Loihi: no spikes, no SOPs on the chip)."""
    agreement = data["agreement"]
    return [
        ("runs on", "the GPU alone (Loihi cannot start it)"),
        ("output max |error| vs PyTorch", number(agreement["max_abs_err"])),
        ("top-1 agreement", percent(agreement["top1_match"])),
        ("MACs / sample, whole model", number(data["macs"]["total"])),
        *_gpu_sops_rows(data.get("gpu_sops")),
        ("energy / sample, GPU", si(data["energy_j"]["total"], "J")),
        ("energy / sample, 45 nm MAC tier", si(data["tiers_j"]["cmos45nm_sops"], "J")),
        ("latency / sample, estimated", si(data["latency_s"]["total"], "s")),
        ("wall time, ONNX Runtime", si(data["wall_s"]["dense"], "s")),
        ("ONNX Runtime providers", ", ".join(data["providers"]) or "n/a"),
    ]


def _rows(data: dict) -> list[tuple[str, str]]:
    if data.get("gpu_only"):
        return _gpu_only_rows(data)
    agreement, e, lat = data["agreement"], data["energy_j"], data["latency_s"]
    return [
        ("spike mismatches vs PyTorch", number(agreement["spike_mismatches"])),
        ("output max |error| vs PyTorch", number(agreement["max_abs_err"])),
        ("top-1 agreement", percent(agreement["top1_match"])),
        ("SOPs / sample, effective", number(data["sops"]["effective"])),
        ("SOPs / sample, dense", number(data["sops"]["dense"])),
        ("MACs / sample, dense part", number(data["macs"]["total"])),
        *_gpu_sops_rows(data.get("gpu_sops")),
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


def gpu_sops_text(gpu: dict | None) -> str:
    """The dense part's NeuroBench synaptic operations, ``ACs / MACs`` (``n/a`` for a spiking-only bundle);
    the terminal table and the HTML report both show it."""
    if not gpu:
        return "n/a"
    seen = "" if not gpu["layers_not_seen"] else f" ({gpu['layers_not_seen']} Scan/Loop bodies not counted)"
    return f"{number(gpu['effective_acs'])} / {number(gpu['effective_macs'])}{seen}"


def _gpu_sops_rows(gpu: dict | None) -> list[tuple[str, str]]:
    """The row of :func:`gpu_sops_text`, where the bundle has a dense part."""
    return [("  GPU ACs / MACs per sample (NeuroBench)", gpu_sops_text(gpu))] if gpu else []


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
    console.print(f"profiles: {listing(data['profiles'])}; every figure used, with its source, is under 'assumptions' "
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
        limit = limit_text(q["limited_by"], names)
        measured = q.get("calibration_disagreement")
        spikes = "" if not measured else (f"; spikes unlike float on the calibration inputs: {measured['after']:.2%} "
                                          f"(8-bit, uncalibrated: {measured['before']:.2%})")
        console.print(f"  {label(q['name'])}: scale {q['scale']:.4g} (limited by {limit}), "
                      f"threshold {q['vth_mant']}; {syn}{spikes}")


def limit_text(limit: str, names: dict[str, str]) -> str:
    """What bounds a population's scale, a synapse named by the user's module (``weights of conv1 (Conv2d)``)."""
    if limit.startswith("weights of "):
        return "weights of " + display_name(limit.removeprefix("weights of "), names)
    return limit


def _grid(synapse: dict) -> str:
    """A synapse's weight grid in words: its exponent(s) and, for precision ``double``, the synapse count."""
    if synapse.get("precision", "single") == "single":
        return f"exp {synapse['weight_exp']}"
    return (f"two synapses, exp {synapse['weight_exp']} and {synapse['fine_exp']} "
            f"({synapse['synapses']:,} synapses for {synapse['weights']:,} weights)")
