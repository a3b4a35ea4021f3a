"""Stage 0: the installed version of neurodeploy, from the package's metadata (``pyproject.toml``)."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("neurodeploy")
except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
    __version__ = "0+unknown"
