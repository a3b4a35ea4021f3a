"""Any trained hybrid deploys as written: graph capture of ordinary models (tests/ordinary_models.py).

Each model is compiled with no change to its code, then co-simulated on inputs that were not used to
compile it and compared with the unmodified model: 0 spike mismatches, output error < 1e-5. Fixed
point runs on Lava and on the emulator with identical spikes.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import ordinary_models as om
import pytest

import neurodeploy as nd

pytest.importorskip("snntorch")
CASES = {"loop_transformer": (om.make_loop_transformer, "BT", {"fc1", "lif1", "fc2", "lif2"}),
         "conv_gru": (om.make_conv_gru, "TB", {"conv", "pool", "lif1", "flat", "fc", "lif2"}),
         "synaptic_scan": (om.make_synaptic_scan, "BT", {"fc1", "syn1"}),
         "multistep_jelly": (om.make_multistep_jelly, "TB", {"fc1", "lif1", "fc2", "if2"}),
         "lstm_attention": (om.make_lstm_attention, "BT", {"fc", "lif"})}


@pytest.mark.parametrize("case", list(CASES))
def test_an_ordinary_model_compiles_and_agrees_on_new_inputs(case, tmp_path):
    pytest.importorskip({"conv_gru": "norse.torch", "multistep_jelly": "spikingjelly"}.get(case, "snntorch"))
    make, layout, on_loihi = CASES[case]
    model, x, dt_s = make()
    bundle = nd.compile(model, tmp_path / case, inputs=x, dt_s=dt_s)
    m = bundle.manifest
    assert m.input_layout == layout and m.default_schedule == "end"
    placed = {p.module: p.device for p in m.placement}
    assert {k for k, v in placed.items() if v == "loihi"} == on_loihi  # the user's own module paths
    assert all(v == "gpu" for k, v in placed.items() if k not in on_loihi) and len(placed) > len(on_loihi)
    batch_first = (np.random.default_rng(11).random((3, x.shape[1 if layout == "BT" else 0], *x.shape[2:])) < 0.4)
    x_new = batch_first.astype(np.float64) if layout == "BT" else batch_first.swapaxes(0, 1).astype(np.float64)
    result = nd.cosimulate(bundle, x_new, model=model)  # in the model's own layout; the model's own run beside
    assert result.agreement.spike_mismatches == 0 and result.agreement.max_abs_err < 1e-5
    assert all(s.sum() > 0 for s in result.spikes.values())
    lava, emulator = (nd.cosimulate(bundle, x_new, mode="fixed", backend=b) for b in ("lava", "emulator"))
    assert all(np.array_equal(lava.spikes[k], emulator.spikes[k]) for k in lava.spikes)


def test_the_partition_report_names_every_module_with_a_reason(tmp_path):
    model, x, dt_s = om.make_loop_transformer()
    bundle = nd.compile(model, tmp_path / "b", inputs=x, dt_s=dt_s)
    reasons = {p.module: (p.device, p.reason) for p in bundle.manifest.placement}
    assert reasons["lif1"] == ("loihi", "Leaky population: Loihi neuron cores")
    assert reasons["encoder.layers.0.self_attn"][1].startswith("Q·K^T")
    assert reasons["head"][1] == "after the cut at lif2: continuous values -> GPU"
    assert {name for name, _ in model.named_modules() if name} == set(reasons)


def test_max_pooling_between_populations_moves_the_later_ones_to_the_gpu(tmp_path):
    """Loihi runs the longest prefix it can (conv, lif1); the max pool starts the GPU part, and lif2 runs there,
    stepped by snnTorch, with the blocker named by its path and the line of the user's forward."""
    model, x, dt_s = om.make_maxpool()
    bundle = nd.compile(model, tmp_path / "m", inputs=x, dt_s=dt_s)
    placed = {p.module: (p.device, p.reason) for p in bundle.manifest.placement}
    assert {k for k, (d, _) in placed.items() if d == "loihi"} == {"conv", "lif1"}
    device, reason = placed["lif2"]
    assert device == "gpu" and "stops at pool (MaxPool2d) (ordinary_models.py:" in reason
    device, reason = placed["pool"]  # the whole reason once, on the module in the way, with the user's line
    assert device == "gpu" and "pool: MaxPool has no Loihi or NIR equivalent" in reason and "self.pool(s1)" in reason
    x_new = (np.random.default_rng(2).random((3, *x.shape[1:])) < 0.4).astype(np.float64)
    result = nd.cosimulate(bundle, x_new, model=model)
    assert result.agreement.spike_mismatches == 0 and result.agreement.max_abs_err < 1e-5


def test_a_captured_model_through_the_cli_factory(tmp_path, capsys):
    import json

    from neurodeploy.cli import main

    env_path = str(Path(__file__).parent)
    sys.path.insert(0, env_path)
    try:
        assert main(["compile", "ordinary_models:make_synaptic_scan", "--out", str(tmp_path / "f")]) == 0
        x = (np.random.default_rng(3).random((2, 16, 8)) < 0.4).astype(np.float64)
        np.save(tmp_path / "x.npy", x)
        capsys.readouterr()
        assert main(["cosim", str(tmp_path / "f"), "--input", str(tmp_path / "x.npy"), "--json"]) == 0
        unnamed = json.loads(capsys.readouterr().out)  # a factory named in a bundle is never imported by it
        assert main(["cosim", str(tmp_path / "f"), "--input", str(tmp_path / "x.npy"), "--json",
                     "--model", "ordinary_models:make_synaptic_scan"]) == 0
    finally:
        sys.path.remove(env_path)
    assert unnamed["agreement"]["spike_mismatches"] is None
    assert any("--model ordinary_models:make_synaptic_scan" in note for note in unnamed["notes"])
    data = json.loads(capsys.readouterr().out)  # the factory the user names is the model compared with
    assert data["agreement"]["spike_mismatches"] == 0 and data["agreement"]["max_abs_err"] < 1e-5
