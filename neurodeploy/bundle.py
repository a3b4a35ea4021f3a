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
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from neurodeploy.choices import Discretisation, Schedule
from neurodeploy.errors import BundleError

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SpikingPart(_Strict):
    file: str = "spiking.nir"
    format: Literal["nir", "netx"] = "nir"
    dt_s: float
    n_in: int
    input_shape: list[int] = []
    cut_output: str | None = None  # the NIR Output node whose spikes cross the cut (hybrids)
    outputs: dict[str, str] = {}  # Output node -> population
    delay_steps: dict[str, int]  # Lava's synaptic delay per population (compensated on readout)
    total_delay_steps: int
    quantization: list[dict] | None = None  # per-population report of neurodeploy.spiking.quantize
    quantization_error: str | None = None  # why the spiking part has no fixed-point form (float runs still work)
    weights_file: str | None = None  # weights replacing the spiking file's (fine-tuned on its grid: neurodeploy.qat)
    quantizer: dict = {"precision": "single"}  # the options of neurodeploy.spiking.quantize that rebuild exactly
    # the integers compiled: precision, calibration peaks, the pinned grid (Quantized.options; older bundles: single)
    resources: dict | None = None  # neurodeploy.spiking.resources.ResourceMap for the profile it names
    profile: str = "loihi2"  # the neuromorphic profile it was quantized and mapped for
    module_paths: dict[str, str] = {}  # NIR node -> the module of the user's model, e.g. "frontend.1 (Leaky)"
    discretisation: Discretisation = "euler"  # how NIR's ODEs are stepped (nir_import)
    exporter_fixes: list[str] = []  # exporter defects corrected on reading (nir_fixes.FIXES)

    @property
    def reading(self) -> dict:
        """How the spiking file is read back: ``load_spiking(path, dt, **reading)``."""
        return {"discretisation": self.discretisation, "fixes": tuple(self.exporter_fixes)}


class ParityRecord(_Strict):
    shape: list[int]
    max_abs_err: float




class DensePart(_Strict):
    file: str = "dense.onnx"
    input_name: str
    output_name: str
    dynamic_dims: dict[int, str]
    parity: list[ParityRecord]
    step_file: str | None = None  # streaming step model (window + states in, y + states out)
    step_parity: list[ParityRecord] = []
    sequence_form: str = "traced"  # or "scan_of_step"
    schedules: list[Schedule] = ["end"]
    event_threshold: float | None = None  # spikes of the cut per window that make it salient (event schedule)
    exit_threshold: float | None = None  # softmax confidence of a window's output that ends the sample (early exit)


class FeedbackPart(_Strict):
    """``fb = weight @ y + bias`` joins the spiking input ``latency_steps`` after each window ends."""

    file: str = "feedback.npz"
    n_fb: int
    latency_steps: int


class Adapter(_Strict):
    kind: Literal["rate", "exp", "membrane"]
    window: int


class Placement(_Strict):
    module: str
    device: Literal["loihi", "gpu"]
    reason: str


class Reference(_Strict):
    inputs: str = "reference/inputs.npy"
    outputs: str = "reference/outputs.npz"
    dtype: str
    num_samples: int


class Manifest(_Strict):
    schema_version: Literal[1] = SCHEMA_VERSION
    name: str
    num_steps: int | None = None
    num_tokens: int | None = None
    spiking: SpikingPart
    dense: DensePart | None = None
    adapter: Adapter | None = None
    placement: list[Placement] = []
    reference: Reference | None = None
    feedback: FeedbackPart | None = None
    schedule: Schedule | None = None  # the schedule the model is deployed with (None: "end")
    input_layout: Literal["BT", "TB"] = "BT"  # what the PyTorch model takes: (B, T, ...) or (T, B, ...)
    cut: str | None = None  # the population the spiking part was cut after (None: found automatically)
    provenance: dict[str, str]
    checksums: dict[str, str] = {}  # relative path -> sha256 of every file in the bundle but the manifest

    @property
    def spiking_only(self) -> bool:
        return self.dense is None

    @property
    def default_schedule(self) -> Schedule:
        """The bundle's own deployment schedule: what ``schedule=None`` means everywhere."""
        return self.schedule or ("window" if self.feedback is not None else "end")


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
