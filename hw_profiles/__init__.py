"""Hardware profiles shipped with neurodeploy: one JSON file per device, every figure with a label and a source.

Installed as ``neurodeploy.hw_profiles``; read through :func:`neurodeploy.cost.profiles.load_profile`.
"""
