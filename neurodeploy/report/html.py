"""A self-contained HTML report of one co-simulation: plots (matplotlib, embedded PNG, each with its SVG
to download for a paper) and tables.

Sections: summary, partition (the user's modules on Loihi and on the GPU, what crosses the cut), per-layer
synaptic operations, spike raster, energy by device and term (with the all-GPU baseline and the 45 nm
tier), pipeline timeline per window (neuromorphic / transfer / GPU), the measured timeline (each sample from
its own start), resource map, and every assumption with its value, label and source. Axes carry SI
prefixes chosen for their data (µJ, ms), as the tables do. No script, no external file: the page opens
offline.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neurodeploy.bundle.atomic import write_file  # noqa: E402
from neurodeploy.report.terminal import gpu_sops_text, limit_text  # noqa: E402
from neurodeploy.tables import html_table as _table  # noqa: E402
from neurodeploy.units import figure_value, listing, number, si, si_prefix  # noqa: E402


DPI = 150  # the inline PNG's; the SVG beside it is vector


def png_img(fig, name: str = "figure") -> str:
    """``fig`` as an ``<img>`` with the PNG inline (base64) and a link that downloads it as ``name.svg``
    (vector, for a paper), then closed."""
    png, svg = io.BytesIO(), io.BytesIO()
    fig.savefig(png, format="png", dpi=DPI, bbox_inches="tight")
    fig.savefig(svg, format="svg", bbox_inches="tight")
    plt.close(fig)
    alt = html.escape(name.replace("_", " "))
    return (f'<figure><img alt="{alt}" style="max-width:100%" src="data:image/png;base64,'
            f'{base64.b64encode(png.getvalue()).decode()}"><figcaption><a download="{html.escape(name)}.svg" '
            f'href="data:image/svg+xml;base64,{base64.b64encode(svg.getvalue()).decode()}">SVG</a></figcaption>'
            "</figure>")


def si_scale(values, unit: str) -> tuple[float, str]:
    """The factor and the prefixed unit that put the largest of ``values`` between 1 and 1000 (``µJ``)."""
    scale, prefix = si_prefix(max((abs(float(v)) for v in values), default=0.0))
    return scale, prefix + unit


TERM_NAMES = {"neuromorphic.synops": "Loihi: synaptic ops", "neuromorphic.neuron_updates": "Loihi: neuron updates",
              "neuromorphic.spikes": "Loihi: spikes and messages", "neuromorphic.static": "Loihi: static power",
              "transfer": "link: Loihi to GPU", "gpu": "GPU: dense part"}
TIER_NAMES = {"cmos45nm_sops": "45 nm ops (Horowitz)", "loihi_plus_gpu": "Loihi + link + GPU",
              "gpu_only": "all-GPU baseline"}
DEVICE_STYLE = {"loihi": ("Loihi", "#dbe8f6", "#1f5fa8"), "gpu": ("GPU", "#f8dedb", "#b03a2e")}


def partition_diagram(part: dict | None) -> str:
    """The user's modules in order as boxes, Loihi's and the GPU's in two colours (the reason on hover and
    beneath), and the cut between them with what crosses it."""
    if not part or not part.get("placement"):
        return "<p>no placement recorded</p>"
    boxes, crossed = [], False
    for p in part["placement"]:
        label, fill, edge = DEVICE_STYLE[p["device"]]
        if p["device"] == "gpu" and not crossed and part.get("cut"):
            boxes.append(_cut_box(part["cut"]))
            crossed = True
        boxes.append(f'<div title="{html.escape(p["reason"])}" style="border:2px solid {edge};background:{fill};'
                     'border-radius:6px;padding:4px 8px;margin:3px;max-width:180px;font-size:12px">'
                     f'<b>{html.escape(p["module"])}</b><br><span style="color:{edge}">{label}</span><br>'
                     f'<span style="font-size:10px">{html.escape(p["reason"])}</span></div>')
    legend = " ".join(f'<span style="background:{fill};border:1px solid {edge};padding:0 6px">{label}</span>'
                      for label, fill, edge in DEVICE_STYLE.values())
    return (f'<p>{legend} (in the order the model calls them)</p>'
            f'<div style="display:flex;flex-wrap:wrap;align-items:stretch">{"".join(boxes)}</div>')


def _cut_box(cut: dict) -> str:
    """What crosses the cut, per step and per window, as measured in this run."""
    what = "spikes" if cut["reads"] == "spikes" else "membrane voltages (graded)"
    per = f"{cut['window_steps']} steps" if cut.get("window_steps") else f"{cut['steps']} steps (whole sample)"
    return ('<div style="align-self:center;margin:3px 6px;font-size:11px;text-align:center">&#8594; cut &#8594;'
            f'<br>{html.escape(cut["population"])}: {cut["values_per_step"]:,} {what} per step<br>'
            f'dense part takes {per}, schedule {html.escape(cut["schedule"])}<br>'
            f'measured: {number(cut["spikes_per_step"])} spikes per step</div>')


def sops_plot(data: dict) -> str:
    layers = data["sops"]["per_layer"]
    labels = data.get("layer_names", {})
    fig, ax = plt.subplots(figsize=(7, 3))
    names = list(layers)
    x = np.arange(len(names))
    ax.bar(x - 0.2, [layers[n]["dense"] for n in names], 0.4, label="dense (every pair)")
    ax.bar(x + 0.2, [layers[n]["effective"] for n in names], 0.4, label="effective (nonzero)")
    ax.set_xticks(x, [labels.get(n, n) for n in names], rotation=30, ha="right")
    ax.set_ylabel("SOPs per sample")
    ax.set_yscale("log")
    ax.legend(fontsize="small", loc="best")
    return png_img(fig, "synaptic_operations")


def raster_plot(spikes: dict[str, np.ndarray], labels: dict[str, str] | None = None) -> str:
    fig, ax = plt.subplots(figsize=(7, 3))
    offset, labels = 0, labels or {}
    for name, s in spikes.items():
        sample = s[0].reshape(s.shape[1], -1)
        t, n = np.nonzero(sample)
        ax.scatter(t, n + offset, s=2, label=labels.get(name, name))
        offset += sample.shape[1]
    ax.set_xlabel("time step")
    ax.set_ylabel("neuron (populations stacked)")
    ax.legend(markerscale=4, fontsize="small")
    return png_img(fig, "spike_raster")


def rates_plot(data: dict) -> str:
    """Per population: spikes per neuron per step, averaged over the run's samples and steps."""
    rates, labels = data["spike_rate"]["per_layer"], data.get("layer_names", {})
    fig, ax = plt.subplots(figsize=(7, 2.5))
    ax.bar(range(len(rates)), list(rates.values()), color="tab:blue")
    ax.set_xticks(range(len(rates)), [labels.get(n, n) for n in rates], rotation=30, ha="right")
    ax.set_ylabel("spikes per neuron per step")
    return png_img(fig, "firing_rates")


