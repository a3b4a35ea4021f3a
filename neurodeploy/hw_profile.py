"""Hardware profiles (``hw_profiles/*.json``): every figure with its value, a label and its source.

A profile is looked up by name in the bundled ``hw_profiles/`` folder or read from a path. Validation
is pydantic's: a missing field or a figure without a source or label is a :class:`ProfileError` that
lists every problem.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

PROFILE_DIR = Path(__file__).resolve().parent.parent / "hw_profiles"
Label = Literal["measured", "pre-silicon", "estimate", "derived"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProfileError(ValueError):
    """A hardware profile is missing, unreadable or malformed; the message lists each problem."""


class Figure(_Strict):
    value: float | int | bool
    label: Label
    source: str


class NeuromorphicResources(_Strict):
    """Per-core and per-chip limits used by :mod:`neurodeploy.resources`."""

    cores_per_chip: Figure
    neurons_per_core: Figure
    synapses_per_core: Figure
    fan_in_per_core: Figure
    fan_out_per_core: Figure
    weight_bits: Figure
    shared_conv_weights: Figure


class NeuromorphicEnergy(_Strict):
    """Joules per event and static watts per chip."""

    synop_j: Figure
    neuron_update_j: Figure
    spike_j: Figure
    hop_j: Figure
    static_w: Figure


class NeuromorphicTiming(_Strict):
    """Seconds per event on one core, and the per-step barrier."""

    synop_s: Figure
    neuron_update_s: Figure
    barrier_s: Figure


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


def load_profile(name_or_path: str | Path, kind: str = "neuromorphic") -> Profile:
    """A bundled profile by name (``loihi2``) or a JSON file by path, validated as ``kind``."""
    if kind not in KINDS:
        raise ProfileError(f"unknown profile kind {kind!r}; kinds: {sorted(KINDS)}")
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILE_DIR / f"{name_or_path}.json"
    if not path.is_file():
        known = sorted(p.stem for p in PROFILE_DIR.glob("*.json"))
        raise ProfileError(f"no hardware profile {str(name_or_path)!r}; bundled profiles: {known}, or pass a path")
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and data.get("kind") != kind:
            raise ProfileError(f"{path}: a {data.get('kind')!r} profile where a {kind!r} profile is needed")
        return KINDS[kind].model_validate(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: not valid JSON ({exc})") from exc
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise ProfileError(f"{path} is not a valid profile:\n  - " + "\n  - ".join(problems)) from exc
