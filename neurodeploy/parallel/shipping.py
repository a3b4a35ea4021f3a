"""Bundles travel to workers as bytes (a tar of the bundle folder), sent once, unpacked once per worker.

A worker unpacks each bundle into a folder of its own, created for it (``mkdtemp``: readable by this user
only) inside the run's scratch folder, which the calling process removes when the run ends (a worker on
another machine: in its temporary folder, removed when it exits); it never reuses a folder it finds, so
nothing another user or process put in the shared temporary folder can stand in for the bundle sent. The
unpacked bundle is then read as any other (:func:`neurodeploy.bundle.read_bundle`: paths inside it, every
file re-hashed against its checksum), and kept per process, so a retried task or a second task on the same
bundle reads it once. In the calling process (inline runs) the bundle's own path is used.
"""
from __future__ import annotations

import atexit
import hashlib
import io
import shutil
import tarfile
import tempfile
from pathlib import Path

from neurodeploy.errors import UnsafeFileError

_LOADED: dict[tuple[str, str | None], object] = {}  # (sha256, scratch folder) -> Bundle, per process


def pack(path: str | Path) -> bytes:
    """The bundle folder at ``path`` as tar bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(str(path), arcname="bundle")
    return buf.getvalue()


def for_workers(path: str | Path, workers: int, ray: str | None) -> bytes | str:
    """What tasks receive for the bundle at ``path``: the path itself when they run in this process,
    else its :func:`pack` bytes."""
    return str(path) if workers <= 1 and ray is None else pack(path)


def unpack(blob: bytes | str | Path):
    """The :class:`~neurodeploy.bundle.Bundle` a :func:`pack` blob holds (or at a path), read once per process."""
    from neurodeploy.bundle import read_bundle

    if isinstance(blob, (str, Path)):
        return read_bundle(Path(blob))
    from neurodeploy.parallel.executor import scratch_folder

    key = (hashlib.sha256(blob).hexdigest(), scratch_folder())
    if key not in _LOADED:
        _LOADED[key] = read_bundle(_extract(blob, key[1]))
    return _LOADED[key]


def _extract(blob: bytes, scratch: str | None) -> Path:
    """The tar's ``bundle/`` folder in a new private folder (in ``scratch`` if given); regular files and
    folders only."""
    root = Path(tempfile.mkdtemp(prefix="neurodeploy-bundle-", dir=scratch))
    if scratch is None:
        atexit.register(shutil.rmtree, root, True)
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        odd = [m.name for m in tar.getmembers() if not (m.isfile() or m.isdir()) or
               not (m.name == "bundle" or m.name.startswith("bundle/"))]
        if odd:
            raise UnsafeFileError(f"a shipped bundle holds entries that are not its files: {odd[:5]}")
        tar.extractall(root, filter="data")
    return root / "bundle"
