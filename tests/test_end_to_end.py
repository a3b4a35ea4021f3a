"""The whole path on the demo hybrid: Lava (floating_pt) + ONNX Runtime vs the PyTorch model."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from neurodeploy.bundle import read_bundle, sha256
from neurodeploy.errors import BundleError, InputShapeError
from neurodeploy import cosimulate
from neurodeploy.runtime.cosim import run_cosim


def test_cosim_matches_pytorch(demo_bundle):
    result = cosimulate(read_bundle(demo_bundle), schedule="end")
    assert result.y.shape == (8, 4)
    assert all(s.sum() > 50 for s in result.spikes.values())  # every population is active
    assert result.agreement.spike_mismatches == 0
    assert result.agreement.max_abs_err < 1e-4
    assert result.agreement.top1_match == 1.0
    assert result.providers == ["CPUExecutionProvider"]


def test_cli_cosim_json(demo_bundle):
    out = subprocess.run([sys.executable, "-m", "neurodeploy.cli", "cosim", str(demo_bundle), "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["agreement"]["spike_mismatches"] == 0
    assert data["agreement"]["max_abs_err"] < 1e-4
    sops = data["sops"]
    assert sops["dense"] == 32 * (16 * 32 + 32 * 24)  # T * sum(n_in * n_out): fixed by the topology
    assert 0 < sops["effective"] < sops["dense"]
    parts = sum(data["energy_j"][k] for k in ("neuromorphic", "transfer", "gpu"))
    assert data["energy_j"]["total"] == pytest.approx(parts, rel=1e-12) and data["profiles"]["loihi"] == "loihi2"
    assert all({"value", "label", "source"} <= set(a) for a in data["assumptions"])
    assert set(data["wall_s"]) >= {"lava", "dense", "total"}


def test_cli_input_output_contract(demo_bundle, tmp_path):
    """--input (T, N) time-major -> --output with the Output node's spikes (T, n) and y, aligned."""
    bundle = read_bundle(demo_bundle)
    x = bundle.reference_inputs()[3]
    np.save(tmp_path / "x.npy", x)
    out = subprocess.run([sys.executable, "-m", "neurodeploy.cli", "cosim", str(demo_bundle), "--input",
                          str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npz"), "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    saved = np.load(tmp_path / "y.npz")
    ref = bundle.reference_outputs()
    np.testing.assert_array_equal(saved["output"], ref["spikes/layers.3"][3])  # aligned: delay compensated
    assert np.max(np.abs(saved["y"] - ref["y"][3])) < 1e-4


def test_a_wrong_weight_is_detected(demo_bundle, tmp_path):
    """The agreement check can fail: one changed synaptic weight in spiking.nir shows up as mismatches."""
    broken = shutil.copytree(demo_bundle, tmp_path / "broken")
    with h5py.File(broken / "spiking.nir", "r+") as f:
        f["node/nodes/layers.0/weight"][0, :] += 2.0
    with pytest.raises(BundleError, match="checksum mismatch"):  # an edited file is caught on load ...
        read_bundle(broken)
    manifest = json.loads((broken / "manifest.json").read_text())  # ... unless the manifest is re-signed
    manifest["checksums"]["spiking.nir"] = sha256(broken / "spiking.nir")
    (broken / "manifest.json").write_text(json.dumps(manifest))
    result = cosimulate(read_bundle(broken), schedule="end")
    assert result.agreement.spike_mismatches > 0  # then the agreement check still catches the wrong weight


def test_wrong_input_shape_is_a_named_error(demo_bundle):
    with pytest.raises(InputShapeError, match="multiple of the adapter window 4"):
        run_cosim(read_bundle(demo_bundle), np.zeros((30, 16)), progress=False)
    with pytest.raises(InputShapeError, match=r"\(T, 16\)"):
        run_cosim(read_bundle(demo_bundle), np.zeros((32, 15)), progress=False)
