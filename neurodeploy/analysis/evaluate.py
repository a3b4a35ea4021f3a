"""Dataset-level evaluation: the deployed model's accuracy over a labelled test set, beside PyTorch's.

The deployed model is the bundle as it would run: the spiking part in fixed point (or float) on the
emulator (or Lava), its spikes through the adapter into the dense part in ONNX Runtime. Samples go
through :func:`neurodeploy.runtime.cosim.run_cosim` ``chunk`` at a time, so a test set of any size is held in
memory one chunk at a time. A prediction is the argmax of the model output; for an output per window
(streaming back-ends) the last window's; for a spiking-only bundle the output population's spike count.

A dataset file is an ``.npz`` with ``x`` (B, T, *input_shape), time-major per sample, and ``labels`` (B,).
"""
from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from rich.progress import Progress

from neurodeploy.bundle import Bundle
from neurodeploy.compiler.torch_reference import torch_output
from neurodeploy.cost.counts import neurobench_sops, synaptic_ops
from neurodeploy.errors import DatasetError
from neurodeploy.exporters.onnx_session import reused_sessions
from neurodeploy.runtime.checkpoint import Checkpoint, run_key
from neurodeploy.runtime.cosim import run_cosim
from neurodeploy.runtime.early_exit import exit_outputs
from neurodeploy.tables import data_frame, html_table, stderr_console
from neurodeploy.units import number, percent, si

DEFAULT_CHUNK = 256
TORCH_CHUNK = 128
"""At most this many samples per call of the PyTorch reference: its peak memory is the user's model's
activations for a whole call (liquidspikeformer at 256 samples: 115 MiB above the rest of the evaluation,
the peak of it; at 128 the 2,000/200-sample peak ratio of ``benchmarks/evaluate_memory.py`` went from 1.127
to 1.085-1.091, the reference about 10 % slower on this small model)."""


@dataclass
class Evaluation:
    samples: int
    accuracy: float  # the deployed model's
    torch_accuracy: float | None  # the PyTorch model's, on the same samples
    agreement: float | None  # fraction of samples where the deployed and the PyTorch model predict the same class
    backend: str
    mode: str
    schedule: str
    wall_s: float
    sops_per_sample: float
    mean_exit_window: float | None = None  # with early exits: windows run per sample, on average
    note: str | None = None  # why there is no PyTorch accuracy, where a model could be given

    def as_dict(self) -> dict:
        return asdict(self)

    def __repr__(self) -> str:
        torch = (f"; {self.note}" if self.note else "") if self.torch_accuracy is None else \
            f", PyTorch {percent(self.torch_accuracy)}, same class on {percent(self.agreement)}"
        return (f"Evaluation({self.samples} samples, {self.backend} {self.mode}, schedule {self.schedule}: accuracy "
                f"{percent(self.accuracy)}{torch}; {number(self.sops_per_sample)} SOPs/sample; "
                f"{si(self.wall_s, 's')})")

    def _repr_html_(self) -> str:
        rows = [["deployed accuracy", percent(self.accuracy)], ["PyTorch accuracy", percent(self.torch_accuracy)],
                ["same class as PyTorch", percent(self.agreement)], ["SOPs / sample", number(self.sops_per_sample)],
                ["mean exit window", number(self.mean_exit_window)], ["wall time", si(self.wall_s, "s")]]
        return html_table(f"{self.samples} samples, {self.backend} ({self.mode}), schedule {self.schedule}",
                          ["quantity", "value"], rows)

    def to_dataframe(self):
        """One row: every field (pandas)."""
        return data_frame([self.as_dict()])


def load_dataset(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``labels`` from an ``.npz`` file, checked against each other."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("x", "labels") if k not in data]
            if missing:
                raise DatasetError(f"{path}: no array named {', '.join(missing)} (found {', '.join(data.files)}); "
                                   "save with np.savez(path, x=inputs, labels=labels)")
            x, labels = data["x"], data["labels"]
    except (OSError, ValueError) as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"cannot read the dataset {path}: {exc}") from exc
    if labels.ndim != 1 or len(labels) != len(x) or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(f"{path}: labels must be integers of shape ({len(x)},), one per sample of x; "
                           f"got {labels.dtype} {labels.shape}")
    return x, labels


