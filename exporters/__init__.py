"""One module per target format; :func:`load_spiking` is the registry the core uses to read a spiking part."""
from __future__ import annotations

from pathlib import Path

SPIKING_FORMATS = {".nir": "nir", ".net": "netx"}


def load_spiking(path: str | Path, dt: float | None = None):
    """A :class:`~neurodeploy.spiking.plan.SpikingPlan` from a ``.nir`` or lava-dl netx ``.net`` file."""
    from neurodeploy.spiking.plan import SpikingPlanError

    path = Path(path)
    kind = SPIKING_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise SpikingPlanError(f"{path}: unknown spiking format {path.suffix!r}; use one of {sorted(SPIKING_FORMATS)}")
    if not path.is_file():
        raise SpikingPlanError(f"{path}: no such file")
    if kind == "netx":
        from neurodeploy.exporters.netx_hdf5 import read_netx

        return read_netx(path) if dt is None else read_netx(path, dt)
    from neurodeploy.exporters.nir_import import read_plan

    return read_plan(path, dt)
