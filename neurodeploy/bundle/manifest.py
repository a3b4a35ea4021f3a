"""The bundle's manifest (``manifest.json``): a schema-versioned description of every part, as pydantic models.

``Manifest.default_schedule`` and the other schedule rules are in :mod:`neurodeploy.bundle.schedules`.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

from neurodeploy.bundle.schedules import default_schedule
from neurodeploy.choices import Discretisation, Schedule

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
TAIL_REASON = "spiking population after the chosen cut: stepped on the GPU (dense, every MAC)"
"""The placement reason of a spiking population that runs on the GPU because the model was cut before it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SpikingPart(_Strict):
    file: str = "spiking.nir"
    format: Literal["nir", "netx"] = "nir"
    dt_s: float
    n_in: int
    input_shape: list[int] = []
    cut_output: str | None = None  # the NIR Output node whose spikes cross the cut (hybrids)
    cut_reads: Literal["spikes", "v"] = "spikes"  # what the dense part reads of the cut population: its spikes, or
    # its membrane voltage (snnTorch's ``mem``, a norse state's ``v``), which it then sends instead (graded values)
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
    discretisation: Discretisation = "euler"  # how NIR's ODEs are stepped (neurodeploy.spiking.nir_lowering)
    exporter_fixes: list[str] = []  # exporter defects corrected on reading (neurodeploy.spiking.nir_fixes.FIXES)

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
    input_shape: list[int] = []  # one step of one sample, where the dense part takes the model's own inputs (a
    # model that runs wholly on the GPU: no spiking part)
    # a captured model's own code after the cut, stepped once per window (neurodeploy.compiler.stepping):
    window_steps: int | None = None  # steps per window of its step model (a zoo back-end's: its adapter's)
    step_output: Literal["per_window", "last"] = "per_window"  # "last": the step's output after window l is the
    # model's output on the first l + 1 windows, flattened; the last window's is the model's output
    output_shape: list[int] = []  # one sample's output of the model (step_output "last")
    step_derivation: str | None = None  # how the step model was derived (e.g. "state carry: gru (GRU)")
    prefix_files: list[str] = []  # the prefix runner's graphs: the dense code on 1, 2, ..., 2L windows, or
    prefix_any_length: bool = False  # one graph (prefix_files[0]) for any number of windows
    growing_states: bool = False  # the step model's states grow by a window each step (a KV cache)
    no_step_reason: str | None = None  # why a captured model's dense part has no step model (end schedule only)


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


class TorchReference(_Strict):
    """The PyTorch model's outputs on the example inputs, stored at compile (:mod:`neurodeploy.compiler.torch_reference`)."""

    inputs: str = "reference/inputs.npy"
    outputs: str = "reference/outputs.npz"
    dtype: str
    num_samples: int


class Manifest(_Strict):
    schema_version: Literal[1] = SCHEMA_VERSION
    name: str
    num_steps: int | None = None
    num_tokens: int | None = None
    spiking: SpikingPart | None = None  # None: the model runs wholly on the GPU (why: the placement's reasons)
    dense: DensePart | None = None
    adapter: Adapter | None = None
    placement: list[Placement] = []
    reference: TorchReference | None = None
    feedback: FeedbackPart | None = None
    schedule: Schedule | None = None  # the schedule the model is deployed with (None: "end")
    input_layout: Literal["BT", "TB"] = "BT"  # what the PyTorch model takes: (B, T, ...) or (T, B, ...)
    cut: str | None = None  # the population the spiking part was cut after (None: found automatically)
    provenance: dict[str, str]
    checksums: dict[str, str] = {}  # relative path -> sha256 of every file in the bundle but the manifest

    @model_validator(mode="after")
    def _has_a_part(self) -> Manifest:
        if self.spiking is None and (self.dense is None or not self.dense.input_shape):
            raise ValueError("a bundle has a spiking part, or a dense part that takes the model's inputs "
                             "(dense.input_shape)")
        return self

    @property
    def spiking_only(self) -> bool:
        return self.dense is None

    @property
    def gpu_only(self) -> bool:
        """The model runs wholly on the GPU: Loihi cannot run its first layers (the placement says why)."""
        return self.spiking is None

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """One step of one sample as the bundle takes it: the spiking part's input (flat ``(n_in,)`` where it
        has no other shape), or the dense part's where the model runs wholly on the GPU."""
        if self.spiking is None:
            return tuple(self.dense.input_shape)
        return tuple(self.spiking.input_shape) or (self.spiking.n_in,)

    @property
    def sample_size(self) -> int:
        """Values in one step of one sample (``n_in`` of the spiking part)."""
        return self.spiking.n_in if self.spiking is not None else int(np.prod(self.sample_shape))

    @property
    def window_steps(self) -> int | None:
        """Steps per window of the dense part's step model: a zoo back-end's adapter window, or the window a
        captured model's derived step model takes; None where the dense part runs on whole samples only."""
        if self.adapter is not None:
            return self.adapter.window
        return self.dense.window_steps if self.dense is not None else None

    def windowed(self, schedule: str) -> int | None:
        """Steps per window of a run on ``schedule``: a zoo back-end's adapter window whatever the schedule (its
        adapter makes windows); a captured model's step window on ``window``/``event`` only (None on ``end``:
        its dense part runs once on the whole sample)."""
        if self.adapter is not None:
            return self.adapter.window
        return None if schedule == "end" else self.window_steps

    @property
    def default_schedule(self) -> Schedule:
        """The bundle's own deployment schedule: what ``schedule=None`` means everywhere
        (:func:`neurodeploy.bundle.schedules.default_schedule`)."""
        return default_schedule(self)
