"""The compiler's front door: whatever the user names as a model, to a bundle on disk.

A model is an ``nn.Module`` (with example inputs), a bundled zoo name or a ``module:function`` factory
(:mod:`neurodeploy.compiler.resolve`), the path of a ``.nir`` / netx ``.net`` spiking graph, or a
``nir.NIRGraph``; the first three go through :func:`~neurodeploy.compiler.pipeline.compile_hybrid`, the
others through :func:`~neurodeploy.compiler.pipeline.compile_spiking`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from neurodeploy.bundle import check_out_folder
from neurodeploy.choices import DEFAULT_SAMPLES
from neurodeploy.errors import UsageError
from neurodeploy.exporters.hdf5_guard import check_hdf5

DEFAULT_DT_S = 1e-3
"""dt given to the NIR graph of a model compiled without ``dt_s``: the discrete-time neurons of snnTorch
and neurodeploy step once per sample whatever dt is; it sets only the time constants written to NIR."""
SPIKING_SUFFIXES = (".nir", ".net")
MAX_SAMPLES = 10_000
"""The most example inputs a compile stores as the bundle's reference (they are all run through PyTorch)."""


def is_spiking_graph(model: Any) -> bool:
    """A ``nir.NIRGraph``, or the path of a ``.nir`` / ``.net`` file."""
    return type(model).__name__ == "NIRGraph" or \
        isinstance(model, (str, Path)) and Path(model).suffix.lower() in SPIKING_SUFFIXES


def compile_model(model: Any, out: str | Path, *, inputs: Any = None, dt_s: float | None = None,
                  cut: str | None = None, profile: str = "loihi2", schedule: str | None = None,
                  samples: int = DEFAULT_SAMPLES, weights: str | Path | None = None, name: str | None = None,
                  discretisation: str = "euler", fixes: tuple[str, ...] | list[str] = (), precision: str = "auto",
                  calibration: Any = None, max_chips: int | None = None, event_threshold: float | None = None,
                  exit_threshold: float | None = None, prefix_runner: bool = False) -> Path:
    """Compile ``model`` into a bundle at ``out`` and return its path (the options as :func:`neurodeploy.compile`)."""
    out = Path(out)
    check_out_folder(out)  # before minutes of work: a bundle never replaces anything but a bundle
    if not 1 <= samples <= MAX_SAMPLES:
        raise UsageError(f"samples must be 1 to {MAX_SAMPLES:,} (the example inputs stored in the bundle), got {samples}")
    if is_spiking_graph(model):
        _refuse({"inputs": inputs, "cut": cut, "weights": weights, "schedule": schedule,
                 "event_threshold": event_threshold, "exit_threshold": exit_threshold,
                 "prefix_runner": prefix_runner or None}, "a NIR graph or .net file")
        source = model if type(model).__name__ == "NIRGraph" else Path(model)
        if isinstance(source, Path) and source.is_file():
            check_hdf5(source)  # a file that reads outside itself or declares too much, before torch is imported
        return _compile_spiking(source, out, dt_s, profile, discretisation, fixes, precision,
                                None if calibration is True else calibration, max_chips)
    return _compile_module(model, out, inputs=inputs, dt_s=dt_s, cut=cut, profile=profile, schedule=schedule,
                           samples=samples, weights=weights, name=name, discretisation=discretisation, fixes=fixes,
                           precision=precision, calibration=calibration, max_chips=max_chips,
                           stream=(event_threshold, exit_threshold, prefix_runner))


def _compile_spiking(*args) -> Path:
    from neurodeploy.compiler.pipeline import compile_spiking  # torch, ONNX: only once the file passed the guard

    return compile_spiking(*args)


def _compile_module(model: Any, out: Path, *, inputs, dt_s, cut, profile, schedule, samples, weights, name,
                    discretisation, fixes, precision, calibration, max_chips, stream=(None, None, False)) -> Path:
    """A PyTorch model (an ``nn.Module``, a zoo name or a factory) through :func:`compile_hybrid`."""
    import torch

    from neurodeploy.compiler.factories import load_weights
    from neurodeploy.compiler.partition import cuts
    from neurodeploy.compiler.pipeline import compile_hybrid
    from neurodeploy.compiler.stepping import StreamChoices
    from neurodeploy.compiler.resolve import resolve_model

    if discretisation != "euler" or fixes:
        raise UsageError("discretisation and fixes apply to .nir files; a PyTorch model is exported with the "
                         "update its own neurons compute")
    if isinstance(model, str):
        resolved = resolve_model(model, inputs, dt_s, samples, weights, name)
        model, inputs, dt_s, name = resolved.model, resolved.inputs, resolved.dt_s, resolved.name
        schedule = schedule or (resolved.schedule if cut is None or cut == cuts(model)[-1] else None)
    elif weights is not None:
        load_weights(model, Path(weights))
    if inputs is None:
        raise UsageError("compile(model, ...) of an nn.Module needs inputs=: example inputs (B, T, *input_shape), "
                         "stored in the bundle as its reference")
    return compile_hybrid(model, torch.as_tensor(inputs).float(), out, dt_s or DEFAULT_DT_S,
                          name or type(model).__name__, cut=cut, profile=profile, schedule=schedule,
                          weights=None if weights is None else str(weights), precision=precision,
                          calibration=calibration, max_chips=max_chips, stream=StreamChoices(*stream))


def _refuse(given: dict[str, Any], what: str) -> None:
    extra = [k for k, v in given.items() if v is not None]
    if extra:
        raise UsageError(f"{', '.join(extra)} {'does' if len(extra) == 1 else 'do'} not apply to {what}: its graph "
                         "carries its own inputs, weights and time step")
