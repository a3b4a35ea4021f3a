"""Partial results of a multi-sample run, appended as samples finish, so that an interrupted run resumes.

``progress.bin`` in the checkpoint folder is a sequence of records, each the arrays of the samples (or
chunk) just finished, stored as ``npz`` bytes behind their length and SHA-256::

    record = length (8 bytes, little-endian) | sha256 of the bytes (32) | npz bytes

so every save writes only what is new (the bytes written grow linearly with the samples) and a record
cut short by a kill, or damaged, ends the readable part: the run resumes after the last whole record
(and the torn tail is cut off before the next append). The first record holds the run's key, the digest
of everything that determines the results (the bundle's checksums, the inputs, mode and schedule); a
rerun with another key starts over. ``progress.json`` says how far the run got, for people (written
atomically, :mod:`neurodeploy.bundle.atomic`).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np

from neurodeploy.bundle.atomic import disk_errors, write_file

RECORDS, INFO = "progress.bin", "progress.json"
_HEADER = 8 + 32


def run_key(*parts) -> str:
    """A digest of the arrays and values that determine a run's results."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(np.ascontiguousarray(part).tobytes() if isinstance(part, np.ndarray) else repr(part).encode())
    return digest.hexdigest()


def _encode(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    body = buf.getvalue()
    return len(body).to_bytes(8, "little") + hashlib.sha256(body).digest() + body


def _records(data: bytes) -> tuple[list[dict[str, np.ndarray]], int]:
    """The whole records at the start of ``data`` and the byte length they take."""
    out, at = [], 0
    while at + _HEADER <= len(data):
        length = int.from_bytes(data[at: at + 8], "little")
        body = data[at + _HEADER: at + _HEADER + length]
        if len(body) < length or hashlib.sha256(body).digest() != data[at + 8: at + _HEADER]:
            break
        with np.load(io.BytesIO(body), allow_pickle=False) as arrays:
            out.append({k: arrays[k] for k in arrays.files})
        at += _HEADER + length
    return out, at


class Checkpoint:
    """``load()`` the records of this key (none: start over), ``append(arrays, done, total)`` after each step."""

    def __init__(self, folder: str | Path, key: str) -> None:
        self.folder, self.key = Path(folder), key
        with disk_errors(self.folder, "create the checkpoint folder"):
            self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / RECORDS
        self._valid_bytes: int | None = None

    def load(self) -> list[dict[str, np.ndarray]]:
        """The saved records of this key, in order (without the key record); [] when there are none."""
        data = self.path.read_bytes() if self.path.is_file() else b""
        records, self._valid_bytes = _records(data)
        if not records or str(records[0].get("key")) != self.key:
            self._valid_bytes = 0
            return []
        return records[1:]

    def append(self, arrays: dict[str, np.ndarray], done: int, total: int) -> None:
        """Add one record (what finished since the last one) and note the progress."""
        if self._valid_bytes is None:
            self.load()
        with disk_errors(self.path):
            with open(self.path, "r+b" if self.path.exists() else "wb") as f:
                f.truncate(self._valid_bytes)  # a torn record, or another key's records, go
                f.seek(self._valid_bytes)
                if self._valid_bytes == 0:
                    f.write(_encode({"key": np.array(self.key)}))
                f.write(_encode(arrays))
                f.flush()
                os.fsync(f.fileno())
                self._valid_bytes = f.tell()
        write_file(self.folder / INFO, json.dumps({"done": done, "total": total, "key": self.key}))
