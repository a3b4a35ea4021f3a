"""HDF5 files (NIR graphs, lava-dl netx networks) checked before anything in them is read: they are data
from other people.

HDF5 can make a file read other files: a dataset with *external storage* keeps its bytes in any file named
in it, an *external link* points into another file, a *virtual dataset* maps other files' datasets. A
``.nir`` or ``.net`` file using any of them is refused by name (``h5py`` would follow them silently, and
checksums of the file itself would still pass). A file's datasets also declare their shapes before their
bytes are read: a small file may declare 10**9 weights (compressed, or never written). The declared sizes
are summed and checked against a memory budget before a weight is read or converted.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from neurodeploy.errors import SpikingPlanError, UnsafeGraphFileError

MEMORY_BUDGET_BYTES = 1 << 30
"""The most the datasets of one spiking graph may declare, as float64 (what the plan holds): 1 GiB, 2**27
weights, about 100 times the synapses of a Loihi 2 chip (128 cores x 1 MiB synaptic memory, 8-bit
weights at best)."""


def check_hdf5(path: str | Path, budget_bytes: int = MEMORY_BUDGET_BYTES) -> None:
    """Refuse ``path`` if it reaches outside itself or declares more than ``budget_bytes`` of float64 data.

    Reads only the file's metadata (links, dataset shapes and storage layout), never a dataset's bytes.
    """
    path = Path(path)
    try:
        problems, declared = _survey(path)
    except OSError:
        return  # not an HDF5 file at all: the format's own reader says so, with its own message
    except Exception as exc:  # noqa: BLE001 - h5py raises RuntimeError, KeyError, ... on damaged metadata
        raise SpikingPlanError(f"{path}: damaged HDF5 metadata ({type(exc).__name__}: {exc})",
                               "cannot read the file") from exc
    if problems:
        raise UnsafeGraphFileError(problems, f"{path}: refused, it reads data outside itself (HDF5 external "
                                             "storage, external links or virtual datasets are not accepted in a "
                                             "shared file)")
    if declared > budget_bytes:
        raise UnsafeGraphFileError(f"its datasets declare {declared / 2**30:.3g} GiB of weights and states (as "
                                   f"float64), over the memory budget of {budget_bytes / 2**30:.3g} GiB; no Loihi "
                                   "network is that large: the file is damaged or not a spiking graph",
                                   f"{path}: refused")


def _survey(path: Path) -> tuple[list[str], float]:
    """(what reaches outside the file, bytes its datasets declare as float64), from metadata only."""
    problems: list[str] = []
    declared = 0.0
    with h5py.File(path, "r") as f:
        for name, link, obj in _walk(f):
            if isinstance(link, h5py.ExternalLink):
                problems.append(f"{name}: an external link to {link.filename}:{link.path}")
            elif isinstance(obj, h5py.Dataset):
                problem = _storage_problem(name, obj)
                if problem:
                    problems.append(problem)
                declared += float(np.prod(obj.shape, dtype=np.float64)) * 8 if obj.shape else 8
    return problems, declared


def _walk(group: h5py.Group, prefix: str = "", seen: set | None = None):
    """(name, link, object or None) for every member, following neither external nor soft links, each
    object once (a group may be hard-linked into itself)."""
    seen = set() if seen is None else seen
    for key in group.keys():
        name = f"{prefix}/{key}"
        link = group.get(key, getlink=True)
        if not isinstance(link, h5py.HardLink):
            yield name, link, None
            continue
        obj = group.get(key)
        if obj.id in seen:
            continue
        seen.add(obj.id)
        yield name, link, obj
        if isinstance(obj, h5py.Group):
            yield from _walk(obj, name, seen)


def _storage_problem(name: str, ds: h5py.Dataset) -> str | None:
    if ds.is_virtual:
        sources = sorted({m.file_name for m in ds.virtual_sources()})
        return f"{name}: a virtual dataset over {', '.join(sources)}"
    if ds.external:
        return f"{name}: external storage in {', '.join(str(e[0]) for e in ds.external)}"
    return None
