"""Reliability: interrupted runs resume to the same results."""
from __future__ import annotations

import numpy as np
import pytest

import neurodeploy.cosim as cosim
from neurodeploy import zoo
from neurodeploy.bundle import read_bundle


def test_interrupted_100_sample_run_resumes_to_the_same_results(demo_bundle, tmp_path, monkeypatch):
    bundle = read_bundle(demo_bundle)
    x = zoo.get("tiny_hybrid").example_inputs(100, seed=7).numpy()
    full = cosim.run_cosim(bundle, x, progress=False)

    real_run, calls = cosim.LavaRunner.run_sample, {"n": 0}

    def interrupted(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 41:
            raise KeyboardInterrupt  # Ctrl-C in the middle of sample 41
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(cosim.LavaRunner, "run_sample", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cosim.run_cosim(bundle, x, progress=False, checkpoint=tmp_path / "ck")
    monkeypatch.setattr(cosim.LavaRunner, "run_sample", real_run)
    assert (tmp_path / "ck" / "progress.json").read_text().startswith('{"done": 40')

    resumed = cosim.run_cosim(bundle, x, progress=False, checkpoint=tmp_path / "ck")
    assert "resumed after 40 of 100 samples" in resumed.notes
    np.testing.assert_array_equal(resumed.y, full.y)
    for name, s in full.spikes.items():
        np.testing.assert_array_equal(resumed.spikes[name], s)
    other = zoo.get("tiny_hybrid").example_inputs(100, seed=8).numpy()[:3]  # other inputs: start over
    assert "resumed" not in " ".join(cosim.run_cosim(bundle, other, progress=False, checkpoint=tmp_path / "ck").notes)