def predictions(y: np.ndarray, spiking_only: bool) -> np.ndarray:
    """Class per sample: argmax of y (B, n_out); of the last window of y (B, L, n_out); for a spiking-only
    bundle, of the output spike counts over time (y (B, T, n))."""
    y = np.asarray(y)
    if spiking_only:
        y = y.reshape(len(y), y.shape[1], -1).sum(axis=1)
    elif y.ndim == 3:
        y = y[:, -1]
    return np.argmax(y, axis=-1)


def torch_predictions(model: torch.nn.Module, x: np.ndarray, chunk: int = DEFAULT_CHUNK,
                      event: bool = False, layout: str = "BT") -> np.ndarray:
    """The PyTorch model's classes for x (B, T, ...), ``chunk`` samples at a time (at most :data:`TORCH_CHUNK`)."""
    chunk = min(chunk, TORCH_CHUNK)
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(x), chunk):
            y = torch_output(model, torch.as_tensor(x[start: start + chunk], dtype=torch.float32), layout=layout,
                             event=event)
            out.append(predictions(y.numpy(), False))
    return np.concatenate(out)


@dataclass
class ChunkOutcome:
    predictions: np.ndarray  # (n,) classes of the deployed model
    exit_windows: np.ndarray | None  # (n,) with early exits
    sops: float  # NeuroBench SOPs of the n samples together


def chunk_outcome(bundle: Bundle, x: np.ndarray, backend: str, mode: str, schedule: str,
                  early_exit: bool, device: str | None = None, threads: int | None = None) -> ChunkOutcome:
    """The deployed model's classes (and exit windows) for one chunk of samples, and its SOPs."""
    result = run_cosim(bundle, x, mode=mode, backend=backend, progress=False, schedule=schedule, early_exit=early_exit,
                       device=device, threads=threads)
    if result.exit_windows is not None:
        preds = np.argmax(exit_outputs(result.y, result.exit_windows), axis=-1)
    else:
        preds = predictions(result.y, bundle.manifest.spiking_only)
    sops = 0.0 if result.plan is None else neurobench_sops(synaptic_ops(result.plan, result.inputs, result.spikes))
    outcome = ChunkOutcome(preds, result.exit_windows, sops * len(x))
    del result
    _release_freed_memory()
    return outcome


def _release_freed_memory() -> None:
    """Hand the pages a chunk freed back to the system (glibc's ``malloc_trim``; elsewhere nothing): the
    stream's two threads leave the heap fragmented, and without this a 2,000-sample evaluation peaked 10.5 %
    above a 200-sample one (measured with ``benchmarks/evaluate_memory.py``)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim`` from the running process's own symbols (looked up once), or None."""
    import ctypes

    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def _chunk_task(span: tuple[int, int], shared: dict) -> ChunkOutcome:
    """One evaluation chunk on a worker (:func:`neurodeploy.parallel.executor.map_tasks`)."""
    from neurodeploy.parallel.shipping import unpack

    start, stop = span
    return chunk_outcome(unpack(shared["bundle"]), shared["x"][start:stop], **shared["run"], device=shared["device"],
                         threads=shared["threads"])


def _run_chunks(bundle: Bundle, x: np.ndarray, spans: list[tuple[int, int]], run: dict, workers: int,
                ray: str | None, saved: Checkpoint | None, progress: bool,
                device: str | None = None, threads: int | None = None) -> dict[int, ChunkOutcome]:
    """Every chunk's outcome by index: those a checkpoint holds, the others run (and appended to it)."""
    from neurodeploy.parallel.executor import map_tasks
    from neurodeploy.parallel.shipping import for_workers

    outcomes = {} if saved is None else {int(r["index"]): _outcome_of(r) for r in saved.load()}
    todo = [i for i in range(len(spans)) if i not in outcomes]
    shared = {"bundle": for_workers(bundle.path, workers, ray), "x": x, "run": run, "device": device,
              "threads": threads}
    with Progress(console=stderr_console(), disable=not progress) as bar, reused_sessions():
        task = bar.add_task(f"evaluating ({run['backend']}, {run['mode']})", total=len(x),
                            completed=sum(len(o.predictions) for o in outcomes.values()))
        for done in map_tasks(_chunk_task, [spans[i] for i in todo], shared, workers, ray):
            if done.failed:
                raise done.result
            index, outcome = todo[done.index], done.result
            outcomes[index] = outcome
            if saved is not None:
                saved.append(_record_of(index, outcome), len(outcomes), len(spans))
            bar.advance(task, len(outcome.predictions))
    return outcomes


