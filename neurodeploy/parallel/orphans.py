"""Worker processes that die with the process that started them, however it ends.

A worker whose parent is killed (``kill -9``, a closed terminal, a time-out) is re-parented and nothing tells
it: a process pool's workers would sit on their memory for minutes. :func:`exit_when_orphaned` makes the
calling process exit within :data:`POLL_S` of its parent's end, through a daemon thread that checks whether
the parent is still the one that started it. (Linux's parent-death signal is not used: it fires when the
*thread* that started the worker ends, and Lava starts its workers from threads that end.)
"""
from __future__ import annotations

import os
import threading
import time

POLL_S = 0.5
EXIT_CODE = 70  # a worker whose parent died


def exit_when_orphaned(parent: int | None = None, poll_s: float = POLL_S) -> None:
    """From now on, exit (code :data:`EXIT_CODE`) when the parent process (``parent``, default the current
    one) is gone."""
    parent = os.getppid() if parent is None else parent
    threading.Thread(target=_watch, args=(parent, poll_s), name="parent-watch", daemon=True).start()


def _watch(parent: int, poll_s: float) -> None:
    while True:
        time.sleep(poll_s)
        if os.getppid() != parent:
            os._exit(EXIT_CODE)
