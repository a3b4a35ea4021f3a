"""Writes that cannot destroy: every file the tool writes appears whole or not at all, and a folder it
replaces is either the old one or the new one.

- :func:`write_file`: the content goes to a temporary file beside the target (same folder, so the
  rename is atomic), is flushed to disk (``fsync``), then renamed over the target. An interruption (a
  full disk, a read-only folder, ``kill -9``) leaves the old file, or no file, never a torn one.
- :func:`replace_folder`: a folder built beside the target replaces it by two renames (the old one moved
  aside, the new one moved in, the old one removed); only under :func:`locked`.
- :func:`locked`: an exclusive ``flock`` on a lock file beside the target, so that two writers of the
  same target take turns instead of interleaving (the lock is released by the kernel when a writer dies).
- :func:`disk_errors`: turns ``OSError`` (no space, read-only, permission) into :class:`DiskError`, which
  names the path and the cause.
"""
from __future__ import annotations

import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from neurodeploy.errors import DiskError

CAUSES = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "the disk quota is exhausted",
          errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
          errno.EPERM: "operation not permitted", errno.ENOENT: "no such folder"}


@contextmanager
def disk_errors(path: str | Path, doing: str = "write") -> Iterator[None]:
    """``OSError`` inside -> :class:`DiskError` naming ``path`` and the cause."""
    try:
        yield
    except DiskError:
        raise
    except OSError as exc:
        cause = CAUSES.get(exc.errno, exc.strerror or type(exc).__name__)
        raise DiskError(f"cannot {doing} {path}: {cause}; free space or choose another folder") from exc


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(path: str | Path, write: Callable[[IO[bytes]], None] | bytes | str) -> Path:
    """Write ``path`` atomically: ``write(f)`` on a binary file object (or the bytes / text given) into a
    temporary sibling, fsync, rename over ``path``. Raises :class:`DiskError` (the old file left as it was)."""
    path = Path(path)
    with disk_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                if callable(write):
                    write(f)
                else:
                    f.write(write.encode() if isinstance(write, str) else write)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_folder(path.parent)
    return path


@contextmanager
def locked(target: str | Path) -> Iterator[None]:
    """An exclusive lock for writing ``target`` (a file or folder): ``flock`` on ``.<name>.lock`` beside it."""
    target = Path(target)
    lock = target.parent / f".{target.name}.lock"
    with disk_errors(lock, "lock"):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def new_folder_beside(target: str | Path) -> Path:
    """An empty temporary folder next to ``target`` (same file system), to build a replacement in."""
    target = Path(target)
    with disk_errors(target.parent):
        target.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".new", dir=target.parent))


def replace_folder(built: Path, target: Path) -> Path:
    """Put the folder ``built`` in place of ``target`` (call under :func:`locked`): the old folder is moved
    aside first and removed only once the new one is in place."""
    with disk_errors(target):
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, old / "replaced")
        try:
            os.replace(built, target)
        except BaseException:
            if old is not None:
                os.replace(old / "replaced", target)
            raise
        _fsync_folder(target.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return target
