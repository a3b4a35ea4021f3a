"""The report of a sweep: accuracy against energy and against latency per sample, the Pareto front
marked, and every point's configuration (an HTML page), and the front as a terminal table."""
from __future__ import annotations

import html
from pathlib import Path

from rich.console import Console
from rich.table import Table

from neurodeploy.analysis.pareto import chip_rows, pareto_front
from neurodeploy.bundle.atomic import write_file
from neurodeploy.report.html import html_page, html_table, plt, png_img
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


def pareto_plot(rows: list[dict], cost: str, png: Path | None = None) -> str:
    """Accuracy against ``cost`` (log scale): every configuration, the front joined by a step line; the
    figure embedded as an <img>, and also saved to ``png`` when given."""
    name, unit = COSTS[cost]
    front = pareto_front(rows, "accuracy", cost)
    ids = {r["config_id"] for r in front}
    fig, ax = plt.subplots(figsize=(7, 3.5))
    others = [r for r in chip_rows(rows) if r["config_id"] not in ids]
    ax.scatter([r[cost] for r in others], [r["accuracy"] for r in others], s=18, c="#999", label="dominated")
    floats = [r for r in rows if r not in chip_rows(rows)]
    if floats:
        ax.scatter([r[cost] for r in floats], [r["accuracy"] for r in floats], s=18, facecolors="none",
                   edgecolors="#999", label="float (before quantization; not on the front)")
    ax.step([r[cost] for r in front], [r["accuracy"] for r in front], where="post", c="C3", lw=1)
    ax.scatter([r[cost] for r in front], [r["accuracy"] for r in front], s=30, c="C3", label="Pareto front")
    for r in front:
        ax.annotate(label(r), (r[cost], r["accuracy"]), fontsize=6, xytext=(3, -8), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel(f"{name} ({unit}, modelled)")
    ax.set_ylabel("deployed accuracy")
    ax.legend(fontsize="small", loc="lower right")
    if png is not None:
        write_file(png, lambda f: fig.savefig(f, format="png", dpi=110, bbox_inches="tight"))
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
    body = note + "".join(f"<h2>{html.escape(t)}</h2>{c}" for t, c in sections)
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
