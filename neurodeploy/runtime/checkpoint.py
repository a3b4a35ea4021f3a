"""Partial results of a multi-sample run, written after every sample, so an interrupted run resumes.

``progress.npz`` holds the samples done so far (spikes per population, outputs, inputs with feedback)
and a key: the digest of everything that determines the results (the bundle's checksums, the inputs,
mode and schedule). A rerun with the same key continues after the last finished sample; with another
key it starts over. Files are written to a temporary name and renamed, so an interruption never leaves
a half-written checkpoint; ``progress.json`` says how far the run got, for people.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np


def run_key(*parts) -> str:
    """A digest of the arrays and values that determine a run's results."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(np.ascontiguousarray(part).tobytes() if isinstance(part, np.ndarray) else repr(part).encode())
    return digest.hexdigest()


class Checkpoint:
    def __init__(self, folder: str | Path, key: str) -> None:
        self.folder, self.key = Path(folder), key
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "progress.npz"

    def load(self) -> dict | None:
        """The saved partial results for this key, or None."""
        if not self.path.is_file():
            return None
        try:
            with np.load(self.path) as data:
                if str(data["key"]) != self.key:
                    return None
                return {k: data[k] for k in data.files}
        except (OSError, ValueError, KeyError):
            return None  # unreadable: start over (the file is replaced on the next save)

    def save(self, done: int, total: int, arrays: dict[str, np.ndarray]) -> None:
        tmp = self.folder / "progress.tmp.npz"
        np.savez(tmp, key=np.array(self.key), done=np.array(done), **arrays)
        os.replace(tmp, self.path)
        info = self.folder / "progress.tmp.json"
        info.write_text(json.dumps({"done": done, "total": total, "key": self.key}))
        os.replace(info, self.folder / "progress.json")
