"""The deployment bundle: everything ``cosim``, ``energy`` and ``report`` need, without the model class.

Layout of a bundle folder::

    manifest.json              schema-versioned description (this module's Manifest)
    spiking.nir | spiking.net  the spiking part (NIR, or a lava-dl netx file for netx sources)
    dense.onnx                 the dense part, adapter included (dynamic batch and time); hybrids only
    reference/inputs.npy       reference inputs, (B, T, N_in); bundles made from a PyTorch model only
    reference/outputs.npz      PyTorch outputs for them: per-population spikes and ``y``

A spiking-only bundle (compiled from a ``.nir`` or ``.net`` file) has no dense part and no reference;
its manifest carries the quantization report and the resource map.

A bundle is data, never code: every file it names is a relative path inside it (no ``..``, no absolute
path, no symlink) with its SHA-256 in the manifest; :func:`read_bundle` refuses anything else. It is
written in a new folder beside its place and swapped in under a lock (:mod:`neurodeploy.bundle.atomic`), so
a reader never sees a half-written bundle and ``--out`` never replaces anything but a bundle.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path, PurePosixPath

import numpy as np
from pydantic import ValidationError

from neurodeploy.bundle.atomic import (discard, disk_errors, locked, new_folder_beside, remove_leftovers,
                                       replace_folder)
from neurodeploy.bundle.manifest import MANIFEST, SCHEMA_VERSION, Manifest
from neurodeploy.errors import BundleError, UnsafeFileError, UsageError, validation_problems
from neurodeploy.tables import data_frame, html_table


def write_bundle(path: Path, manifest: Manifest, files: dict[str, bytes | Path],
                 reference_inputs: np.ndarray | None = None,
                 reference_outputs: dict[str, np.ndarray] | None = None) -> Path:
    """Write the bundle at ``path``: built in a new folder beside it, then swapped into its place under the
    lock (:mod:`neurodeploy.bundle.atomic`), so a reader sees the old bundle or the new one, never a mix, and two
    writers take turns. ``path`` must be new, empty or a bundle (:func:`check_out_folder`)."""
    path = Path(path)
    check_out_folder(path)
    tmp = new_folder_beside(path)
    try:
        with disk_errors(path):
            _fill(tmp, manifest, files, reference_inputs, reference_outputs)
        with locked(path):
            check_out_folder(path)
            replace_folder(tmp, path)
            remove_leftovers(path)
    except BaseException:
        discard(tmp)
        raise
    return path


def _fill(tmp: Path, manifest: Manifest, files: dict[str, bytes | Path], reference_inputs: np.ndarray | None,
          reference_outputs: dict[str, np.ndarray] | None) -> None:
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
    for f in sorted(tmp.rglob("*")):
        if f.is_file():
            with open(f, "rb") as handle:
                os.fsync(handle.fileno())


def check_out_folder(path: Path) -> None:
    """Where a bundle may be written: a new folder, an empty one, or an existing bundle (replaced); never the
    current folder or one above it, a file, a symlink, or a folder holding anything but a bundle."""
    path = Path(path)
    problem = None
    if path.is_symlink():
        problem = "it is a symlink"
    elif path.exists() and not path.is_dir():
        problem = "it is a file"
    elif Path.cwd().resolve().is_relative_to(path.resolve()):
        problem = "it is the current folder or holds it"
    elif path.is_dir() and any(path.iterdir()):
        foreign = _not_bundle_entries(path)
        if foreign:
            problem = f"it holds files that are not a bundle's ({', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''})"
    if problem:
        raise UnsafeFileError(f"cannot write a bundle at {path}: {problem}, and writing would replace it; choose a "
                              "new folder (e.g. --out out/my_bundle)")


def _not_bundle_entries(path: Path) -> list[str]:
    """The entries of ``path`` that its manifest does not list (all of them where there is no manifest)."""
    try:
        checksums = json.loads((path / MANIFEST).read_text()).get("checksums", {})
    except (OSError, ValueError, AttributeError):
        return sorted(p.name for p in path.iterdir())
    listed = {MANIFEST} | {Path(name).parts[0] for name in checksums if Path(name).parts}
    return sorted(p.name for p in path.iterdir() if p.name not in listed)


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

    def __repr__(self) -> str:
        m = self.manifest
        if m.gpu_only:
            return f"Bundle({m.name!r} at {str(self.path)!r}: all on the GPU, Loihi cannot start it)"
        kind = "spiking-only" if m.spiking_only else f"hybrid, schedule {m.default_schedule}"
        return f"Bundle({m.name!r} at {str(self.path)!r}: {kind}, for {m.spiking.profile})"

    def _repr_html_(self) -> str:
        m = self.manifest
        rows = [[p.module, p.device, p.reason] for p in m.placement]
        target = "all on the GPU" if m.gpu_only else f"for {m.spiking.profile}"
        return html_table(f"{m.name} at {self.path}, {target}: where each module runs",
                          ["module", "device", "reason"], rows)

    def to_dataframe(self):
        """The placement: one row per module of the user's model, its device and the reason (pandas)."""
        return data_frame([p.model_dump() for p in self.manifest.placement])

    @property
    def spiking_path(self) -> Path:
        return self.path / self.manifest.spiking.file

    def require_spiking(self, what: str) -> None:
        """A :class:`UsageError` naming ``what`` where the bundle has no spiking part (the model runs wholly on
        the GPU), with the reason its placement gives."""
        m = self.manifest
        if m.gpu_only:
            why = next((p.reason for p in m.placement if "Loihi's part cannot start" in p.reason), "")
            raise UsageError(f"bundle '{m.name}' runs wholly on the GPU ({why or 'Loihi cannot start it'}): {what} "
                             "needs a spiking part; cosim, energy, report and evaluate run it")

    @property
    def dense_path(self) -> Path:
        return self.path / self.manifest.dense.file

    def reference_inputs(self) -> np.ndarray:
        return np.load(self.path / self.manifest.reference.inputs)

    def reference_outputs(self) -> dict[str, np.ndarray]:
        with np.load(self.path / self.manifest.reference.outputs) as data:
            return {k: data[k] for k in data.files}


