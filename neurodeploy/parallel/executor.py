"""Map ``fn(task, shared)`` over independent tasks and yield each result as it finishes.

Three executors, one interface (:func:`map_tasks`):

- inline (``workers=1``, no Ray): in this process, in order;
- a local process pool (``workers=N``): N spawned processes, ``shared`` sent to each once (its initializer);
- Ray (``ray="auto"``, ``"local"`` or a cluster address): ``shared`` put in Ray's object store once, every
  task a Ray task that Ray retries when its worker dies (``max_retries``), so a killed worker loses
  nothing; results are yielded by the caller's process only, so nothing is counted twice.

``fn`` must be a module-level function (it is pickled by reference). A task that raises gives its
exception as the result; the caller decides what a failure means.

Pool and Ray runs get a scratch folder (private, made by the caller's process, removed by it when the run
ends, however it ends): workers on this machine unpack shipped bundles there (:func:`scratch_folder`), so a
worker that is killed (Ray's ``force`` cancel, ``ray.shutdown``) leaves nothing in the temporary folder.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from neurodeploy.errors import DependencyError, UsageError
from neurodeploy.parallel.orphans import exit_when_orphaned

RAY_RETRIES = 3
_SHARED: dict[str, Any] = {}
_SCRATCH: dict[str, str] = {}  # "folder": the scratch folder of the run this worker's task belongs to


def scratch_folder() -> str | None:
    """The scratch folder of the pool or Ray run whose task this process is running, if it is on this
    machine (a Ray worker elsewhere: None)."""
    folder = _SCRATCH.get("folder")
    return folder if folder is not None and os.path.isdir(folder) else None


@dataclass
class Done:
    index: int  # position of the task in the list given
    result: Any  # fn's return value, or the exception it raised
    worker: str  # "pid 1234" (pool), the Ray worker's pid, or "inline"

    @property
    def failed(self) -> bool:
        return isinstance(self.result, BaseException)


def _call(fn: Callable, task: Any, shared: Any, scratch: str | None = None) -> tuple[Any, str]:
    if scratch is not None:
        _SCRATCH["folder"] = scratch
    try:
        return fn(task, shared), f"pid {os.getpid()}"
    except Exception as exc:  # noqa: BLE001 - handed to the caller as this task's result
        return exc, f"pid {os.getpid()}"


def _pool_init(shared: Any, threads: int, scratch: str) -> None:
    """A pool worker: ``shared`` kept for its tasks; torch limited to its share of the cores (as Ray does),
    so that N workers do not run N x cores threads."""
    import torch

    exit_when_orphaned()  # a killed sweep or evaluation leaves no worker behind
    torch.set_num_threads(threads)
    _SHARED["value"] = shared
    _SCRATCH["folder"] = scratch


def _pool_call(fn: Callable, task: Any) -> tuple[Any, str]:
    return _call(fn, task, _SHARED["value"])


def map_tasks(fn: Callable, tasks: list, shared: Any, workers: int = 1, ray: str | None = None) -> Iterator[Done]:
    """Yield a :class:`Done` per task as tasks finish (inline: in order)."""
    if ray is None and workers <= 1:
        for i, task in enumerate(tasks):
            result, _ = _call(fn, task, shared)
            yield Done(i, result, "inline")
        return
    scratch = tempfile.mkdtemp(prefix="neurodeploy-run-")
    try:
        if ray is not None:
            yield from _ray_map(fn, tasks, shared, ray, scratch)
        else:
            yield from _pool_map(fn, tasks, shared, workers, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _pool_map(fn: Callable, tasks: list, shared: Any, workers: int, scratch: str) -> Iterator[Done]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    workers = min(workers, max(len(tasks), 1))
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(max_workers=workers, initializer=_pool_init, initargs=(shared, threads, scratch),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_pool_call, fn, task): i for i, task in enumerate(tasks)}
        try:
            for future in as_completed(futures):
                result, worker = future.result()
                yield Done(futures[future], result, worker)
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def import_ray():
    """Ray, or a :class:`DependencyError` saying what to install."""
    try:
        import ray
    except ImportError as exc:
        raise DependencyError("--ray needs Ray, an optional extra: pip install 'neurodeploy[ray]' "
                              f"(import failed: {exc})") from None
    return ray


def connect(address: str):
    """Ray, connected: to the cluster already initialised in this process, else to ``address`` (``auto``: the
    running cluster ``ray start`` made; ``local``: a new one on this machine)."""
    ray = import_ray()
    if not ray.is_initialized():
        try:
            ray.init(address=None if address == "local" else address, include_dashboard=False,
                     log_to_driver=False, logging_level="ERROR")
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UsageError(f"cannot connect to a Ray cluster at {address!r}: {exc}; start one with "
                             "`ray start --head`, or use a new cluster on this machine: ray=\"local\" in the API, "
                             "--ray local on the CLI") from None
    return ray


def _ray_map(fn: Callable, tasks: list, shared: Any, address: str, scratch: str) -> Iterator[Done]:
    ray = connect(address)
    remote = ray.remote(max_retries=RAY_RETRIES, retry_exceptions=False)(_call)
    shared_ref = ray.put(shared)
    pending = {remote.remote(fn, task, shared_ref, scratch): i for i, task in enumerate(tasks)}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                index = pending.pop(ref)
                try:
                    result, worker = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - the worker died more often than Ray retries
                    result, worker = exc, "ray"
                yield Done(index, result, f"ray {worker}")
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
