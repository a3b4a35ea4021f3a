"""Hardware profiles (``hw_profiles/*.json``): every figure with its value, a label and its source.

A profile is read from a path (``my_chip.json``) or looked up by name, first in the folders named by
the ``NEURODEPLOY_PROFILE_PATH`` environment variable (``os.pathsep``-separated, like ``PATH``) or
passed as ``search``, then in the profiles shipped inside the package (``neurodeploy.hw_profiles``,
package data of the wheel). Validation is pydantic's: a missing field or a figure without a source
or label is a :class:`ProfileError` that lists every problem.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from neurodeploy.errors import ProfileError, validation_problems

PROFILE_DIR = Path(str(files("neurodeploy.hw_profiles")))
"""The profiles shipped with neurodeploy."""
PATH_VARIABLE = "NEURODEPLOY_PROFILE_PATH"
Label = Literal["measured", "pre-silicon", "estimate", "derived"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Figure(_Strict):
    value: float | int | bool
    label: Label
    source: str


class NeuromorphicResources(_Strict):
    """Per-core and per-chip limits used by :mod:`neurodeploy.spiking.resources`."""

    cores_per_chip: Figure
    neurons_per_core: Figure
    synapses_per_core: Figure
    fan_in_per_core: Figure
    fan_out_per_core: Figure
    shared_conv_weights: Figure


class NeuromorphicNumerics(_Strict):
    """Bit widths of the fixed-point neuron and synapse, read by :mod:`neurodeploy.spiking.loihi`."""

    weight_bits: Figure
    weight_exp_min: Figure
    weight_exp_max: Figure
    state_bits: Figure
    vth_bits: Figure
    bias_mant_bits: Figure
    bias_exp_bits: Figure
    decay_bits: Figure
    act_shift: Figure
    graded_spike_bits: Figure


class NeuromorphicEnergy(_Strict):
    """Joules per event and static watts per chip."""

    synop_j: Figure
    neuron_update_j: Figure
    spike_j: Figure
    hop_j: Figure
    static_w: Figure
    # fraction of a population's compartments the chip updates per time step (1: all, whatever their input)
    neuron_updates_per_step: Figure | None = None
    synop_conv_j: Figure | None = None  # a synaptic operation of a convolution (shared kernel); absent: synop_j
    message_j: Figure | None = None  # one spike message out of a core, per destination core; absent: 0


class NeuromorphicTiming(_Strict):
    """Seconds per event on one core, and the per-step barrier."""

    synop_s: Figure
    neuron_update_s: Figure
    barrier_s: Figure
    synop_conv_s: Figure | None = None  # a convolution's synaptic operation; absent: synop_s
    spike_s: Figure | None = None  # generating one spike; absent: 0
    message_s: Figure | None = None  # sending one spike message, per destination core; absent: 0


class Link(_Strict):
    """The link between the neuromorphic chip and the GPU."""

    bandwidth_bps: Figure
    latency_s: Figure
    energy_j_per_bit: Figure


class _Profile(_Strict):
    name: str
    description: str = ""


class NeuromorphicProfile(_Profile):
    kind: Literal["neuromorphic"]
    resources: NeuromorphicResources
    numerics: NeuromorphicNumerics | None = None  # Lava's (Loihi 2) formats where absent
    energy: NeuromorphicEnergy | None = None
    timing: NeuromorphicTiming | None = None
    link: Link | None = None


class GpuCompute(_Strict):
    peak_flops: Figure
    memory_bw_bps: Figure
    tdp_w: Figure
    efficiency: Figure
    launch_s: Figure


class GpuProfile(_Profile):
    kind: Literal["gpu"]
    compute: GpuCompute


class ReferenceOps(_Strict):
    mac_j: Figure
    ac_j: Figure


class ReferenceProfile(_Profile):
    kind: Literal["reference"]
    ops: ReferenceOps


Profile = NeuromorphicProfile | GpuProfile | ReferenceProfile
KINDS = {"neuromorphic": NeuromorphicProfile, "gpu": GpuProfile, "reference": ReferenceProfile}


def profile_dirs(search: Iterable[str | Path] = ()) -> list[Path]:
    """Where profiles are looked up by name, in order: ``search``, ``$NEURODEPLOY_PROFILE_PATH``, the shipped ones."""
    env = [Path(p) for p in os.environ.get(PATH_VARIABLE, "").split(os.pathsep) if p]
    return [Path(p) for p in search] + env + [PROFILE_DIR]


def available_profiles(search: Iterable[str | Path] = ()) -> list[str]:
    """Every profile name that :func:`load_profile` finds."""
    return sorted({p.stem for d in profile_dirs(search) if d.is_dir() for p in d.glob("*.json")})


def find_profile(name_or_path: str | Path, search: Iterable[str | Path] = ()) -> Path:
    """The file of a profile: ``name_or_path`` itself when it has a suffix, else the first ``NAME.json`` found."""
    path = Path(name_or_path)
    if path.suffix:
        if path.is_file():
            return path
        raise ProfileError(f"no hardware profile file {str(path)!r}")
    for folder in profile_dirs(search):
        if (folder / f"{name_or_path}.json").is_file():
            return folder / f"{name_or_path}.json"
    raise ProfileError(f"no hardware profile {str(name_or_path)!r}; known profiles: {available_profiles(search)}; "
                       f"pass a .json path or add its folder to ${PATH_VARIABLE}")


def load_profile(name_or_path: str | Path, kind: str = "neuromorphic", search: Iterable[str | Path] = ()) -> Profile:
    """A profile by name (``loihi2``; see :func:`profile_dirs`) or a JSON file by path, validated as ``kind``."""
    if kind not in KINDS:
        raise ProfileError(f"unknown profile kind {kind!r}; kinds: {sorted(KINDS)}")
    path = find_profile(name_or_path, search)
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and data.get("kind") != kind:
            raise ProfileError(f"{path}: a {data.get('kind')!r} profile where a {kind!r} profile is needed")
        return KINDS[kind].model_validate(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: not valid JSON ({exc})") from exc
    except ValidationError as exc:
        problems = validation_problems(exc)
        raise ProfileError(f"{path} is not a valid profile:\n  - " + "\n  - ".join(problems)) from exc
