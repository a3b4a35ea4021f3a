"""Writes that cannot destroy: every file the tool writes appears whole or not at all, and a folder it
replaces is either the old one or the new one.

- :func:`write_file`: the content goes to a temporary file beside the target (same folder, so the
  rename is atomic), is flushed to disk (``fsync``), then renamed over the target. An interruption (a
  full disk, a read-only folder, ``kill -9``) leaves the old file, or no file, never a torn one.
- :func:`replace_folder`: a folder built beside the target takes its place in one atomic step (Linux's
  ``renameat2(RENAME_EXCHANGE)`` swaps the two, then the old one is removed; where the C library lacks it,
  two renames); only under :func:`locked`, which also removes what a killed writer left beside the target.
- :func:`locked`: an ``flock`` on the folder that holds the target (no lock file is left anywhere): exclusive
  for a writer's swap, shared for a reader's check of the whole, so that two writers take turns and a reader
  sees one version (the kernel releases the lock when its holder dies).
- :func:`disk_errors`: turns ``OSError`` (no space, read-only, permission) into :class:`DiskError`, which
  names the path and the cause.
"""
from __future__ import annotations

import ctypes
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

_BUILDING: set[Path] = set()  # folders this process is building now (never removed as leftovers)

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
def locked(target: str | Path, shared: bool = False) -> Iterator[None]:
    """A lock for ``target`` (a file or folder): ``flock`` on the folder holding it, exclusive for writing,
    ``shared`` for reading (a reader whose folder does not exist goes on without it: there is nothing to read)."""
    folder = Path(target).parent
    try:
        if not shared:
            folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        if shared:
            yield
            return
        with disk_errors(folder, "lock"):
            raise
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        except OSError:  # a file system without flock on folders: a reader goes on, a writer cannot
            if not shared:
                with disk_errors(folder, "lock"):
                    raise
        yield
    finally:
        os.close(fd)  # closing releases the lock


def new_folder_beside(target: str | Path) -> Path:
    """An empty temporary folder next to ``target`` (same file system), to build a replacement in."""
    target = Path(target)
    with disk_errors(target.parent):
        target.parent.mkdir(parents=True, exist_ok=True)
        built = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".new", dir=target.parent))
    _BUILDING.add(built)
    return built


def discard(built: Path) -> None:
    """A folder from :func:`new_folder_beside` that will not be used."""
    _BUILDING.discard(built)
    shutil.rmtree(built, ignore_errors=True)


def replace_folder(built: Path, target: Path) -> Path:
    """Put the folder ``built`` in place of ``target`` (call under :func:`locked`): swapped atomically where the
    system can, else the old folder moved aside first and removed only once the new one is in place."""
    _BUILDING.discard(built)
    with disk_errors(target):
        if not target.exists():
            os.replace(built, target)
        elif _exchange(built, target):
            shutil.rmtree(built, ignore_errors=True)  # ``built`` now holds the old folder
        else:
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".old", dir=target.parent))
            os.replace(target, old / "replaced")
            os.replace(built, target)
            shutil.rmtree(old, ignore_errors=True)
        _fsync_folder(target.parent)
    return target


def remove_leftovers(target: Path) -> None:
    """What a killed or failed writer left beside ``target``: its ``.<name>.<pid>.*.new`` / ``.old`` folders,
    where that process is gone or is this one and no longer builds them (a live writer's are left alone)."""
    for stale in target.parent.glob(f".{target.name}.*"):
        parts = stale.name.split(".")
        if stale.suffix not in (".new", ".old") or len(parts) < 4 or not parts[2].isdigit() or \
                not stale.is_dir() or stale.is_symlink() or stale in _BUILDING:
            continue
        pid = int(parts[2])
        if pid == os.getpid() or not _running(pid):
            shutil.rmtree(stale, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


RENAME_EXCHANGE, AT_FDCWD = 2, -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap the paths ``a`` and ``b`` atomically (``renameat2``); False where the system cannot."""
    renameat2 = getattr(_libc(), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # not on this file system
        return False
    raise OSError(code, os.strerror(code), str(b))


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
