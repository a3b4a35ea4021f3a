"""The co-simulation one sample after another, for runs that do not stream: a feedback channel (Lava pauses
at each window), a checkpoint (saved after every sample, resumed after the last finished one), a plan Lava
cannot stream, spiking-only bundles (whose ``y`` is the spikes of their first Output node), and
``stream=False``. The emulator computes the batch at once, then the dense part runs per sample. With a
checkpoint, each finished sample is appended to it (:mod:`neurodeploy.runtime.checkpoint`).
"""
from __future__ import annotations

import time

import numpy as np
from rich.progress import track

from neurodeploy.runtime.checkpoint import Checkpoint
from neurodeploy.runtime.cosim_setup import CosimRun
from neurodeploy.runtime.runners import SampleSpikes, open_runner
from neurodeploy.tables import stderr_console


def run_sample_by_sample(run: CosimRun, saved: Checkpoint | None, notes: list[str]):
    """(spikes per population (B, T, ...), y (B, ...), wall times, the inputs with their feedback currents)."""
    x, plan, backend = run.x, run.plan, run.backend
    batch, steps = x.shape[:2]
    spikes = {n.name: np.zeros((batch, steps, *n.shape), dtype=n.output_dtype) for n in plan.neurons}
    wall = {"lava": 0.0, backend: 0.0, "transfer": 0.0, "dense": 0.0}
    x_run = x if run.feedback is None else np.zeros((batch, steps, plan.n_in))  # with the feedback currents
    start, ys = _resume(saved, spikes, x_run)
    with open_runner(backend, plan, steps, run.mode, run.device.torch) as runner:
        batched = None
        if backend == "emulator" and run.feedback is None:  # the whole batch at once, then the dense part per sample
            batched, wall["emulator"] = runner.run_many(x[start:], progress=run.show_progress)
        for b in track(range(start, batch), description="co-simulating", disable=not run.show_progress,
                       console=stderr_console()):
            if run.feedback is not None:
                sample, y_fb, x_run[b] = run.feedback.run(runner, x[b])
            elif batched is not None:
                sample = SampleSpikes({name: s[b - start] for name, s in batched.items()}, 0.0)
            else:
                sample = runner.run_sample(x[b])
            wall[backend] += sample.wall_s
            for name, s in sample.spikes.items():
                spikes[name][b] = s
            ys.append(y_fb if run.feedback is not None else _dense_output(run, spikes, b, wall))
            if saved is not None:
                saved.append({**{f"spikes/{k}": v[b: b + 1] for k, v in spikes.items()}, "y": ys[-1][None],
                              "x_sops": x_run[b: b + 1]}, b + 1, batch)
    if saved is not None:
        notes.append(f"resumed after {start} of {batch} samples" if start else f"checkpoint in {saved.folder}")
    return spikes, np.stack(ys), wall, x_run


def _resume(saved: Checkpoint | None, spikes: dict[str, np.ndarray], x_run: np.ndarray) -> tuple[int, list]:
    """The samples a checkpoint already holds, copied in: (how many, their outputs)."""
    records = [] if saved is None else saved.load()
    if not records:
        return 0, []
    start = sum(len(r["y"]) for r in records)
    for name in spikes:
        spikes[name][:start] = np.concatenate([r[f"spikes/{name}"] for r in records])
    x_run[:start] = np.concatenate([r["x_sops"] for r in records])
    return start, [y for r in records for y in r["y"]]


def _dense_output(run: CosimRun, spikes: dict[str, np.ndarray], b: int, wall: dict[str, float]) -> np.ndarray:
    """Sample b's output: the dense part on its cut spikes; a spiking-only bundle's is the spikes of its
    first Output node."""
    if run.dense is None:
        return spikes[next(iter(run.plan.outputs.values()))][b]
    t_cut = time.perf_counter()
    cut = run.plan.cut_values(run.cut, spikes[run.cut][b: b + 1]).astype(np.float32)
    t0 = time.perf_counter()
    wall["transfer"] += t0 - t_cut
    y = run.dense.run(cut)
    wall["dense"] += time.perf_counter() - t0
    return y
