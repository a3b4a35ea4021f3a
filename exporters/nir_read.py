"""Reading a ``.nir`` file (NIR's own HDF5 reader) into a plan, through the lowering pass
:func:`neurodeploy.spiking.nir_lowering.nir_to_plan` (design rules, chains, types, exporter fixes)."""
from __future__ import annotations

from pathlib import Path

import nir

from neurodeploy.errors import SpikingPlanError
from neurodeploy.exporters.hdf5_guard import check_hdf5
from neurodeploy.spiking.nir_lowering import nir_to_plan
from neurodeploy.spiking.plan import SpikingPlan


def read_plan(path: Path, dt: float | None = None, discretisation: str = "euler",
              fixes: tuple[str, ...] | list[str] = ()) -> SpikingPlan:
    """A plan from a ``.nir`` file; an unreadable or malformed file is a SpikingPlanError, one that reads outside
    itself or declares more than the memory budget an UnsafeFileError (:mod:`neurodeploy.exporters.hdf5_guard`),
    checked before anything is read."""
    check_hdf5(path)
    try:
        graph = nir.read(str(path), type_check=False)  # shapes are propagated here from the Input
    except Exception as exc:  # h5py and nir raise many kinds on damaged files
        raise SpikingPlanError(f"{path}: not a readable NIR file ({type(exc).__name__}: {exc})",
                               "cannot read the NIR graph") from exc
    if not isinstance(graph, nir.NIRGraph):
        raise SpikingPlanError(f"{path}: holds a {type(graph).__name__}, not a NIR graph", "cannot read the NIR graph")
    return nir_to_plan(graph, dt, discretisation, fixes)
