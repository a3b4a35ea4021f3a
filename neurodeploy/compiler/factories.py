"""User models given by reference: ``module:function`` factories and ``state_dict`` weight files."""
from __future__ import annotations

import importlib
import pickle
from pathlib import Path

import torch
from torch import nn

from neurodeploy.errors import FactoryError


def load_factory(spec: str, weights: Path | None = None, num_samples: int = 8) -> tuple[nn.Module, torch.Tensor, float, str]:
    """``module:function`` -> (model, example inputs, dt_s, name).

    The function returns a :class:`neurodeploy.models.zoo.ZooEntry`, or ``(model, inputs, dt_s)`` with inputs
    (B, T, *input_shape). ``weights`` is a ``state_dict`` file loaded strictly into the model.
    """
    from neurodeploy.models.zoo import ZooEntry

    module_name, _, function_name = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise FactoryError(f"cannot load the factory {spec!r}: {exc}; expected 'package.module:function' importable "
                         "from the current directory") from exc
    try:
        made = factory()
    except Exception as exc:  # the user's code: report where it failed, as one named error
        raise FactoryError(f"the factory {spec} raised {type(exc).__name__}: {exc}") from exc
    if isinstance(made, ZooEntry):
        model, inputs, dt_s = made.build(), made.example_inputs(num_samples), made.dt_s
    elif isinstance(made, tuple) and len(made) == 3:
        model, inputs, dt_s = made
    else:
        raise FactoryError(f"{spec} returned {type(made).__name__}; return a ZooEntry or (model, inputs, dt_s)")
    if weights is not None:
        load_weights(model, weights)
    return model.eval(), torch.as_tensor(inputs).float(), float(dt_s), function_name


def load_weights(model: nn.Module, weights: Path) -> nn.Module:
    """Load a ``state_dict`` file into ``model``; every missing and unexpected key is listed on a mismatch."""
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as exc:  # missing, not torch, objects
        raise FactoryError(f"cannot read --weights {weights}: {str(exc).splitlines()[0]}; save it with "
                           "torch.save(model.state_dict(), path)") from exc
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise FactoryError(f"--weights {weights} does not fit the model: missing {list(missing)}, "
                         f"unexpected {list(unexpected)}")
    return model