def quantization_plot(data: dict) -> str:
    """Per synapse: the RMS error of its fixed-point weights relative to the float weights' RMS, at the
    precision chosen for it (single: 8-bit mantissas; double: two synapses per weight)."""
    labels = data.get("layer_names", {})
    rows = [(labels.get(s["name"], s["name"]), s["rel_rms_err"], s.get("precision", "single"))
            for q in data.get("quantization") or [] for s in q["synapses"]]
    fig, ax = plt.subplots(figsize=(7, 2.5))
    colours = {"single": "tab:orange", "double": "tab:green"}
    for precision, colour in colours.items():
        xs = [i for i, r in enumerate(rows) if r[2] == precision]
        if xs:
            ax.bar(xs, [100 * rows[i][1] for i in xs], color=colour, label=f"{precision} precision")
    ax.set_xticks(range(len(rows)), [r[0] for r in rows], rotation=30, ha="right")
    ax.set_ylabel("weight RMS error (% of RMS)")
    ax.legend(fontsize="small")
    return png_img(fig, "quantization_error")


def energy_plot(data: dict) -> str:
    terms = {TERM_NAMES.get(k, k): v for k, v in data["energy_j"]["terms"].items() if not k.endswith("at_tdp")}
    tiers = {TIER_NAMES.get(k, k): v for k, v in data["tiers_j"].items()}
    scale, unit = si_scale([*terms.values(), *tiers.values()], "J")
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3))
    a.barh(list(terms), [v / scale for v in terms.values()])
    a.set_xscale("log")
    a.set_xlabel(f"energy per sample ({unit})")
    a.set_title("by term")
    b.bar(list(tiers), [v / scale for v in tiers.values()], color=["tab:gray", "tab:blue", "tab:red"])
    b.set_yscale("log")
    b.set_ylabel(f"energy per sample ({unit})")
    b.set_title("tiers")
    b.tick_params(axis="x", labelrotation=20)
    return png_img(fig, "energy")