def read_bundle(path: Path) -> Bundle:
    """Read and validate a bundle (under the shared lock: one version, never a mix); raise
    :class:`BundleError` listing what is wrong, :class:`UnsafeFileError` for a path leaving the bundle."""
    path = Path(path)
    with locked(path, shared=True):
        bundle = Bundle(path, _manifest_of(path))
        _check_files(bundle)
    return bundle


def _manifest_of(path: Path) -> Manifest:
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
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(validation_problems(exc))
        raise BundleError(f"{path / MANIFEST} is malformed: {problems}") from exc


def _check_files(bundle: Bundle) -> None:
    """Every file the manifest names: inside the bundle, no symlink, present, checksummed, unchanged."""
    path, manifest = bundle.path, bundle.manifest
    named = _named_files(manifest)
    unsafe = [f"{field} = {rel!r}: {why}" for field, rel in [*named, *(("checksums", k) for k in manifest.checksums)]
              for why in [_outside(path, rel)] if why]
    if unsafe:
        raise UnsafeFileError(f"{path}: the manifest points outside the bundle; a bundle's files are relative paths "
                              "inside it, never symlinks; recompile it or ask for the original:\n  - "
                              + "\n  - ".join(unsafe))
    missing = [rel for _, rel in named if not (path / rel).is_file()]
    if missing:
        raise BundleError(f"{path}: missing files {missing}; recompile the bundle")
    unsigned = [f"{field} = {rel!r}" for field, rel in named if rel not in manifest.checksums]
    if unsigned:
        raise UnsafeFileError(f"{path}: files without a checksum in the manifest (every file of a bundle has one): "
                              f"{', '.join(unsigned)}; recompile the bundle")
    corrupted = [name for name, digest in manifest.checksums.items()
                 if not (path / name).is_file() or sha256(path / name) != digest]
    if corrupted:
        raise BundleError(f"{path}: files changed or damaged since the bundle was written (checksum mismatch): "
                          f"{corrupted}; recompile the bundle")


def _named_files(m: Manifest) -> list[tuple[str, str]]:
    """(manifest field, relative path) of every file the manifest names."""
    fields = [] if m.spiking is None else [("spiking.file", m.spiking.file),
                                           ("spiking.weights_file", m.spiking.weights_file)]
    if m.dense is not None:
        fields += [("dense.file", m.dense.file), ("dense.step_file", m.dense.step_file)]
    if m.feedback is not None:
        fields.append(("feedback.file", m.feedback.file))
    if m.reference is not None:
        fields += [("reference.inputs", m.reference.inputs), ("reference.outputs", m.reference.outputs)]
    return [(field, rel) for field, rel in fields if rel]


def _outside(root: Path, rel: str) -> str | None:
    """Why ``rel`` is not a plain file path inside ``root`` (None if it is)."""
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or "\\" in rel or ":" in parts[0] or ".." in parts:
        return "not a relative path inside the bundle"
    here = root
    for part in parts:
        here = here / part
        if here.is_symlink():
            return f"{here.relative_to(root)} is a symlink"
    return None
