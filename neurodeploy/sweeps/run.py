"""The sweep driver: configurations -> bundles -> tasks on workers -> the result table, the front, the report.

1. The configuration file gives the grid (:mod:`neurodeploy.sweeps.config`); ``cut = "all"`` expands to
   every valid cut of the model's chain (:func:`neurodeploy.compiler.partition.cuts`).
2. Rows already in the sweep folder's table are skipped (:mod:`neurodeploy.sweeps.results`).
3. One bundle per cut and neuromorphic profile is compiled (or reused from ``bundles/``) in this
   process, and the PyTorch model's predictions are computed once.
4. Tasks (one per bundle, mode, schedule and early-exit choice, each giving a row per GPU profile)
   run inline, on a local process pool or on Ray (:mod:`neurodeploy.parallel.executor`); bundles and the
   dataset are shipped to the workers once. Each finished row is appended to the table at once.
5. A failed task (a named error) is listed in the summary, not in the table: a resumed sweep tries it
   again. A configuration the bundle cannot run by design (a :class:`~neurodeploy.errors.ScheduleError`:
   early exits or the window schedule on a cut that moved populations to the GPU) is listed apart, as
   not applicable: a grid is a product and some of its points do not exist.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress

from neurodeploy.analysis.pareto import pareto_front
from neurodeploy.bundle.atomic import write_file
from neurodeploy.errors import NeurodeployError, ScheduleError, UsageError, one_line
from neurodeploy.sweeps.config import (DEFAULT_CUT, RUN_AXES, SweepConfig, bundle_key, configurations,
                                       load_config)
from neurodeploy.sweeps.results import ResultTable
from neurodeploy.sweeps.tasks import run_task
from neurodeploy.tables import data_frame, html_table
from neurodeploy.units import percent, si


@dataclass
class SweepResult:
    folder: str
    rows: list[dict]  # every row of the table, in the grid's order
    computed: int  # rows computed by this call
    resumed: int  # rows found in the table and not computed again
    failed: list[dict] = field(default_factory=list)  # {"configs": [...], "error": "Type: message"}
    not_applicable: list[dict] = field(default_factory=list)  # the same, for ScheduleErrors
    wall_s: float = 0.0

    def front(self, cost: str = "energy_j") -> list[dict]:
        return pareto_front(self.rows, "accuracy", cost)

    def as_dict(self) -> dict:
        return asdict(self) | {"front_energy": [r["config_id"] for r in self.front("energy_j")],
                               "front_latency": [r["config_id"] for r in self.front("latency_s")]}

    def __repr__(self) -> str:
        return (f"SweepResult({len(self.rows)} rows in {self.folder} ({self.computed} computed, {self.resumed} "
                f"resumed), {len(self.failed)} failed, {len(self.not_applicable)} not applicable; energy front "
                f"{len(self.front('energy_j'))} rows; {si(self.wall_s, 's')})")

    def _repr_html_(self) -> str:
        front = {r["config_id"] for r in self.front("energy_j")}
        rows = [[r["config_id"] + (" *" if r["config_id"] in front else ""), r["cut"], r["mode"], r["loihi"], r["gpu"],
                 percent(r.get("accuracy")), si(r.get("energy_j"), "J"), si(r.get("latency_s"), "s")]
                for r in self.rows]
        return html_table(f"{len(self.rows)} configurations in {self.folder} (* on the accuracy-energy front)",
                          ["configuration", "cut", "mode", "Loihi", "GPU", "accuracy", "energy / sample",
                           "latency / sample"], rows)

    def to_dataframe(self):
        """The result table, one row per configuration (pandas)."""
        return data_frame(self.rows)


def _model_and_data(cfg: SweepConfig):
    """The PyTorch model, the dataset (x, labels) and the model's dt."""
    from neurodeploy.compiler.resolve import resolve_model
    from neurodeploy.models import zoo

    resolved = resolve_model(cfg.model, weights=cfg.weights)
    model, dt_s = resolved.model, resolved.dt_s
    if cfg.data is not None:
        from neurodeploy.analysis.evaluate import load_dataset

        x, labels = load_dataset(cfg.data)
    elif cfg.model in zoo.ZOO and zoo.get(cfg.model).dataset is not None:
        x, labels = zoo.get(cfg.model).dataset("test", cfg.samples)
    else:
        raise UsageError(f"{cfg.model} has no dataset of its own: give data = \"test.npz\" (x and labels) in the "
                         "sweep configuration")
    return model.eval(), np.asarray(x, dtype=np.float32), np.asarray(labels), dt_s


