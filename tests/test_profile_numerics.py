"""The neuromorphic profile drives quantization: Loihi 1 quantizes for Loihi 1, a user's chip for its own widths.

The integers are checked directly against the profile's bit widths, and a coarser weight grid (a user
profile with 4-bit weights, found through $NEURODEPLOY_PROFILE_PATH) runs bit-exactly on Lava fixed_pt
and on the emulator (Lava's own ``num_weight_bits`` truncation applied to the same integers).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import CASES

import neurodeploy as nd
from neurodeploy.profiles import PROFILE_DIR, load_profile
from neurodeploy.errors import ProfileError, QuantizationError
from neurodeploy.exporters import load_spiking, read_plan
from neurodeploy.runtime.emulator import EmulatorRunner, lava_dense_weights
from neurodeploy.runtime.lava_runner import LavaRunner
from neurodeploy.spiking.loihi import LAVA, numerics_of
from neurodeploy.spiking.quantize import quantize_for

BRAILLE = CASES / "nir" / "03_rnn" / "braille_noDelay_bias_zero.nir"


def _within(plan, numerics) -> None:
    """Every integer of ``plan`` fits ``numerics``; the weights lie on its grid."""
    for name, fixed in plan.fixed.items():
        if hasattr(fixed, "weight_exp"):
            w = np.asarray(fixed.weights)
            mixed = bool(w.min() < 0 < w.max())
            lo, hi = numerics.weight_range(mixed)
            assert lo <= w.min() and w.max() <= hi, name
            assert np.all(w % numerics.weight_step(mixed) == 0), name
            assert numerics.weight_exp_min <= fixed.weight_exp <= numerics.weight_exp_max
            assert fixed.num_weight_bits == numerics.weight_bits
        else:
            assert 0 <= fixed.vth <= numerics.vth_max and 0 <= fixed.du < numerics.decay_one
            assert np.abs(fixed.bias_mant).max() <= numerics.bias_mant_max and fixed.bias_exp <= numerics.bias_exp_max


def test_loihi1_bundle_is_quantized_in_loihi1_widths(tmp_path):
    loihi1 = numerics_of(load_profile("loihi1"))
    assert loihi1.graded_spike_bits == 0 and LAVA.graded_spike_bits > 0  # Loihi 1 has binary spikes only
    bundle = nd.compile(BRAILLE, tmp_path / "b", profile="loihi1")
    assert bundle.manifest.spiking.profile == "loihi1" and bundle.manifest.spiking.resources["profile"] == "loihi1"
    plan = quantize_for(load_spiking(bundle.spiking_path), "loihi1").plan
    _within(plan, loihi1)
    report = {q["name"]: q for q in bundle.manifest.spiking.quantization}
    assert all(abs(s["mantissa_max"]) <= loihi1.weight_range(True)[1] + 1 for q in report.values()
               for s in q["synapses"])
    graded = load_spiking(BRAILLE)
    graded.graded_input = True
    with pytest.raises(QuantizationError, match="binary spikes only"):
        quantize_for(graded, "loihi1")
    assert quantize_for(graded, "loihi2").plan.fixed["fc1"].num_message_bits > 0


@pytest.fixture
def coarse_profile(tmp_path, monkeypatch):
    """A user's chip with 4-bit weight mantissas, found by name through $NEURODEPLOY_PROFILE_PATH."""
    data = json.loads((PROFILE_DIR / "loihi2.json").read_text())
    data["name"] = "coarse4"
    data["numerics"]["weight_bits"]["value"] = 4
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "coarse4.json").write_text(json.dumps(data))
    monkeypatch.setenv("NEURODEPLOY_PROFILE_PATH", str(tmp_path / "profiles"))
    return "coarse4"


def test_a_user_profile_sets_the_weight_grid_and_runs_bit_exact(coarse_profile):
    numerics = numerics_of(load_profile(coarse_profile))
    assert numerics.weight_bits == 4 and numerics.weight_step(True) == 32 and numerics.weight_step(False) == 16
    plan = read_plan(BRAILLE)
    coarse, fine = quantize_for(plan, coarse_profile).plan, quantize_for(plan, "loihi2").plan
    _within(coarse, numerics)
    w = np.asarray(coarse.fixed["fc1"].weights)
    assert len(np.unique(w)) <= 2 ** 4 + 1 < len(np.unique(fine.fixed["fc1"].weights))
    assert np.array_equal(lava_dense_weights(w, 4), w)  # Lava's truncation leaves the grid's integers alone
    x = np.load(CASES / "nir" / "03_rnn" / "braille_test0_input_recovered.npy").astype(np.float64)[:60]
    with LavaRunner(coarse, len(x), "fixed") as lava:
        want = lava.run_sample(x).spikes
    with EmulatorRunner(coarse, len(x), "fixed") as emulator:
        got = emulator.run_batch(x[None]).spikes
    assert all(np.array_equal(got[k][0], want[k]) for k in want) and sum(v.sum() for v in want.values()) > 0


def test_a_profile_lava_cannot_run_is_refused(tmp_path):
    data = json.loads((PROFILE_DIR / "loihi2.json").read_text())
    data["numerics"]["act_shift"]["value"] = 5
    data["numerics"]["weight_bits"]["value"] = 9
    (tmp_path / "odd.json").write_text(json.dumps(data))
    with pytest.raises(ProfileError) as err:
        numerics_of(load_profile(tmp_path / "odd.json"))
    assert "act_shift" in str(err.value) and "weight_bits" in str(err.value)
