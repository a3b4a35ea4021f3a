"""One thread count for a run: torch's intra-op threads (the emulator's operations, eager torch) and ONNX
Runtime's sessions compute on the same number of threads.

Default: torch's own setting, which torch starts at the cores this process may run on and a pool worker
sets to its share of them (:mod:`neurodeploy.parallel.executor`). In a co-simulation ONNX Runtime's
threads sleep between calls instead of spinning (a spinning pool takes the cores of the spiking part that runs
beside it: measured 3-20x slower on shared cores, issue 30), and the streamed emulator leaves one of its threads
to the dense part (:mod:`neurodeploy.runtime.streaming`). ``benchmarks/emulator_roofline.py`` measures the
default against one thread on the same run.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from neurodeploy.errors import UsageError


def allowed_threads() -> int:
    """The cores this process may run on."""
    return max(1, len(os.sched_getaffinity(0)))


def thread_count(threads: int | None) -> int:
    """``threads`` checked (a whole number >= 1), or torch's current setting for None."""
    if threads is None:
        return torch.get_num_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise UsageError(f"threads must be a whole number >= 1 (or None: torch's setting, {torch.get_num_threads()} "
                         f"here; this process may run on {allowed_threads()} cores), got {threads!r}")
    return threads


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` for the block, then back to what they were."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
