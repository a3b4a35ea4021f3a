"""Lava processes are stopped however a run ends (the session fixture also checks at the very end)."""
from __future__ import annotations

import multiprocessing

import numpy as np
import pytest
from conftest import child_pids, new_child_pids

from neurodeploy.bundle import read_bundle
from neurodeploy.errors import LavaRunError
from neurodeploy.exporters.nir_read import read_plan
from neurodeploy.runtime.lava_runner import LavaRunner, stopped_on_exit


def test_error_in_the_caller_between_samples_stops_lava(demo_bundle):
    bundle = read_bundle(demo_bundle)
    x = bundle.reference_inputs()
    before = set(child_pids())
    with pytest.raises(KeyboardInterrupt):
        with LavaRunner(read_plan(bundle.spiking_path), x.shape[1]) as runner:
            runner.run_sample(x[0])
            assert len(new_child_pids(before)) >= 2  # Lava's runtime and its workers are running
            raise KeyboardInterrupt  # what a user's Ctrl-C looks like
    assert new_child_pids(before) == [] and multiprocessing.active_children() == []


def test_error_inside_a_step_stops_lava(demo_bundle, monkeypatch):
    bundle = read_bundle(demo_bundle)
    x = bundle.reference_inputs()
    before = set(child_pids())
    runner = LavaRunner(read_plan(bundle.spiking_path), x.shape[1])
    runner.run_sample(x[0])

    def broken_reset(net):
        raise OSError("shared memory went away")

    monkeypatch.setattr("neurodeploy.runtime.lava_net.reset_state", broken_reset)
    with pytest.raises(LavaRunError, match="shared memory went away"):
        runner.run_sample(x[1])
    assert new_child_pids(before) == []
    with pytest.raises(LavaRunError, match="closed"):
        runner.run_sample(x[1])


def test_a_lava_process_model_that_raises_is_stopped():
    """A worker raising inside Lava: the run ends with Lava's error and no process is left behind."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.source import RingBuffer
    from lava_procs.fail_at import FailAt

    before = set(child_pids())
    source, fail = RingBuffer(data=np.zeros((2, 20))), FailAt((2,), step=5)
    source.s_out.connect(fail.a_in)
    with pytest.raises(RuntimeError, match="Exception"):
        with stopped_on_exit(source, stop_timeout_s=3.0):
            source.run(condition=RunSteps(num_steps=20), run_cfg=Loihi2SimCfg(select_tag="floating_pt"))
    assert new_child_pids(before) == [] and multiprocessing.active_children() == []
