"""The report of a sweep: accuracy against energy and against latency per sample, the Pareto front
marked, and every point's configuration (an HTML page), and the front as a terminal table."""
from __future__ import annotations

import html
from pathlib import Path

from rich.console import Console
from rich.table import Table

from neurodeploy.analysis.pareto import chip_rows, pareto_front
from neurodeploy.bundle.atomic import write_file
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from neurodeploy.report.html import html_page, html_table, plt, png_img, si_scale
from neurodeploy.units import si

CONFIG_COLUMNS = ("cut", "loihi", "precision", "mode", "schedule", "early_exit", "exit_threshold", "event_threshold", "gpu")
COSTS = {"energy_j": ("energy per sample", "J"), "latency_s": ("latency per sample", "s")}


def label(row: dict) -> str:
    """A configuration in a few words: ``cut 1, fixed, loihi2 + h100, end``."""
    exits = ", early exit" if row["early_exit"] else ""
    if row["early_exit"] and row.get("exit_threshold", "bundle") != "bundle":
        exits += f" at {row['exit_threshold']}"
    events = f" (threshold {row['event_threshold']})" if row.get("event_threshold", "bundle") != "bundle" else ""
    precision = f" ({row['precision']} precision)" if row.get("precision", "auto") != "auto" else ""
    return (f"cut {row['cut']}, {row['mode']}, {row['loihi']}{precision} + {row['gpu']}, "
            f"{row['schedule']}{events}{exits}")


MARKERS = "osD^vP*X"


def pareto_plot(rows: list[dict], cost: str, png: Path | None = None) -> str:
    """Accuracy against ``cost`` (log scale) for every configuration: colour by cut, marker by GPU, hollow
    for float runs (before quantization: not what the chip runs, so never on the front); the front ringed
    in black and joined by a step line. Embedded as an <img> (with its SVG), and saved to ``png`` when given."""
    name, unit = COSTS[cost]
    front = pareto_front(rows, "accuracy", cost)
    scale, shown = si_scale([r[cost] for r in rows], unit)
    cuts, gpus = sorted({str(r["cut"]) for r in rows}), sorted({r["gpu"] for r in rows})
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    chips = chip_rows(rows)
    for r in rows:
        colour = plt.cm.tab10(cuts.index(str(r["cut"])) % 10)
        ax.scatter(r[cost] / scale, r["accuracy"], s=26, marker=MARKERS[gpus.index(r["gpu"]) % len(MARKERS)],
                   facecolors=colour if r in chips else "none", edgecolors=colour)
    ax.step([r[cost] / scale for r in front], [r["accuracy"] for r in front], where="post", c="k", lw=0.8)
    ax.scatter([r[cost] / scale for r in front], [r["accuracy"] for r in front], s=90, facecolors="none",
               edgecolors="k", lw=1.2)
    for r in front:
        ax.annotate(label(r), (r[cost] / scale, r["accuracy"]), fontsize=6, xytext=(4, -9), textcoords="offset points")
    handles = [Line2D([], [], ls="", marker="o", color=plt.cm.tab10(i % 10), label=f"cut {c}") for i, c in enumerate(cuts)]
    handles += [Line2D([], [], ls="", marker=MARKERS[i % len(MARKERS)], color="#555", label=g) for i, g in enumerate(gpus)]
    if len(chips) < len(rows):
        handles.append(Line2D([], [], ls="", marker="o", mfc="none", color="#555", label="float (not on the front)"))
    handles.append(Line2D([], [], marker="o", ms=9, mfc="none", color="k", lw=0.8, label="Pareto front"))
    ax.legend(handles=handles, fontsize="x-small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_xscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")  # 3, 10, 20 rather than 3 x 10^0 on the log axis
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel(f"{name} ({shown}, modelled)")
    ax.set_ylabel("deployed accuracy")
    if png is not None:
        write_file(png, lambda f: fig.savefig(f, format="png", dpi=150, bbox_inches="tight"))
    return png_img(fig, f"pareto_{cost}")


def _point_rows(rows: list[dict], table: list[dict]) -> list[dict]:
    """Table lines for ``rows``, each saying on which front of the whole ``table`` it lies."""
    fronts = {cost: {r["config_id"] for r in pareto_front(table, "accuracy", cost)} for cost in COSTS}
    return [{"id": r["config_id"], **{k: r[k] for k in CONFIG_COLUMNS}, "accuracy": f"{r['accuracy']:.3f}",
             "PyTorch accuracy": "" if r["torch_accuracy"] is None else f"{r['torch_accuracy']:.3f}",
             "energy": si(r["energy_j"], "J"), "latency": si(r["latency_s"], "s"),
             "SOPs": f"{r['sops_per_sample']:.4g}", "MACs": f"{r['macs_per_sample']:.4g}",
             "cores": r["loihi_cores"],
             "front": " ".join(n for cost, n in (("energy_j", "energy"), ("latency_s", "latency"))
                               if r["config_id"] in fronts[cost])} for r in rows]


def write_sweep_html(path: Path, result) -> Path:
    """The sweep report of a :class:`~neurodeploy.sweeps.run.SweepResult`; the two plots are also saved
    beside it as ``pareto_energy_j.png`` and ``pareto_latency_s.png``."""
    rows, folder = result.rows, Path(path).parent
    failed = [{"configurations": ", ".join(f["configs"]), "error": f["error"]} for f in result.failed]
    skipped = [{"configurations": ", ".join(f["configs"]), "why": f["error"]} for f in result.not_applicable]
    sections = [("Accuracy against energy per sample", pareto_plot(rows, "energy_j", folder / "pareto_energy_j.png") if rows else "<p>no rows</p>"),
                ("Pareto front: accuracy against energy", html_table(_point_rows(pareto_front(rows, "accuracy",
                                                                                           "energy_j"), rows))),
                ("Accuracy against latency per sample", pareto_plot(rows, "latency_s", folder / "pareto_latency_s.png") if rows else ""),
                ("Pareto front: accuracy against latency", html_table(_point_rows(pareto_front(rows, "accuracy",
                                                                                            "latency_s"), rows))),
                ("Every configuration", html_table(_point_rows(rows, rows))),
                ("Failed configurations", html_table(failed)),
                ("Configurations that do not exist (not applicable)", html_table(skipped))]
    note = (f"<p>{len(rows)} configurations from {html.escape(result.folder)}; energy and latency are modelled "
            "(Loihi and GPU profiles), accuracy is measured on the sweep's dataset.</p>")
    body = note + "".join(f"<h2>{html.escape(t)}</h2><div style='overflow-x:auto'>{c}</div>" for t, c in sections)
    write_file(path, html_page("neurodeploy sweep", body))
    return Path(path)


def print_front(rows: list[dict], console: Console | None = None) -> None:
    """The Pareto fronts (accuracy against energy, against latency) as terminal tables."""
    console = console or Console()
    for cost, (name, unit) in COSTS.items():
        table = Table(title=f"Pareto front: accuracy against {name}")
        for col in ("configuration", "accuracy", "energy", "latency", "id"):
            table.add_column(col)
        for r in pareto_front(rows, "accuracy", cost):
            table.add_row(label(r), f"{r['accuracy']:.3f}", si(r["energy_j"], "J"), si(r["latency_s"], "s"),
                          r["config_id"])
        console.print(table)
