"""Stage 3, exporters: file formats only, both directions where the format allows: NIR, lava-dl netx (HDF5)
and ONNX.

Enters: PyTorch modules, plans, files. Leaves: files (``.nir``, ``.net``, ``.onnx``), plans read back
from them (entry: :func:`load_spiking`), ONNX Runtime sessions (:mod:`~neurodeploy.exporters.onnx_session`).
The design rules and lowering of a NIR graph are the spiking stage's (:mod:`neurodeploy.spiking.nir_lowering`).

Installed as ``neurodeploy.exporters``. This module is the one registry through which the rest of
neurodeploy reaches the formats: the names below are loaded on first use (so importing the registry
imports neither torch nor ONNX), and :func:`load_spiking` picks the reader by file suffix.

| name | format | module |
|---|---|---|
| ``load_spiking`` | a ``.nir`` or netx ``.net`` file -> :class:`~neurodeploy.spiking.plan.SpikingPlan` | here |
| ``write_nir``, ``frontend_to_nir`` | neurodeploy ``SpikingSequential`` -> NIR file | ``nir_export`` |
| ``sequential_to_nir``, ``conversion_problems`` | PyTorch modules (snnTorch, norse, ...) -> NIR | ``torch_to_nir`` |
| ``read_plan`` | NIR file -> plan (lowered by :mod:`neurodeploy.spiking.nir_lowering`) | ``nir_read`` |
| ``read_netx``, ``write_netx`` | netx HDF5 <-> plan | ``netx_hdf5`` |
| ``export_backend``, ``export_dense``, ``check_parity``, ``check_dynamic_dims`` | dense part -> ONNX, verified | ``onnx_export`` |
| ``check_hdf5`` | an HDF5 file refused if it reads outside itself or declares too much | ``hdf5_guard`` |
| ``make_session`` | an ONNX file -> an ONNX Runtime session (CUDA when present) | ``onnx_session`` |
"""
from __future__ import annotations

import importlib
from pathlib import Path

SPIKING_FORMATS = {".nir": "nir", ".net": "netx"}

_LAZY = {
    "write_nir": "nir_export", "frontend_to_nir": "nir_export",
    "sequential_to_nir": "torch_to_nir", "conversion_problems": "torch_to_nir",
    "read_plan": "nir_read",
    "read_netx": "netx_hdf5", "write_netx": "netx_hdf5",
    "export_backend": "onnx_export", "export_dense": "onnx_export", "check_parity": "onnx_export",
    "check_dynamic_dims": "onnx_export", "INPUT_NAME": "onnx_export", "OUTPUT_NAME": "onnx_export",
    "make_session": "onnx_session", "check_hdf5": "hdf5_guard",
}

__all__ = ["SPIKING_FORMATS", "load_spiking", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_spiking(path: str | Path, dt: float | None = None, discretisation: str = "euler",
                 fixes: tuple[str, ...] | list[str] = ()):
    """A :class:`~neurodeploy.spiking.plan.SpikingPlan` from a ``.nir`` or lava-dl netx ``.net`` file.

    ``discretisation`` (``euler`` or ``exact``) and ``fixes`` (exporter defects to correct) apply to NIR
    graphs; a netx file carries Loihi's own integers and takes neither.
    """
    from neurodeploy.errors import SpikingPlanError

    path = Path(path)
    kind = SPIKING_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise SpikingPlanError(f"{path}: unknown spiking format {path.suffix!r}; use one of {sorted(SPIKING_FORMATS)}")
    if not path.is_file():
        raise SpikingPlanError(f"{path}: no such file")
    if kind == "netx":
        if discretisation != "euler" or fixes:
            raise SpikingPlanError(f"{path}: a netx file holds Loihi's integer decays; discretisation and exporter "
                                   "fixes apply to NIR graphs only")
        from neurodeploy.exporters.netx_hdf5 import read_netx

        return read_netx(path) if dt is None else read_netx(path, dt)
    from neurodeploy.exporters.nir_read import read_plan

    return read_plan(path, dt, discretisation, fixes)
