"""Reliability: interrupted runs resume to the same results."""
from __future__ import annotations

import os

import numpy as np
import pytest

import neurodeploy.runtime.cosim as cosim
from neurodeploy.runtime.lava_runner import LavaRunner
from neurodeploy.bundle import read_bundle
from neurodeploy.models import zoo


def test_interrupted_100_sample_run_resumes_to_the_same_results(demo_bundle, tmp_path, monkeypatch):
    bundle = read_bundle(demo_bundle)
    x = zoo.get("tiny_hybrid").example_inputs(100, seed=7).numpy()
    full = cosim.run_cosim(bundle, x, progress=False)

    real_run, calls = LavaRunner.run_sample, {"n": 0}

    def interrupted(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 41:
            raise KeyboardInterrupt  # Ctrl-C in the middle of sample 41
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(LavaRunner, "run_sample", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cosim.run_cosim(bundle, x, progress=False, checkpoint=tmp_path / "ck")
    monkeypatch.setattr(LavaRunner, "run_sample", real_run)
    assert (tmp_path / "ck" / "progress.json").read_text().startswith('{"done": 40')

    resumed = cosim.run_cosim(bundle, x, progress=False, checkpoint=tmp_path / "ck")
    assert "resumed after 40 of 100 samples" in resumed.notes
    np.testing.assert_array_equal(resumed.y, full.y)
    for name, s in full.spikes.items():
        np.testing.assert_array_equal(resumed.spikes[name], s)
    other = zoo.get("tiny_hybrid").example_inputs(100, seed=8).numpy()[:3]  # other inputs: start over
    assert "resumed" not in " ".join(cosim.run_cosim(bundle, other, progress=False, checkpoint=tmp_path / "ck").notes)


def test_a_killed_lava_worker_ends_the_run_within_the_time_limit(demo_bundle):
    import os
    import signal
    import threading
    import time

    from conftest import child_pids, new_child_pids

    from neurodeploy.errors import LavaRunError
    from neurodeploy.exporters import load_spiking
    from neurodeploy.runtime.lava_runner import LavaRunner

    bundle = read_bundle(demo_bundle)
    plan = load_spiking(bundle.spiking_path, bundle.manifest.spiking.dt_s)
    steps = 30000  # about 30 s of Lava: long enough to be killed in the middle
    x = (np.random.default_rng(0).random((steps, plan.n_in)) < 0.2).astype(np.float64)
    before = set(child_pids())
    killed = []

    def kill_a_worker() -> None:
        time.sleep(3.0)  # compiled and running by now
        workers = new_child_pids(before)
        if workers:
            os.kill(workers[-1], signal.SIGKILL)
            killed.append(workers[-1])

    threading.Thread(target=kill_a_worker, daemon=True).start()
    t0 = time.perf_counter()
    with LavaRunner(plan, steps, time_limit_s=8.0) as runner, pytest.raises(LavaRunError, match="time limit of 8 s"):
        runner.run_sample(x)
    assert killed and time.perf_counter() - t0 < 8.0 + 15.0  # the limit plus the bounded stop and terminate
    assert new_child_pids(before) == []


_stalls = {"left": 0}


def _stall_in_child() -> None:
    if _stalls["left"] > 0:  # this fork's child hangs before it starts: Lava waits for it forever
        import time

        while True:
            time.sleep(1.0)


def _count_in_parent() -> None:
    if _stalls["left"] > 0:
        _stalls["left"] -= 1


os.register_at_fork(after_in_child=_stall_in_child, after_in_parent=_count_in_parent)


@pytest.fixture()
def tiny_plan(demo_bundle, monkeypatch):
    import neurodeploy.runtime.lava_runner as lava_runner
    from neurodeploy.exporters import load_spiking
    from neurodeploy.spiking.quantize import quantize

    monkeypatch.setattr(lava_runner, "START_LIMIT_S", 6.0)
    bundle = read_bundle(demo_bundle)
    plan = quantize(load_spiking(bundle.spiking_path, bundle.manifest.spiking.dt_s)).plan
    x = (np.random.default_rng(3).random((3, 12, plan.n_in)) < 0.3).astype(np.float64)
    yield plan, x
    _stalls["left"] = 0


def test_a_lava_worker_that_never_starts_is_replaced_by_a_fresh_network(tiny_plan):
    """The suite once hung in Lava's Runtime.initialize (a forked worker never reported): the first fork of
    the start now hangs for real, the start is given up within its limit and a fresh network runs the
    stream to the same spikes, leaving no process behind."""
    from conftest import child_pids, new_child_pids

    from neurodeploy.runtime.lava_stream import stream_batch

    plan, x = tiny_plan
    expected, _ = stream_batch(plan, x, "fixed")
    before = set(child_pids())
    _stalls["left"] = 1
    with pytest.warns(RuntimeWarning, match="did not start its workers within the time limit of 6 s.*try 2 of 2"):
        again, _ = stream_batch(plan, x, "fixed")
    assert _stalls["left"] == 0
    for name, spikes in expected.items():
        np.testing.assert_array_equal(again[name], spikes)
    assert new_child_pids(before) == []


def test_lava_workers_that_never_start_end_in_a_named_error(tiny_plan):
    from conftest import child_pids, new_child_pids

    from neurodeploy.errors import LavaRunError, LavaStartError

    plan, x = tiny_plan
    before = set(child_pids())
    _stalls["left"] = 1000  # every fork of both tries hangs
    with LavaRunner(plan, x.shape[1], mode="fixed") as runner, pytest.warns(RuntimeWarning), \
            pytest.raises(LavaStartError, match="2 fresh networks tried") as raised:
        runner.run_sample(x[0])
    assert isinstance(raised.value, LavaRunError)
    _stalls["left"] = 0
    assert new_child_pids(before) == []


def _damaged(original: bytes, data) -> bytes:
    """Random bytes, a truncation, or the file with bytes overwritten."""
    from hypothesis import strategies as st

    kind = data.draw(st.sampled_from(["random", "truncated", "flipped"]))
    if kind == "random":
        return data.draw(st.binary(max_size=4096))
    if kind == "truncated":
        return original[: data.draw(st.integers(0, max(0, len(original) - 1)))]
    blob = bytearray(original)
    for _ in range(data.draw(st.integers(1, 16))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    return bytes(blob)


LOADERS = {
    "nir": ("../shared/cases/nir/03_rnn/braille_noDelay_bias_zero.nir", ".nir"),
    "netx": ("../shared/cases/netx/tinynet/tiny.net", ".net"),
    "profile": ("hw_profiles/loihi2.json", ".json"),
}


@pytest.mark.parametrize("loader", sorted(LOADERS) + ["onnx", "manifest"])
def test_fuzzed_files_give_only_named_errors(loader, demo_bundle, tmp_path_factory):
    from pathlib import Path

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from neurodeploy.profiles import load_profile
    from neurodeploy.errors import BundleError, OnnxLoadError, ProfileError, SpikingPlanError
    from neurodeploy.exporters import load_spiking
    from neurodeploy.exporters.onnx_session import make_session

    root = Path(__file__).resolve().parent.parent
    if loader in LOADERS:
        source, suffix = root / LOADERS[loader][0], LOADERS[loader][1]
    elif loader == "onnx":
        source, suffix = demo_bundle / "dense.onnx", ".onnx"
    else:
        source, suffix = demo_bundle / "manifest.json", ".json"
    original = source.read_bytes()
    folder = tmp_path_factory.mktemp(loader)

    def load(path: Path) -> None:
        if loader in ("nir", "netx"):
            load_spiking(path)
        elif loader == "profile":
            load_profile(path)
        elif loader == "onnx":
            make_session(path)
        else:
            import shutil

            bundle = folder / "bundle"
            if not bundle.exists():
                shutil.copytree(demo_bundle, bundle)
            (bundle / "manifest.json").write_bytes(path.read_bytes())
            read_bundle(bundle)

    named = (SpikingPlanError, ProfileError, OnnxLoadError, BundleError)

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def check(data) -> None:
        path = folder / f"case{suffix}"
        path.write_bytes(_damaged(original, data))
        try:
            load(path)
        except named:
            pass  # a named error listing what is wrong: the contract

    check()
