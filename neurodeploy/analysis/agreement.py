"""Agreement of a co-simulation with the PyTorch model, computed after the run.

On the bundle's reference inputs the deployed outputs are compared with the PyTorch outputs stored in
the bundle at compile; on other inputs with the PyTorch model's outputs on them
(:func:`neurodeploy.compiler.torch_reference.torch_reference`) where a model is at hand. Spikes must
match exactly (counted per population, step and sample); ``y`` by its largest absolute error and argmax.
The event schedule compares with the PyTorch model run through the event schedule (``y_event``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from neurodeploy.bundle import Bundle
from neurodeploy.runtime.cosim import CosimResult
from neurodeploy.runtime.inputs import bundle_inputs
from neurodeploy.units import number, percent

TorchReferenceFn = Callable[[np.ndarray], "dict[str, np.ndarray] | None"]
"""Inputs (B, T, ...) -> the PyTorch model's outputs on them (``spikes/<population>`` and ``y``), or None."""


@dataclass
class Agreement:
    """Co-simulation vs the PyTorch model."""

    spike_mismatches: int  # over every population, every step, every sample
    spike_mismatches_per_layer: dict[str, int]
    max_abs_err: float | None  # of the final output y (None: no PyTorch output runs as the schedule does)
    top1_match: float | None  # fraction of samples with the same argmax

    def __repr__(self) -> str:
        return (f"Agreement({number(self.spike_mismatches)} spike mismatches, max |error| of y "
                f"{number(self.max_abs_err)}, top-1 match {percent(self.top1_match)})")


def agreement(spikes: dict[str, np.ndarray], y: np.ndarray, torch_outputs: dict[str, np.ndarray],
              y_key: str = "y", voltages: set[str] = frozenset()) -> Agreement:
    """Spike mismatches over every population but ``voltages`` (those that send their voltage, compared
    through ``y``), the largest error and the argmax agreement of ``y``."""
    per_layer = {name: int(np.sum(s != torch_outputs[f"spikes/{name}"])) for name, s in spikes.items()
                 if name not in voltages}
    torch_y = torch_outputs.get(y_key)
    return Agreement(
        spike_mismatches=sum(per_layer.values()), spike_mismatches_per_layer=per_layer,
        max_abs_err=None if torch_y is None else float(np.max(np.abs(y - torch_y))),
        top1_match=None if torch_y is None else float(np.mean(np.argmax(y, axis=-1) == np.argmax(torch_y, axis=-1))),
    )


def compare_with_torch(bundle: Bundle, result: CosimResult, inputs: np.ndarray | None,
                       torch_reference_for: TorchReferenceFn | None = None, no_model: str | None = None
                       ) -> Agreement | None:
    """``result`` (a run on ``inputs``, None: the bundle's reference inputs) against PyTorch: the outputs
    stored in the bundle on its reference inputs, else ``torch_reference_for(x)`` (x: the inputs normalised,
    (B, T, ...) float64) when it gives them; else None, with a note in ``result.notes`` saying why
    (``no_model``, where the caller knows better)."""
    key = "y_event" if result.schedule == "event" else "y"
    if key == "y_event" and bundle.manifest.dense is not None and bundle.manifest.dense.step_output == "last":
        result.notes.append("the event schedule holds the dense part's output over quiet windows: the model itself "
                            "does not run that way, so its spikes are compared and its output is not")
    if bundle.manifest.reference is None:
        result.notes.append("agreement not computed: a spiking-only bundle has no PyTorch reference")
        return None
    x = bundle_inputs(bundle, inputs)
    voltages = result.plan.readouts if result.plan is not None else set()
    if np.array_equal(x, bundle.reference_inputs().astype(np.float64)):
        return agreement(result.spikes, result.y, bundle.reference_outputs(), key, voltages)
    outputs = None if torch_reference_for is None else torch_reference_for(x)
    if outputs is not None:
        return agreement(result.spikes, result.y, outputs, key, voltages)
    result.notes.append(no_model or "agreement not computed: these are not the bundle's reference inputs and no "
                        "PyTorch model was given (model= in the API, --model on the CLI)")
    return None
