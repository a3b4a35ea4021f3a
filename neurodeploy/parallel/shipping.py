"""Bundles travel to workers as bytes (a tar of the bundle folder), sent once, unpacked once per worker.

A worker keeps each unpacked bundle in a folder named by the SHA-256 of its bytes under the system's
temporary folder, so a retried task or a second task on the same bundle reads it from there. In the
calling process (inline runs) the bundle's own path is used.
"""
from __future__ import annotations

import hashlib
import io
import tarfile
import tempfile
from pathlib import Path

_LOADED: dict[str, object] = {}  # sha256 -> Bundle, per process


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
    digest = hashlib.sha256(blob).hexdigest()
    if digest not in _LOADED:
        root = Path(tempfile.gettempdir()) / "neurodeploy-bundles" / digest
        if not (root / "bundle" / "manifest.json").exists():
            staging = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}.", dir=root.parent if root.parent.exists()
                                            else _mkdir(root.parent)))
            with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
                tar.extractall(staging, filter="data")
            try:
                staging.rename(root)
            except OSError:  # another worker unpacked it first
                pass
        _LOADED[digest] = read_bundle(root / "bundle")
    return _LOADED[digest]


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