def sweep_cuts(cfg: SweepConfig, model) -> list[str]:
    """The cuts of the grid: the ones named, or with ``cut = "all"`` every population of the model's chain;
    a captured model (any ``nn.Module`` that is not a HybridModel or a flat Sequential) has one cut, its own."""
    from neurodeploy.compiler.partition import cuts
    from neurodeploy.errors import PartitionError

    if cfg.grid.cut != "all":
        return list(dict.fromkeys(cfg.grid.cut))
    try:
        return cuts(model)
    except PartitionError:
        return [DEFAULT_CUT]


def _tasks(configs: list[dict], done: set[str]) -> list[dict]:
    """The missing rows grouped into tasks: one per bundle and run choice (mode, schedule, exits, thresholds)."""
    tasks: dict[tuple, dict] = {}
    for c in configs:
        if c["config_id"] in done:
            continue
        key = (bundle_key(c), *(c[k] for k in RUN_AXES))
        task = tasks.setdefault(key, {"bundle": key[0], **{k: c[k] for k in ("cut", "loihi", "precision", *RUN_AXES)},
                                      "gpus": [], "ids": {}})
        task["gpus"].append(c["gpu"])
        task["ids"][c["gpu"]] = c["config_id"]
    return list(tasks.values())


def _compile(cfg: SweepConfig, folder: Path, tasks: list[dict], x: np.ndarray, dt_s: float,
             console: Console) -> tuple[dict[str, Path], dict[str, str]]:
    """Bundle paths by key (compiled, or reused from ``bundles/``), and the compile error by key."""
    from neurodeploy.compiler.any_model import compile_model

    paths, errors = {}, {}
    for task in tasks:
        key = task["bundle"]
        if key in paths or key in errors:
            continue
        path = folder / "bundles" / key
        if not (path / "manifest.json").exists():
            console.print(f"compiling bundle {len(paths) + len(errors) + 1} of {len({t['bundle'] for t in tasks})}: "
                          f"{cfg.model} (cut {task['cut']}, {task['loihi']}, precision {task['precision']})")
            try:
                compile_model(cfg.model, path, inputs=x[:8], dt_s=dt_s, weights=cfg.weights, profile=task["loihi"],
                           cut=None if task["cut"] == DEFAULT_CUT else task["cut"], precision=task["precision"])
            except NeurodeployError as exc:
                errors[key] = f"{type(exc).__name__}: {one_line(exc)}"
                continue
        paths[key] = path
    return paths, errors


def _torch_predictions(model, x: np.ndarray, cfg: SweepConfig, tasks: list[dict],
                       paths: dict[str, Path]) -> dict[bool, np.ndarray]:
    """The PyTorch model's classes, as run whole (False) and through the event schedule (True: where a task
    runs the event schedule, its own or the bundle's, at the bundle's own threshold)."""
    from neurodeploy.analysis.evaluate import torch_predictions
    from neurodeploy.bundle import read_bundle

    def schedule(task: dict) -> str:
        return read_bundle(paths[task["bundle"]]).manifest.default_schedule if task["schedule"] == "bundle" \
            else task["schedule"]

    events = {False} | {True for t in tasks if t["event_threshold"] == "bundle" and schedule(t) == "event"}
    return {e: torch_predictions(model, x, cfg.chunk, event=e) for e in sorted(events)}


