"""Stage 0 data, hardware profiles shipped with neurodeploy: one JSON file per device, every figure with a label
and a source.

Enters: nothing (data). Leaves: the JSON files, read by :func:`neurodeploy.profiles.load_profile`.

Installed as ``neurodeploy.hw_profiles``; read through :func:`neurodeploy.profiles.load_profile`.
"""
