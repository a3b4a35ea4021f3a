"""Lava's workers die with the process that started them, however it ends.

Lava forks one worker per process model (18 for the NIR paper's CNN) and talks to them through its
message channels. If the parent dies without stopping them (SIGKILL, a closed terminal, a time-out's
SIGTERM), nothing tells them: they are re-parented and keep running, some still busy. And Ctrl-C sends
SIGINT to the whole process group: every worker raises KeyboardInterrupt in its own loop and prints a
traceback, while the parent stops them anyway.

While a guard is held (:func:`hold`, :func:`release`; :class:`~neurodeploy.runtime.lava_runner.LavaRunner`
holds one for its lifetime), every process forked by Python (``os.fork``, which Lava's ``fork`` start
method uses) ignores SIGINT (its parent handles it and stops it), takes SIGTERM's default action (a
handler it inherited, such as the CLI's, would make it print a traceback when it is terminated), and
starts a daemon thread that checks
every :data:`POLL_S` seconds whether its parent is still the process that forked it; when it is not (the
parent died and the worker was re-parented), the worker exits at once (``os._exit``). No worker outlives
its parent by more than about :data:`POLL_S`. ``subprocess`` is not affected (it does not run Python's
fork handlers).
"""
from __future__ import annotations

import os
import signal
import threading

from neurodeploy.parallel.orphans import POLL_S, exit_when_orphaned

_held = 0
_lock = threading.Lock()


def hold() -> None:
    """Guard every process forked from now on until the matching :func:`release`."""
    global _held
    with _lock:
        _held += 1


def release() -> None:
    global _held
    with _lock:
        _held = max(0, _held - 1)


def held() -> bool:
    return _held > 0


def _in_child() -> None:
    if not _held:
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    exit_when_orphaned(os.getppid(), POLL_S)


os.register_at_fork(after_in_child=_in_child)
