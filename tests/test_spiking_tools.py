"""Quantizer, resource map, profiles, parity tool and the spiking-only CLI path."""
from __future__ import annotations

import json
import subprocess
import sys

import nir
import numpy as np
import pytest
from conftest import CASES

from neurodeploy.analysis.parity import compare_layers
from neurodeploy.profiles import load_profile
from neurodeploy.errors import ModelDoesNotFitError, ProfileError
from neurodeploy.exporters.nir_read import read_plan
from neurodeploy.spiking.nir_lowering import nir_to_plan
from neurodeploy.spiking.quantize import quantize, quantize_weights
from neurodeploy.spiking.float_simulation import simulate_float
from neurodeploy.spiking.resources import map_resources

LIF_CASE = CASES / "nir" / "01_lif" / "lif_norse.nir"
BRAILLE = CASES / "nir" / "03_rnn" / "braille_noDelay_bias_zero.nir"
CNN = CASES / "nir" / "02_cnn" / "cnn_sinabs.nir"


def test_quantized_weights_follow_lavas_mantissa_rules():
    w = np.array([[0.5, -0.25, 0.126], [1.0, 0.0, -1.0]])
    mant, clipped = quantize_weights(w * 254, 0)
    assert clipped == 0 and np.all(mant % 2 == 0)  # mixed sign: Lava drops the low bit
    assert mant.max() == 254 and mant.min() == -254
    mant, clipped = quantize_weights(np.array([300.0, 10.0]), 0)  # one sign: 255 is the limit
    assert clipped == 1 and mant.max() == 255


def test_quantization_report_states_scale_exponents_and_errors():
    q = quantize(read_plan(BRAILLE))
    first = q.report[0]
    assert first.name == "lif1.lif" and first.vth_mant <= (1 << 17) - 1
    assert {s.name for s in first.synapses} == {"fc1", "lif1.lif.bias", "lif1.w_rec"}
    assert len({s.weight_exp for s in first.synapses}) > 1  # per-synapse exponents differ
    assert all(0 < s.rel_rms_err < 0.05 and s.clipped == 0 for s in first.synapses)
    for s in first.synapses:
        fixed = q.plan.fixed[s.name]
        assert np.abs(fixed.weights).max() <= 256 and np.all(fixed.weights % 2 == 0)


def test_resource_map_counts_and_does_not_fit_error():
    plan = read_plan(CNN, dt=1.0)  # sinabs writes IF per step (dt = 1)
    loihi2, loihi1 = map_resources(plan, "loihi2"), map_resources(plan, "loihi1")
    pops = {p.name: p for p in loihi1.populations}
    assert pops["1"].neurons == 16 * 16 * 16 and pops["1"].cores == 4  # 1024 compartments per Loihi 1 core
    assert pops["10"].connections == 256 * 512 and pops["10"].fan_in == 512
    assert loihi2.cores < loihi1.cores and loihi2.chips == 1
    with pytest.raises(ModelDoesNotFitError) as err:
        map_resources(plan, "loihi1", max_chips=0)
    assert "cores" in str(err.value) and "chips" in str(err.value)
    wide = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([5000])}),
                               "fc": nir.Linear(weight=np.ones((2, 5000))),
                               "lif": nir.IF(r=np.ones(2), v_threshold=np.ones(2), v_reset=np.zeros(2)),
                               "output": nir.Output(output_type={"output": np.array([2])})},
                        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")], metadata={"dt": 1.0},
                        type_check=False)
    with pytest.raises(ModelDoesNotFitError, match="fan-in 5000 source neurons per core > 4096"):
        map_resources(nir_to_plan(wide), "loihi2")


def test_profile_errors_are_named(tmp_path):
    assert load_profile("loihi2").resources.neurons_per_core.label == "estimate"
    with pytest.raises(ProfileError, match="known profiles"):
        load_profile("loihi9")
    bad = json.loads((load_profile.__globals__["PROFILE_DIR"] / "loihi2.json").read_text())
    del bad["resources"]["neurons_per_core"]
    bad["resources"]["fan_in_per_core"]["label"] = "guess"
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(ProfileError) as err:
        load_profile(tmp_path / "bad.json")
    assert "neurons_per_core" in str(err.value) and "fan_in_per_core.label" in str(err.value)


def test_reference_simulator_matches_snntorch_on_braille():
    x = np.load(CASES / "nir" / "03_rnn" / "braille_test0_input_recovered.npy").astype(np.float64)
    want = np.load(CASES / "nir" / "03_rnn" / "snntorch_activity_noDelay_bias_zero.npy")
    assert np.array_equal(simulate_float(read_plan(BRAILLE), x)["lif1.lif"], want)


def test_parity_tool_names_the_first_divergent_layer():
    x = np.load(CASES / "nir" / "03_rnn" / "braille_test0_input_recovered.npy").astype(np.float64)[:64]
    result = compare_layers(BRAILLE, x)
    assert [layer.mismatches["lava_float"] for layer in result.layers] == [0, 0]
    assert result.first_divergent["lava_float"] is None
    assert result.first_divergent["lava_fixed_single"] == "lif1.lif"  # 8-bit weights: the hidden layer diverges
    assert result.layers[0].first_step["lava_fixed_single"] is not None and result.quantization
    after, before = (sum(layer.mismatches[k] for layer in result.layers) for k in ("lava_fixed", "lava_fixed_single"))
    assert after < before  # per layer before and after the automatic options (two synapses per weight)
    assert list(result.first_divergent) == ["lava_float", "lava_float_quantized_weights", "lava_fixed",
                                            "lava_fixed_single"]  # stage by stage


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "neurodeploy.cli", *args], capture_output=True, text=True, timeout=300)


def test_cli_compiles_nir_with_dt_and_writes_time_major_outputs(tmp_path):
    done = _cli("compile", str(LIF_CASE), "--out", str(tmp_path / "b"), "--dt", "1e-4")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["spiking"]["dt_s"] == 1e-4 and manifest["dense"] is None
    assert manifest["spiking"]["resources"]["chips"] == 1 and manifest["spiking"]["quantization"]
    exact = np.loadtxt(CASES / "nir" / "01_lif" / "lif_exact.csv", delimiter=",")
    np.save(tmp_path / "x.npy", exact[:, :1])
    done = _cli("cosim", str(tmp_path / "b"), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npz"),
                "--json")
    assert done.returncode == 0, done.stderr
    with np.load(tmp_path / "y.npz") as out:
        assert set(out.files) == {"output", "y"} and out["output"].shape == (1000, 1)
        assert np.array_equal(np.flatnonzero(out["output"]), np.flatnonzero(exact[:, 2]))
    data = json.loads(done.stdout)
    assert data["agreement"]["spike_mismatches"] is None and data["sops"]["effective"] == exact[:, 0].sum()  # one synapse, one AC per input spike
    bad = _cli("compile", str(tmp_path / "x.npy"), "--out", str(tmp_path / "c"))
    assert bad.returncode == 2 and "neither a bundled model" in bad.stderr
