"""The deployment bundle: everything ``cosim``, ``energy`` and ``report`` need, without the model class.

Layout of a bundle folder::

    manifest.json              schema-versioned description (this module's Manifest)
    spiking.nir | spiking.net  the spiking part (NIR, or a lava-dl netx file for netx sources)
    dense.onnx                 the dense part, adapter included (dynamic batch and time); hybrids only
    reference/inputs.npy       reference inputs, (B, T, N_in); bundles made from a PyTorch model only
    reference/outputs.npz      PyTorch outputs for them: per-population spikes and ``y``

A spiking-only bundle (compiled from a ``.nir`` or ``.net`` file) has no dense part and no reference;
its manifest carries the quantization report and the resource map.

A bundle is written to a temporary sibling folder and renamed into place, so a reader never sees a
half-written bundle. The manifest carries the SHA-256 of every other file; :func:`read_bundle` checks them.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from neurodeploy.bundle.manifest import MANIFEST, SCHEMA_VERSION, Manifest
from neurodeploy.errors import BundleError


def write_bundle(path: Path, manifest: Manifest, files: dict[str, bytes | Path],
                 reference_inputs: np.ndarray | None = None,
                 reference_outputs: dict[str, np.ndarray] | None = None) -> Path:
    """Write atomically: build in a temporary sibling folder, then replace ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        for name, content in files.items():
            target = tmp / name
            if isinstance(content, Path):
                shutil.copyfile(content, target)
            else:
                target.write_bytes(content)
        if manifest.reference is not None:
            (tmp / "reference").mkdir()
            np.save(tmp / manifest.reference.inputs, reference_inputs)
            np.savez_compressed(tmp / manifest.reference.outputs, **reference_outputs)
        sums = {str(f.relative_to(tmp)): sha256(f) for f in sorted(tmp.rglob("*")) if f.is_file()}
        manifest = manifest.model_copy(update={"checksums": sums})
        (tmp / MANIFEST).write_text(manifest.model_dump_json(indent=2))
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Bundle:
    """A bundle read back from disk: its manifest and paths, reference data loaded on demand."""

    def __init__(self, path: Path, manifest: Manifest) -> None:
        self.path, self.manifest = Path(path), manifest

    @property
    def spiking_path(self) -> Path:
        return self.path / self.manifest.spiking.file

    @property
    def dense_path(self) -> Path:
        return self.path / self.manifest.dense.file

    def reference_inputs(self) -> np.ndarray:
        return np.load(self.path / self.manifest.reference.inputs)

    def reference_outputs(self) -> dict[str, np.ndarray]:
        with np.load(self.path / self.manifest.reference.outputs) as data:
            return {k: data[k] for k in data.files}


def read_bundle(path: Path) -> Bundle:
    """Read and validate a bundle; raise :class:`BundleError` listing what is wrong."""
    path = Path(path)
    if not (path / MANIFEST).is_file():
        raise BundleError(f"{path} is not a neurodeploy bundle (no {MANIFEST}); create one with "
                          "'neurodeploy compile MODEL --out BUNDLE'")
    try:
        raw = json.loads((path / MANIFEST).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path / MANIFEST} is not valid JSON: {exc}") from exc
    if isinstance(raw, dict) and raw.get("schema_version") != SCHEMA_VERSION:
        raise BundleError(f"{path}: schema_version {raw.get('schema_version')!r} is not supported "
                          f"(this neurodeploy reads {SCHEMA_VERSION}); recompile the bundle")
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise BundleError(f"{path / MANIFEST} is malformed: {problems}") from exc
    bundle = Bundle(path, manifest)
    needed = [bundle.spiking_path] + ([] if manifest.dense is None else [bundle.dense_path])
    if manifest.dense is not None and manifest.dense.step_file:
        needed.append(path / manifest.dense.step_file)
    if manifest.feedback is not None:
        needed.append(path / manifest.feedback.file)
    missing = [p.name for p in needed if not p.is_file()]
    if manifest.reference is not None:
        missing += [f for f in (manifest.reference.inputs, manifest.reference.outputs) if not (path / f).is_file()]
    if missing:
        raise BundleError(f"{path}: missing files {missing}; recompile the bundle")
    corrupted = [name for name, digest in manifest.checksums.items()
                 if not (path / name).is_file() or sha256(path / name) != digest]
    if corrupted:
        raise BundleError(f"{path}: files changed or damaged since the bundle was written (checksum mismatch): "
                          f"{corrupted}; recompile the bundle")
    return bundle
