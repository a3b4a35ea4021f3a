"""Lava processes are stopped however a run ends (the session fixture also checks at the very end)."""
from __future__ import annotations

import multiprocessing

import pytest

from conftest import child_pids
from exporters.nir_import import read_plan
from neurodeploy.bundle import read_bundle
from neurodeploy.lava_runner import LavaRunError, LavaRunner


def _lava_children(before: set[int]) -> list[int]:
    from multiprocessing import resource_tracker

    return sorted(set(child_pids()) - before - {getattr(resource_tracker._resource_tracker, "_pid", None)})


def test_error_in_the_caller_between_samples_stops_lava(demo_bundle):
    bundle = read_bundle(demo_bundle)
    x = bundle.reference_inputs()
    before = set(child_pids())
    with pytest.raises(KeyboardInterrupt):
        with LavaRunner(read_plan(bundle.spiking_path), x.shape[1]) as runner:
            runner.run_sample(x[0])
            assert len(_lava_children(before)) >= 2  # Lava's runtime and its workers are running
            raise KeyboardInterrupt  # what a user's Ctrl-C looks like
    assert _lava_children(before) == [] and multiprocessing.active_children() == []


def test_error_inside_a_step_stops_lava(demo_bundle, monkeypatch):
    bundle = read_bundle(demo_bundle)
    x = bundle.reference_inputs()
    before = set(child_pids())
    runner = LavaRunner(read_plan(bundle.spiking_path), x.shape[1])
    runner.run_sample(x[0])

    def broken_reset(net):
        raise OSError("shared memory went away")

    monkeypatch.setattr("exporters.lava_net.reset_state", broken_reset)
    with pytest.raises(LavaRunError, match="shared memory went away"):
        runner.run_sample(x[1])
    assert _lava_children(before) == []
    with pytest.raises(LavaRunError, match="closed"):
        runner.run_sample(x[1])
