"""A sweep's configuration file (TOML), checked by pydantic, and the grid of configurations it spans.

    model = "liquidspikeformer"      # a zoo name or "package.module:function"
    # weights = "trained.pt"         # a state_dict for the model
    # data = "test.npz"              # x (B, T, ...) and labels (B,); default: the zoo model's test split
    samples = 64                     # samples of the zoo model's generated test split (without data)
    price_samples = 16               # samples co-simulated to price each configuration (energy, latency)
    backend = "emulator"             # what runs the spiking part: emulator or lava
    device = "auto"                  # where the emulator and the dense part compute: auto, cpu, cuda, cuda:N
    chunk = 256                      # samples per co-simulation call

    [grid]                           # every combination is one configuration (one row of the table)
    cut = "all"                      # "all": every valid cut of the spiking chain; or a list of names
    mode = ["float", "fixed"]
    loihi = ["loihi2"]               # neuromorphic profiles (the bundle is compiled for each)
    precision = ["auto"]             # fixed-point weights: auto, double (two synapses per weight) or single (8-bit)
    gpu = ["h100", "jetson_orin_nano"]
    schedule = ["bundle"]            # "bundle": the bundle's own; or end / window / event
    early_exit = [false]
    exit_threshold = ["bundle"]      # early-exit confidence: the bundle's own, or values (with early_exit = true)
    event_threshold = ["bundle"]     # cut spikes per window that wake the dense part (with schedule "event")

Axes that change the bundle (cut, loihi, precision) compile one bundle each; the others reuse it. A
configuration's identity (``config_id``) is a hash of its axis values, so a result table can be
resumed and rows are never counted twice.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from neurodeploy.choices import Backend, Mode, Precision, Schedule
from neurodeploy.errors import UsageError, validation_problems

AXES = ("cut", "loihi", "precision", "mode", "schedule", "early_exit", "exit_threshold", "event_threshold", "gpu")
RUN_AXES = ("mode", "schedule", "early_exit", "exit_threshold", "event_threshold")  # one task each (with a bundle)
BUNDLE_AXES = ("cut", "loihi", "precision")  # axes that need their own bundle
DEFAULT_CUT = "default"  # the cut the partitioner finds itself (the whole chain on Loihi)


class Grid(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cut: Literal["all"] | list[str] = [DEFAULT_CUT]
    mode: list[Mode] = ["fixed"]
    loihi: list[str] = ["loihi2"]
    precision: list[Precision] = ["auto"]
    gpu: list[str] = ["h100"]
    schedule: list[Schedule | Literal["bundle"]] = ["bundle"]
    early_exit: list[bool] = [False]
    exit_threshold: list[float | Literal["bundle"]] = ["bundle"]
    event_threshold: list[float | Literal["bundle"]] = ["bundle"]

    @field_validator("mode", "loihi", "precision", "gpu", "schedule", "early_exit", "exit_threshold", "event_threshold")
    @classmethod
    def _not_empty(cls, v: list) -> list:
        if not v:
            raise ValueError("an axis needs at least one value")
        return list(dict.fromkeys(v))


class SweepConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str
    weights: str | None = None
    data: str | None = None
    samples: int = Field(64, ge=1)
    price_samples: int = Field(16, ge=1)
    backend: Backend = "emulator"
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")  # neurodeploy.runtime.devices
    chunk: int = Field(256, ge=1)
    grid: Grid = Grid()


def load_config(source: str | Path | dict) -> SweepConfig:
    """A :class:`SweepConfig` from a TOML file or a dict; a bad file is a :class:`UsageError` naming each field."""
    if isinstance(source, dict):
        raw, where = source, "the sweep configuration"
    else:
        where = str(source)
        try:
            raw = tomllib.loads(Path(source).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"cannot read the sweep configuration {source}: {exc}") from exc
    try:
        return SweepConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(validation_problems(exc))
        raise UsageError(f"{where}: {problems} (see the configuration format in neurodeploy.sweeps.config)") from None


def config_id(values: dict) -> str:
    """A short stable id of one configuration's axis values."""
    return hashlib.sha256(json.dumps({k: values[k] for k in AXES}, sort_keys=True).encode()).hexdigest()[:12]


def configurations(grid: Grid, cuts: list[str]) -> list[dict]:
    """Every combination of the grid's axes, in a stable order, each with its ``config_id``
    (``cuts``: the values of the cut axis, already resolved from ``"all"``)."""
    axes = {"cut": cuts, **{k: getattr(grid, k) for k in AXES if k != "cut"}}
    rows = [dict(zip(AXES, combo)) for combo in itertools.product(*(axes[k] for k in AXES))]
    return [{"config_id": config_id(r), **r} for r in rows]


def bundle_key(values: dict) -> str:
    """The name of the bundle a configuration runs on (one per cut and neuromorphic profile)."""
    return "__".join(str(values[k]).replace(".", "-") for k in BUNDLE_AXES)