def timeline_plot(data: dict, windows: int) -> str:
    lat = data["latency_s"]
    n = max(windows, 1)
    scale, unit = si_scale([lat["total"]], "s")
    per = {k: lat[k] / n / scale for k in ("neuromorphic", "transfer", "gpu")}
    fig, ax = plt.subplots(figsize=(7, 2))
    gpu_free = 0.0
    for i in range(n):  # a pipeline: window i's GPU work starts when its spikes arrived and the GPU is free
        nm_end = (i + 1) * per["neuromorphic"]
        gpu_start = max(nm_end + per["transfer"], gpu_free)
        ax.barh("neuromorphic", per["neuromorphic"], left=nm_end - per["neuromorphic"], color="tab:blue", edgecolor="w")
        ax.barh("transfer", per["transfer"], left=nm_end, color="tab:orange")
        ax.barh("GPU", per["gpu"], left=gpu_start, color="tab:red", edgecolor="w")
        gpu_free = gpu_start + per["gpu"]
    ax.set_xlabel(f"time from the sample's start ({unit}), modelled from the profiles; one block per window")
    return png_img(fig, "timeline_modelled")


def measured_timeline_plot(timeline: dict) -> str:
    """Per window, as measured on this machine: when its cut spikes left the spiking part (Lava or the
    emulator; tick) and the dense step (bar), for the first samples; the modelled plot beside it is the
    hardware's."""
    samples = sorted({w["sample"] for w in timeline["windows"]})[:3]
    windows = [w for w in timeline["windows"] if w["sample"] in samples]
    start = {b: timeline.get("sample_start_s", {}).get(b, timeline.get("sample_start_s", {}).get(str(b))) for b in samples}
    start = {b: s if s is not None else min(w["ready_s"] for w in windows if w["sample"] == b) for b, s in start.items()}
    scale, unit = si_scale([w["dense_end_s"] - start[w["sample"]] for w in windows], "s")
    fig, ax = plt.subplots(figsize=(7, 2))
    for w in windows:
        row, t0 = f"sample {w['sample']}", start[w["sample"]]
        ax.plot([(w["ready_s"] - t0) / scale], [row], "|", color="tab:blue", markersize=12)
        ax.barh(row, max(w["dense_end_s"] - w["dense_start_s"], 1e-9) / scale, left=(w["dense_start_s"] - t0) / scale,
                color="tab:red")
    ax.set_xlabel(f"time from the sample's start ({unit}), measured on this machine; tick: a window left the "
                  "spiking part; bar: its dense step", fontsize="small")
    return png_img(fig, "timeline_measured")


def html_table(rows: list[dict]) -> str:
    """A ``<table>`` of ``rows`` (their keys are the columns); ``none`` when there are none."""
    if not rows:
        return "<p>none</p>"
    return _table(None, list(rows[0]), [list(r.values()) for r in rows])


def _summary_rows(data: dict) -> list[dict]:
    agreement, e = data["agreement"], data["energy_j"]
    if data.get("gpu_only"):
        return [{"quantity": k, "value": v} for k, v in (
            ("model", data["model"]), ("runs on", "the GPU alone (Loihi cannot start it: see the notes)"),
            ("samples", data["num_samples"]), ("output max abs error", number(agreement["max_abs_err"])),
            ("MACs per sample", number(data["macs"]["total"])),
            ("GPU synaptic ops per sample (NeuroBench), ACs / MACs", gpu_sops_text(data.get("gpu_sops"))),
            ("energy per sample, GPU", si(e["total"], "J")),
            ("latency per sample, estimated", si(data["latency_s"]["total"], "s")),
            ("profiles", listing(data["profiles"])))]
    return [{"quantity": k, "value": v} for k, v in (
        ("model", data["model"]), ("mode", data["mode"]), ("schedule", data["schedule"]),
        ("samples", data["num_samples"]), ("spike mismatches vs PyTorch", number(agreement["spike_mismatches"])),
        ("output max abs error", number(agreement["max_abs_err"])),
        ("SOPs per sample (NeuroBench), effective / dense",
         f"{number(data['sops']['effective'])} / {number(data['sops']['dense'])}"),
        ("bias-line operations per sample (not NeuroBench SOPs)", number(data["sops"]["bias"]["effective"])),
        ("GPU synaptic ops per sample (NeuroBench), ACs / MACs", gpu_sops_text(data.get("gpu_sops"))),
        ("activation sparsity (NeuroBench)", number(data["activation_sparsity"]["value"])),
        ("membrane updates per sample (NeuroBench)", number(data["membrane_updates"]["value"])),
        ("energy per sample, Loihi + link + GPU", si(e["total"], "J")),
        ("  neuromorphic / transfer / GPU", " / ".join(si(e[k], "J") for k in ("neuromorphic", "transfer", "gpu"))),
        ("energy per sample, all-GPU baseline", si(data["baseline_gpu_only"]["energy_j"], "J")),
        ("latency per sample, estimated", si(data["latency_s"]["total"], "s")), ("profiles", listing(data["profiles"])))]


