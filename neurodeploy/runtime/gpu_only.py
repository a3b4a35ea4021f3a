"""A bundle whose model runs wholly on the GPU (Loihi cannot run its first population; the placement says
why): its dense part is the model itself, taking the model's inputs, run on ONNX Runtime over the batch.

The batch goes through in chunks of :data:`CHUNK` samples where the exported model gives a batch exactly what
it gives each sample alone (checked once, as for the whole-sequence dense part of a hybrid:
:func:`~neurodeploy.runtime.dense_step.sequence_batches_exactly`), else one sample per call. There are no spikes to return: the result's ``spikes`` are empty and
``plan`` is None; ``mode`` and the spiking back-end change nothing (a note says so).
"""
from __future__ import annotations

import time

import numpy as np

from neurodeploy.bundle import Bundle
from neurodeploy.exporters.onnx_session import make_session, run_session
from neurodeploy.runtime.dense_step import sequence_batches_exactly

CHUNK = 256


def run_gpu_only(bundle: Bundle, x: np.ndarray, prefer_gpu: bool = True, threads: int | None = None
                 ) -> tuple[np.ndarray, float, list[str]]:
    """(the model's outputs (B, ...), the dense part's wall time in s, ONNX Runtime's providers) for ``x``
    (B, T, ...), on ``threads`` intra-op threads (sleeping between calls)."""
    m = bundle.manifest
    session = make_session(bundle.dense_path, prefer_gpu, spinning=False, threads=threads)
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    t0 = time.perf_counter()
    together = len(x32) > 1 and sequence_batches_exactly(session, m.dense.input_name, x32.shape[1:])
    chunk = CHUNK if together else 1
    ys = [run_session(session, {m.dense.input_name: x32[i: i + chunk]})[0] for i in range(0, len(x32), chunk)]
    return np.concatenate(ys), time.perf_counter() - t0, list(session.get_providers())