def sweep(config: str | Path | dict, out: str | Path, workers: int = 1, ray: str | None = None,
          progress: bool = True) -> SweepResult:
    """Run (or resume) the sweep ``config`` into the folder ``out``; see the module docstring."""
    t0, console = time.perf_counter(), Console(stderr=True, quiet=not progress)
    cfg, folder = load_config(config), Path(out)
    from neurodeploy.runtime.devices import resolve_device

    resolve_device(cfg.device)  # a device this machine lacks is refused before minutes of compiling
    model, x, labels, dt_s = _model_and_data(cfg)
    configs = configurations(cfg.grid, sweep_cuts(cfg, model))
    with ResultTable(folder) as table:
        return _sweep_into(table, cfg, folder, model, x, labels, dt_s, configs, workers, ray, console, progress, t0)


def _sweep_into(table: ResultTable, cfg: SweepConfig, folder: Path, model, x: np.ndarray, labels: np.ndarray,
                dt_s: float, configs: list[dict], workers: int, ray: str | None, console: Console, progress: bool,
                t0: float) -> SweepResult:
    """The missing rows computed into ``table`` (locked), the summary and the HTML page written."""
    resumed = sum(c["config_id"] in table.rows for c in configs)
    tasks = _tasks(configs, set(table.rows))
    paths, compile_errors = _compile(cfg, folder, tasks, x, dt_s, console)
    failed = [{"configs": list(t["ids"].values()), "error": compile_errors[t["bundle"]]} for t in tasks
              if t["bundle"] in compile_errors]
    not_applicable: list[dict] = []
    runnable = [t for t in tasks if t["bundle"] in paths]
    from neurodeploy.parallel.shipping import for_workers

    shared = {"bundles": {k: for_workers(p, workers, ray) for k, p in paths.items()}, "x": x, "labels": labels,
              "backend": cfg.backend, "device": cfg.device, "chunk": cfg.chunk,
              "price_samples": cfg.price_samples,
              "torch_predictions": _torch_predictions(model, x, cfg, runnable, paths)}
    computed = _run(runnable, shared, workers, ray, table, (failed, not_applicable), console, progress)
    rows = [table.rows[c["config_id"]] for c in configs if c["config_id"] in table.rows]
    result = SweepResult(str(folder), rows, computed, resumed, failed, not_applicable, time.perf_counter() - t0)
    write_file(folder / "results.json", json.dumps({"config": cfg.model_dump(), **result.as_dict()}, indent=2))
    from neurodeploy.report.sweep_html import write_sweep_html

    write_sweep_html(folder / "sweep.html", result)
    return result


def _run(tasks: list[dict], shared: dict, workers: int, ray: str | None, table: ResultTable,
         failures: tuple[list, list], console: Console, progress: bool) -> int:
    """Run the tasks, appending each row as it arrives, and each failure to ``failures`` (failed, not
    applicable: a ScheduleError); the number of rows written."""
    from neurodeploy.parallel.executor import map_tasks

    written = 0
    with Progress(console=console, disable=not progress) as bar:
        overall = bar.add_task("sweep", total=sum(len(t["gpus"]) for t in tasks))
        per_worker: dict[str, int] = {}
        for done in map_tasks(run_task, tasks, shared, workers, ray):
            task = tasks[done.index]
            if done.failed:
                err, (failed, not_applicable) = done.result, failures
                (not_applicable if isinstance(err, ScheduleError) else failed).append(
                    {"configs": list(task["ids"].values()), "error": f"{type(err).__name__}: {one_line(err)}"})
            else:
                written += sum(table.add(row) for row in done.result)
            if done.worker not in per_worker:
                per_worker[done.worker] = bar.add_task(f"  {done.worker}", total=None)
            bar.advance(per_worker[done.worker], len(task["gpus"]))
            bar.advance(overall, len(task["gpus"]))
    return written