def _record_of(index: int, o: ChunkOutcome) -> dict[str, np.ndarray]:
    record = {"index": np.array(index), "predictions": o.predictions, "sops": np.array(o.sops)}
    return record if o.exit_windows is None else record | {"exit_windows": o.exit_windows}


def _outcome_of(record: dict[str, np.ndarray]) -> ChunkOutcome:
    return ChunkOutcome(record["predictions"], record.get("exit_windows"), float(record["sops"]))


def evaluate(bundle: Bundle, x: np.ndarray, labels: np.ndarray, backend: str = "emulator", mode: str = "fixed",
             schedule: str = "end", torch_model: torch.nn.Module | None = None, chunk: int = DEFAULT_CHUNK,
             progress: bool = True, early_exit: bool = False, workers: int = 1, ray: str | None = None,
             reference_predictions: np.ndarray | None = None, checkpoint: str | Path | None = None,
             device: str | None = None, threads: int | None = None) -> Evaluation:
    """Accuracy of the deployed model on (x, labels); with ``torch_model`` (or its ``reference_predictions``
    computed before), PyTorch's beside it (always read from the last window: what the PyTorch model computes
    without exits). Chunks of ``chunk`` samples run on ``workers`` local processes or on Ray (``ray``: an
    address, ``auto`` or ``local``); the figures do not depend on where they ran. With ``checkpoint`` (a
    folder), each finished chunk is appended there and a rerun of the same evaluation runs only the others.
    The PyTorch model runs at most :data:`TORCH_CHUNK` samples at a time (its activations are the peak).
    ``device`` places the emulator and the dense part (:mod:`neurodeploy.runtime.devices`; not part of the
    checkpoint's key: the figures do not depend on it); ``threads`` the threads each run computes on
    (:mod:`neurodeploy.runtime.threads`; default torch's setting, a worker's share)."""
    from neurodeploy.runtime.devices import resolve_device
    from neurodeploy.runtime.threads import thread_count

    resolve_device(device)  # a device this machine lacks is refused before the first chunk
    if threads is not None:
        thread_count(threads)  # a bad count is refused before the first chunk
    run = dict(backend=backend, mode=mode, schedule=schedule, early_exit=early_exit)
    spans = [(start, min(start + chunk, len(x))) for start in range(0, len(x), chunk)]
    saved = None if checkpoint is None else \
        Checkpoint(checkpoint, run_key(x, labels, chunk, sorted(run.items()), sorted(bundle.manifest.checksums.items())))
    t0 = time.perf_counter()
    outcomes = _run_chunks(bundle, x, spans, run, workers, ray, saved, progress, device, threads)
    ordered = [outcomes[i] for i in range(len(spans))]
    deployed = np.concatenate([o.predictions for o in ordered]) if ordered else np.zeros(0, dtype=int)
    exits = [o.exit_windows for o in ordered if o.exit_windows is not None]
    reference = reference_predictions if torch_model is None else \
        torch_predictions(torch_model, x, chunk, schedule == "event", bundle.manifest.input_layout)
    return Evaluation(
        samples=len(x), accuracy=float(np.mean(deployed == labels)),
        torch_accuracy=None if reference is None else float(np.mean(reference == labels)),
        agreement=None if reference is None else float(np.mean(reference == deployed)),
        backend=backend, mode=mode, schedule=schedule, wall_s=time.perf_counter() - t0,
        sops_per_sample=sum(o.sops for o in ordered) / max(len(x), 1),
        mean_exit_window=float(np.concatenate(exits).mean() + 1) if exits else None)
