"""Stage 1, the deployment bundle: the unit that moves between stages, a folder of data (never code).

Enters: a :class:`Manifest` and the files of both parts (written by :mod:`neurodeploy.compiler`).
Leaves: a verified :class:`Bundle` (:func:`read_bundle`), read by the runtime, cost and reports.

- :mod:`~neurodeploy.bundle.manifest`: ``manifest.json``'s schema (pydantic);
- :mod:`~neurodeploy.bundle.folder`: writing and reading the folder, checksums, paths that stay inside it;
- :mod:`~neurodeploy.bundle.atomic`: writes that cannot destroy (temporary file or folder, then rename, under a lock);
- :mod:`~neurodeploy.bundle.schedules`: which schedules and early exits a bundle can run.
"""
from neurodeploy.bundle.folder import Bundle, check_out_folder, read_bundle, sha256, write_bundle
from neurodeploy.bundle.manifest import (MANIFEST, SCHEMA_VERSION, TAIL_REASON, Adapter, DensePart, FeedbackPart,
                                         Manifest, ParityRecord, Placement, SpikingPart, TorchReference)

__all__ = ["Bundle", "check_out_folder", "read_bundle", "sha256", "write_bundle", "MANIFEST", "SCHEMA_VERSION", "TAIL_REASON", "Adapter",
           "DensePart", "FeedbackPart", "Manifest", "ParityRecord", "Placement", "SpikingPart", "TorchReference"]
