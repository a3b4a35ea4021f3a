"""Lava streams a batch in one run (no Var.get/set between samples) and the dense part runs behind it,
window by window: the same spikes and outputs as sample by sample and as the emulator, with timestamps."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from conftest import CASES, check_in_chromium

import neurodeploy as nd
from neurodeploy.runtime.lava_stream import stream_batch, why_not_streamable


def test_stream_equals_sample_by_sample_on_the_nir_paper_cnn():
    from neurodeploy.exporters import load_spiking
    from neurodeploy.runtime.lava_runner import LavaRunner
    from neurodeploy.spiking.quantize import quantize_for

    plan = quantize_for(load_spiking(CASES / "nir" / "02_cnn" / "cnn_sinabs.nir", 1.0, "euler", ())).plan
    x = (np.random.default_rng(3).random((2, 8, *plan.input_shape)) < 0.3).astype(float)
    assert why_not_streamable(plan, "fixed") is None
    streamed, times = stream_batch(plan, x, "fixed")
    with LavaRunner(plan, 8, "fixed") as runner:
        one_by_one = [runner.run_sample(sample).spikes for sample in x]
    assert len(streamed) == 5
    for name, s in streamed.items():
        assert s.shape == (2, 8, *plan.layer(name).shape)
        assert all(np.array_equal(s[b], one_by_one[b][name]) for b in range(2)), name
    assert sum(int(s.astype(bool).sum()) for s in streamed.values()) > 1000  # a network that fires


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_window_schedule_streams_and_gives_todays_outputs(mamba_bundle, tmp_path, mode):
    bundle = nd.load(mamba_bundle)
    assert bundle.manifest.default_schedule == "window"
    streamed = nd.cosimulate(bundle, mode=mode, backend="lava")
    replayed = nd.cosimulate(bundle, mode=mode, backend="lava", checkpoint=tmp_path / mode)  # sample by sample
    emulated = nd.cosimulate(bundle, mode=mode, backend="emulator")
    assert streamed.timeline is not None and replayed.timeline is None
    for name, s in streamed.spikes.items():
        assert np.array_equal(s, replayed.spikes[name]) and np.array_equal(s, emulated.spikes[name]), name
    assert np.array_equal(streamed.y, replayed.y) and np.array_equal(streamed.y, emulated.y)
    if mode == "float":
        assert streamed.agreement.spike_mismatches == 0 and streamed.agreement.max_abs_err < 1e-4
    marks = {(w["sample"], w["window"]): w for w in streamed.timeline["windows"]}
    windows, k = bundle.manifest.num_tokens, bundle.manifest.adapter.window
    assert len(marks) == len(streamed.y) * windows
    # the dense step of window l starts before Lava has finished window l + 1 (fewer than K steps beyond l
    # computed), and a sample's first dense step before its last window has left Lava (no replay)
    behind = [m["spiking_ahead_at_start"] < k for m in marks.values()]  # on a loaded machine a few lag
    assert np.mean(behind) >= 0.9, f"{sum(behind)} of {len(behind)} windows started before Lava finished the next"
    assert all(marks[b, 0]["dense_end_s"] < marks[b, windows - 1]["ready_s"] for b in range(len(streamed.y)))
    assert all(m["ready_s"] <= m["dense_start_s"] <= m["dense_end_s"] for m in marks.values())
    assert all(marks[b, w]["dense_start_s"] < marks[b, w + 1]["ready_s"] for b, w in marks if w + 1 < windows)
    assert len(streamed.timeline["sample_latency_s"]) == len(streamed.y)


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_the_emulator_streams_on_the_same_runtime(mamba_bundle, tmp_path, mode, monkeypatch):
    """The emulator hands each window of every sample to the dense thread as it computes it (here in chunks of
    3 samples, so samples of two chunks interleave in the dense part): the batch-then-replay outputs."""
    bundle = nd.load(mamba_bundle)
    replayed = nd.cosimulate(bundle, mode=mode, backend="emulator", checkpoint=tmp_path / mode)  # batch, then replay
    monkeypatch.setattr("neurodeploy.runtime.emulator.DEFAULT_BATCH_SIZE", 3)
    streamed = nd.cosimulate(bundle, mode=mode, backend="emulator")
    assert replayed.timeline is None and streamed.timeline["backend"] == "emulator"
    assert streamed.timeline["measured_on"].startswith("this machine (neurodeploy's emulator")
    for name, s in streamed.spikes.items():
        assert np.array_equal(s, replayed.spikes[name]), name
    assert np.array_equal(streamed.y, replayed.y) and streamed.dense_invocations == replayed.dense_invocations
    marks = {(w["sample"], w["window"]): w for w in streamed.timeline["windows"]}
    windows, batch = bundle.manifest.num_tokens, len(streamed.y)
    assert len(marks) == batch * windows and len(streamed.timeline["sample_latency_s"]) == batch
    assert all(m["ready_s"] <= m["dense_start_s"] <= m["dense_end_s"] for m in marks.values())
    assert max(m["queue_depth"] for m in marks.values()) < 3 * 3  # bounded: two windows of a chunk queued, one in work
    assert streamed.timeline["dense_calls"] == windows * 3  # one step call per window of a chunk (3, 3, 2 samples)


def test_batched_event_schedule_equals_one_sample_at_a_time(mamba_bundle, tmp_path, monkeypatch):
    """The event schedule batched over a chunk (only the salient samples' rows step; the others hold their
    last output and state) gives the outputs and invocations of one sample at a time."""
    bundle = nd.load(mamba_bundle)
    replayed = nd.cosimulate(bundle, mode="fixed", backend="emulator", schedule="event", checkpoint=tmp_path)
    monkeypatch.setattr("neurodeploy.runtime.emulator.DEFAULT_BATCH_SIZE", 4)
    streamed = nd.cosimulate(bundle, mode="fixed", backend="emulator", schedule="event")
    assert np.array_equal(streamed.y, replayed.y) and streamed.dense_invocations == replayed.dense_invocations
    assert 0 < streamed.dense_invocations < len(streamed.y) * bundle.manifest.num_tokens  # some windows held
    assert streamed.timeline["dense_calls"] < streamed.dense_invocations  # salient rows of a chunk in one call


def test_the_dense_step_runs_while_the_emulator_computes_the_next_window(mamba_bundle, monkeypatch):
    """With a spiking part slower than the dense part (each emulator step made 3 ms longer, as a large network
    would be), every window's dense step starts before the emulator has finished the next window, and ends
    before the spiking part has finished the sample: a pipeline, not a replay."""
    from neurodeploy.runtime.emulator import EmulatorRunner

    step, block = EmulatorRunner._step, EmulatorRunner._block

    def slow_step(self, *args):
        step(self, *args)
        time.sleep(0.003)

    def slow_block(self, start, end, *args):  # a block of steps, each 3 ms longer
        block(self, start, end, *args)
        time.sleep(0.003 * (end - start))

    monkeypatch.setattr(EmulatorRunner, "_step", slow_step)
    monkeypatch.setattr(EmulatorRunner, "_block", slow_block)
    monkeypatch.setattr("neurodeploy.runtime.emulator.DEFAULT_BATCH_SIZE", 4)
    bundle = nd.load(mamba_bundle)
    streamed = nd.cosimulate(bundle, mode="fixed", backend="emulator")
    marks = {(w["sample"], w["window"]): w for w in streamed.timeline["windows"]}
    windows, k = bundle.manifest.num_tokens, bundle.manifest.adapter.window
    assert all(marks[b, w]["dense_start_s"] < marks[b, w + 1]["ready_s"] for b, w in marks if w + 1 < windows)
    behind = [m["spiking_ahead_at_start"] < k for m in marks.values()]  # on a loaded machine a few lag
    assert np.mean(behind) >= 0.9, f"{sum(behind)} of {len(behind)} windows started before Lava finished the next"
    assert all(marks[b, w]["dense_end_s"] < marks[b, windows - 1]["ready_s"] for b, w in marks if w + 1 < windows)


def test_a_failing_dense_step_stops_the_emulator_stream():
    from neurodeploy.runtime.streaming import DenseThread

    class Broken:
        def submit(self, b, w, window, ready_s, waiting=0):
            raise ValueError(f"dense step failed on sample {b}")

    dense = DenseThread(Broken(), 1)
    dense.submit([(0, 0, np.zeros(3), 0.0), (1, 0, np.zeros(3), 0.0)])
    with pytest.raises(ValueError, match="sample 0"):
        for b in range(2, 100):  # the error reaches the caller's next submit (or close), never a hang
            dense.submit([(b, 0, np.zeros(3), 0.0)])
        dense.close()


def test_plans_that_cannot_stream_say_why():
    from neurodeploy.exporters import load_spiking

    braille = load_spiking(CASES / "nir" / "03_rnn" / "braille_noDelay_bias_zero.nir", None, "euler", ())
    assert why_not_streamable(braille, "float") == "recurrent synapses"


def test_the_report_shows_the_measured_beside_the_modelled_timeline(mamba_bundle, tmp_path):
    result = nd.cosimulate(mamba_bundle, mode="fixed", backend="lava")
    cost = nd.estimate(mamba_bundle, result)
    assert cost.figures["timeline"]["measured_on"].startswith("this machine")
    page = Path(nd.write_report(mamba_bundle, result, cost, tmp_path / "r.html")).read_text()
    assert "measured on this machine" in page and "modelled" in page
    assert page.count("data:image/png") == 7
    shown = check_in_chromium(tmp_path / "r.html", tmp_path / "r.png")  # where a browser is installed
    assert shown is None or "decoded by Chromium: 5" in shown
