"""Which PyTorch model a name means: one resolver for compile, co-simulation, evaluation and sweeps.

A model is named as a bundled zoo model (``"liquidspikeformer"``) or a ``"package.module:function"``
factory (:mod:`neurodeploy.compiler.factories`), with an optional ``state_dict`` file of weights. A
bundle's own model (for agreement on new inputs) is the one the user names, else the zoo model the bundle
was compiled from (unless it was compiled with weights that were not given again). A bundle is data: a
factory named in its manifest is never imported (that would run whatever code the manifest names); the
user passes it (``--model``, ``model=``) to compare with it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from neurodeploy.bundle import Bundle
from neurodeploy.compiler.factories import load_factory, load_weights
from neurodeploy.errors import UsageError
from neurodeploy.models import zoo


@dataclass
class ResolvedModel:
    model: nn.Module
    inputs: Any  # example inputs (B, T, ...): the ones given, else the zoo's or the factory's
    dt_s: float | None
    name: str
    schedule: str | None  # the schedule a zoo model is deployed with (None: the compile default)


def is_model_name(spec: str) -> bool:
    """Whether ``spec`` names a zoo model or a factory."""
    return spec in zoo.ZOO or ":" in spec


def resolve_model(spec: str, inputs=None, dt_s: float | None = None, samples: int = 1,
                  weights: str | Path | None = None, name: str | None = None) -> ResolvedModel:
    """A zoo name or a factory -> the model, with its example inputs and dt; explicit ``inputs``/``dt_s`` win."""
    if spec in zoo.ZOO:
        entry = zoo.get(spec)
        model = entry.build()
        if weights is not None:
            load_weights(model, Path(weights))
        examples = entry.example_inputs(samples) if inputs is None else inputs
        return ResolvedModel(model, examples, dt_s or entry.dt_s, name or spec, entry.schedule)
    if ":" in spec:
        model, made_inputs, made_dt, _ = load_factory(spec, Path(weights) if weights else None, samples)
        return ResolvedModel(model, made_inputs if inputs is None else inputs, dt_s or made_dt, name or spec, None)
    raise UsageError(f"model {spec!r} is neither a bundled model ({', '.join(sorted(zoo.ZOO))}), a .nir/.net file, "
                     "nor a 'package.module:function' factory")


def model_for_bundle(bundle: Bundle, model: Any = None, weights: str | Path | None = None) -> nn.Module | None:
    """The PyTorch model to compare with: ``model`` itself, a zoo name or factory, else the zoo model or
    factory the bundle was compiled from (unless it was compiled with other weights), else None."""
    if model is not None and not isinstance(model, str):
        return model
    spec = model or _own_zoo_model(bundle, weights)
    if spec is None or not is_model_name(spec):
        if model is not None:
            raise UsageError(f"model {model!r} is neither a zoo name ({', '.join(sorted(zoo.ZOO))}) nor a "
                             "'package.module:function' factory")
        return None
    return resolve_model(spec, weights=weights).model


def _own_zoo_model(bundle: Bundle, weights) -> str | None:
    """The zoo model the bundle was compiled from (None: another model, or other weights we do not have)."""
    provenance = bundle.manifest.provenance or {}
    same_weights = weights is not None or "weights" not in provenance
    named = provenance.get("model")
    return named if same_weights and named in zoo.ZOO else None


def no_model_note(bundle: Bundle, model: Any = None, what: str = "agreement") -> str | None:
    """Why no PyTorch model is at hand for a bundle compiled from a factory, and how to give it (``what``:
    the figure that is missing for it)."""
    named = (bundle.manifest.provenance or {}).get("model")
    if model is not None or not named or ":" not in named:
        return None
    weights = (bundle.manifest.provenance or {}).get("weights")
    return (f"{what} not computed: the bundle was compiled from the factory '{named}', and a bundle never "
            f"imports code it names; pass --model {named}" + (f" --weights {weights}" if weights else "") +
            " (model= and weights= in the API) to compare with it")


def torch_reference_for(bundle: Bundle, model: Any = None, weights: str | Path | None = None):
    """A function x (B, T, ...) -> the PyTorch model's outputs on x as the bundle stores them
    (:func:`~neurodeploy.compiler.torch_reference.torch_reference`), or None where no model is at hand."""
    from neurodeploy.compiler.torch_reference import torch_reference

    def outputs(x):
        resolved = model_for_bundle(bundle, model, weights)
        if resolved is None:
            return None
        m = bundle.manifest
        return torch_reference(resolved, torch.as_tensor(x), layout=m.input_layout, cut=m.cut,
                               dt_s=m.spiking.dt_s if m.spiking is not None else None)
    return outputs
