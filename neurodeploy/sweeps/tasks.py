"""What one worker does for one sweep task: evaluate a configuration on the dataset and price it.

A task is a bundle (one cut and neuromorphic profile) with one mode, schedule and early-exit choice;
it gives one row per GPU profile. Every figure comes from the code the single-run commands use:
accuracy and SOPs per sample from :func:`neurodeploy.analysis.evaluate.evaluate` over the whole
dataset, energy, latency and MACs from :func:`neurodeploy.cost.pricing.summary` (what ``neurodeploy
energy`` prints) on the first ``price_samples`` samples, resources from the bundle's resource map.
"""
from __future__ import annotations

import time

import numpy as np

ROW_FIELDS = ("config_id", "cut", "loihi", "precision", "mode", "schedule", "early_exit", "exit_threshold", "event_threshold",
              "gpu", "backend", "samples",
              "accuracy", "torch_accuracy", "agreement", "sops_per_sample", "macs_per_sample", "energy_j",
              "energy_loihi_j", "energy_transfer_j", "energy_gpu_j", "latency_s", "gpu_only_energy_j",
              "gpu_only_latency_s", "loihi_cores", "loihi_chips", "price_samples", "wall_s")
"""The columns of the sweep table, in order (energy and latency per sample; with early exits, as run up
to each sample's exit)."""


def run_task(task: dict, shared: dict) -> list[dict]:
    """Rows of ``task`` (one per GPU profile in ``task["gpus"]``); ``shared``: bundles, data, run options."""
    from neurodeploy.analysis.evaluate import evaluate
    from neurodeploy.cost.pricing import summary
    from neurodeploy.runtime.cosim import run_cosim
    from neurodeploy.parallel.shipping import unpack

    t0 = time.perf_counter()
    bundle = unpack(shared["bundles"][task["bundle"]])
    schedule = bundle.manifest.default_schedule if task["schedule"] == "bundle" else task["schedule"]
    bundle = with_thresholds(bundle, task, schedule)
    x, labels = shared["x"], shared["labels"]
    own_events = schedule == "event" and task["event_threshold"] == "bundle"  # else PyTorch's whole-sequence run
    ev = evaluate(bundle, x, labels, shared["backend"], task["mode"], schedule, chunk=shared["chunk"],
                  progress=False, early_exit=task["early_exit"],
                  reference_predictions=shared["torch_predictions"][own_events], device=shared["device"])
    priced = run_cosim(bundle, x[: shared["price_samples"]], mode=task["mode"], backend=shared["backend"],
                       progress=False, schedule=schedule, early_exit=task["early_exit"], device=shared["device"])
    return [_row(task, gpu, bundle, ev, summary(bundle, priced, task["loihi"], gpu), shared, t0)
            for gpu in task["gpus"]]


def with_thresholds(bundle, task: dict, schedule: str):
    """``bundle`` with the task's early-exit and event thresholds in place of its own (in memory; the
    files are untouched), by the rules of :func:`neurodeploy.bundle.schedules.with_thresholds` (a threshold
    that does not apply is a ScheduleError: not applicable)."""
    from neurodeploy.bundle import Bundle
    from neurodeploy.bundle.schedules import with_thresholds as thresholds_set

    given = {k: None if task[k] == "bundle" else task[k] for k in ("exit_threshold", "event_threshold")}
    manifest = thresholds_set(bundle.manifest, schedule, task["early_exit"], **given)
    return bundle if manifest is bundle.manifest else Bundle(bundle.path, manifest)


def _row(task: dict, gpu: str, bundle, ev, figures: dict, shared: dict, t0: float) -> dict:
    exits = figures.get("early_exit")
    energy, latency = figures["energy_j"], figures["latency_s"]
    resources = (bundle.manifest.spiking.resources if bundle.manifest.spiking is not None else None) or {}
    return {
        "config_id": task["ids"][gpu], "cut": task["cut"], "loihi": task["loihi"], "precision": task["precision"],
        "mode": task["mode"],
        "schedule": task["schedule"], "early_exit": task["early_exit"], "exit_threshold": task["exit_threshold"],
        "event_threshold": task["event_threshold"], "gpu": gpu, "backend": shared["backend"],
        "samples": ev.samples, "accuracy": ev.accuracy, "torch_accuracy": ev.torch_accuracy,
        "agreement": ev.agreement, "sops_per_sample": ev.sops_per_sample,
        "macs_per_sample": figures["macs"]["total"],
        "energy_j": exits["energy_j"]["with_exits"] if exits else energy["total"],
        "energy_loihi_j": energy["neuromorphic"], "energy_transfer_j": energy["transfer"],
        "energy_gpu_j": energy["gpu"],
        "latency_s": exits["latency_s"]["with_exits"] if exits else latency["total"],
        "gpu_only_energy_j": figures["baseline_gpu_only"]["energy_j"],
        "gpu_only_latency_s": figures["baseline_gpu_only"]["latency_s"],
        "loihi_cores": resources.get("cores"), "loihi_chips": resources.get("chips"),
        "price_samples": int(figures["num_samples"]), "wall_s": float(np.round(time.perf_counter() - t0, 3)),
    }
