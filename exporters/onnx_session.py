"""ONNX Runtime sessions for the dense part, with execution-provider selection.

The CUDA provider (``pip install neurodeploy[gpu]``, which brings ``onnxruntime-gpu``) is used when
ONNX Runtime offers it and a GPU is present; otherwise the CPU provider, one intra-op thread per core.
Within :func:`reused_sessions` (an evaluation's chunks), a file opened again with the same options gets the
session made before.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import onnxruntime as ort

from neurodeploy.errors import OnnxLoadError, OnnxRunError


def select_providers(prefer_gpu: bool = True) -> list[str]:
    """CUDA when onnxruntime offers it (and a GPU is present), else CPU."""
    available = ort.get_available_providers()
    if prefer_gpu and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


_REUSED: ContextVar[dict | None] = ContextVar("neurodeploy_sessions", default=None)


@contextmanager
def reused_sessions() -> Iterator[None]:
    """Within it (in this thread), :func:`make_session` hands back the session it made before for the same file
    (path, size, modification time) and options, and all of them are let go at the end. An evaluation's
    chunks each open the bundle's sessions: a new session per chunk, with its own thread pool, left the heap
    fragmented (a 2,000-sample evaluation's resident memory grew by about 9 MiB a chunk, measured with
    ``benchmarks/evaluate_memory.py``); with one set of sessions it stays flat."""
    token = _REUSED.set({}) if _REUSED.get() is None else None  # an outer scope's sessions serve an inner one
    try:
        yield
    finally:
        if token is not None:
            _REUSED.reset(token)


def make_session(path: Path, prefer_gpu: bool = True, spinning: bool = True,
                 threads: int | None = None) -> ort.InferenceSession:
    """An ORT session with all graph optimisations and ``threads`` intra-op threads (default: one per core this
    process may run on). ``spinning=False``: its threads sleep between runs instead of spinning for the next
    one (ONNX Runtime's default), which would take the cores from a spiking part running beside it (the
    streamed co-simulation). Within :func:`reused_sessions`, the session made before for the same file and
    options."""
    reused = _REUSED.get()
    if reused is None:
        return _new_session(path, prefer_gpu, spinning, threads)
    stat = os.stat(path)
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino, prefer_gpu, spinning, threads)
    if key not in reused:
        reused[key] = _new_session(path, prefer_gpu, spinning, threads)
    return reused[key]


def _new_session(path: Path, prefer_gpu: bool, spinning: bool, threads: int | None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or max(1, len(os.sched_getaffinity(0)))
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=select_providers(prefer_gpu))
    except Exception as exc:  # onnxruntime raises its own exception types on damaged files
        raise OnnxLoadError(f"{path}: ONNX Runtime cannot load it ({type(exc).__name__}: {str(exc)[:300]}); "
                            "re-export the model") from exc


def run_session(session: ort.InferenceSession, feeds: dict, outputs: list[str] | None = None) -> list:
    """``session.run``, with ONNX Runtime's own exceptions (a wrong rank or type) as an :class:`OnnxRunError`
    that names what was fed and what the model expects."""
    try:
        return session.run(outputs, feeds)
    except Exception as exc:  # onnxruntime raises its pybind11 exception types
        given = ", ".join(f"{k}: {getattr(v, 'shape', '?')} {getattr(v, 'dtype', '')}" for k, v in feeds.items())
        expected = ", ".join(f"{i.name}: {i.shape} {i.type}" for i in session.get_inputs())
        raise OnnxRunError(f"ONNX Runtime cannot run the dense part on ({given}); it expects ({expected}): "
                           f"{type(exc).__name__}: {str(exc)[:300]}") from exc
