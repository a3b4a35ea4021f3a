"""Stage 0, hardware profiles: the loader and schema of ``hw_profiles/*.json`` (data shipped as
``neurodeploy.hw_profiles``), every figure with its value, label and source.

Enters: a profile name (``loihi2``, ``h100``) or a JSON path. Leaves: a validated profile
(:func:`load_profile`), read by the quantizer, the resource map and the cost model.
"""
from neurodeploy.profiles.loader import (PROFILE_DIR, PATH_VARIABLE, Label, Figure, NeuromorphicResources, NeuromorphicNumerics, NeuromorphicEnergy,
                                        NeuromorphicTiming, Link, NeuromorphicProfile, GpuCompute, GpuProfile,
                                        ReferenceOps, ReferenceProfile, Profile, KINDS, profile_dirs,
                                        available_profiles, find_profile, load_profile)

__all__ = ['PROFILE_DIR', 'PATH_VARIABLE', 'Label', 'Figure', 'NeuromorphicResources', 'NeuromorphicNumerics',
           'NeuromorphicEnergy', 'NeuromorphicTiming', 'Link', 'NeuromorphicProfile', 'GpuCompute', 'GpuProfile',
           'ReferenceOps', 'ReferenceProfile', 'Profile', 'KINDS', 'profile_dirs', 'available_profiles',
           'find_profile', 'load_profile']