def _resource_rows(resources: dict | None, labels: dict[str, str]) -> list[dict]:
    """One row per population: its tiles, what each core holds and routes, the limit that binds."""
    rows = resources["populations"] if resources else []
    return [{"population": labels.get(r["name"], r["name"]), "neurons": f"{r['neurons']:,}", "cores": r["cores"],
             "tile per core (C x H x W)": " x ".join(map(str, r.get("tile", []))) or "n/a",
             "neurons per core": f"{r['neurons_per_core']:,}", "synapses per core": f"{r['synapses_per_core']:,}",
             "axons in / out per core": f"{r['fan_in']:,} / {r['fan_out']:,}",
             "binding limit": r.get("limit") or "n/a",
             "use of that limit": f"{r['use'][r['limit']]:.0%}" if r.get("use", {}).get(r.get("limit")) else "n/a"}
            for r in rows]


def _quantization_rows(data: dict) -> list[dict]:
    labels, rows = data.get("layer_names", {}), []
    for q in data.get("quantization") or []:
        for s in q["synapses"]:
            measured = q.get("calibration_disagreement") or {}
            rows.append({"population": labels.get(q["name"], q["name"]), "scale": f"{q['scale']:.4g}",
                         "limited by": limit_text(q["limited_by"], labels), "threshold": q["vth_mant"],
                         "synapse": labels.get(s["name"], s["name"]), "precision": s.get("precision", "single"),
                         "weight exponent": s["weight_exp"] if s.get("fine_exp") is None else
                         f"{s['weight_exp']} + {s['fine_exp']}",
                         "largest mantissa": s["mantissa_max"], "weights rounded to 0": s["zeroed"],
                         "clipped": s["clipped"], "rms error": f"{s['rel_rms_err']:.2%}",
                         "synapses / weights": f"{s.get('synapses', 0):,} / {s.get('weights', 0):,}",
                         "spikes unlike float, before / after (calibration inputs)":
                         " / ".join(f"{measured[k]:.2%}" for k in ("before", "after")) if measured else "n/a"})
    return rows


def html_page(title: str, body: str) -> str:
    """A self-contained page around ``body`` (the report's style)."""
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;max-width:1000px;margin:auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px}</style></head>"
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>")


def write_html(path: Path, data: dict, spikes: dict[str, np.ndarray], resources: dict | None, windows: int) -> Path:
    """Write the report; ``data`` is :func:`neurodeploy.cost.pricing.summary`'s dict."""
    labels = data.get("layer_names", {})
    if data.get("gpu_only"):
        return _write_page(path, data, [("Summary", html_table(_summary_rows(data))),
                                        ("Partition: what runs where", partition_diagram(data.get("partition"))),
                                        ("Energy by term and tier", energy_plot(data))])
    sections = [
        ("Summary", html_table(_summary_rows(data))),
        ("Partition: what runs where", partition_diagram(data.get("partition"))),
        ("Synaptic operations per layer", sops_plot(data)),
        ("Spike raster (first sample)", raster_plot(spikes, labels)),
        ("Firing rate per population", rates_plot(data)),
        ("Energy by term and tier", energy_plot(data)),
        ("Pipeline timeline, modelled (Loihi 2 + GPU)", timeline_plot(data, windows)),
        *([(f"Pipeline timeline, measured on {data['timeline']['measured_on']}",
            measured_timeline_plot(data["timeline"]))] if data.get("timeline") else []),
        ("Resource map" + (f" ({resources['profile']}: {resources['cores']} cores, {resources['chips']} chip(s))"
                           if resources else ""), html_table(_resource_rows(resources, labels))),
        ("Fixed point (Loihi integers) per population and synapse",
         (quantization_plot(data) if data.get("quantization") else "") + html_table(_quantization_rows(data))),
    ]
    return _write_page(path, data, sections)


def _write_page(path: Path, data: dict, sections: list[tuple[str, str]]) -> Path:
    """The page of ``sections`` (title, HTML), ending with the assumptions and the notes."""
    sections = [*sections, ("Assumptions (every figure used, with its source)",
                            html_table([a | {"value": figure_value(a["figure"], a["value"])}
                                        for a in data["assumptions"]]))]
    if data["notes"]:
        sections.append(("Notes", "".join(f"<p>{html.escape(n)}</p>" for n in data["notes"])))
    body = "".join(f"<h2>{html.escape(title)}</h2>{content}" for title, content in sections)
    write_file(path, html_page(f"neurodeploy report: {data['model']}", body))
    return Path(path)
