"""Bundle write/read round trip and named errors on bad bundles."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from neurodeploy.bundle import read_bundle, write_bundle
from neurodeploy.errors import BundleError


def test_round_trip(demo_bundle, tmp_path):
    bundle = read_bundle(demo_bundle)
    m = bundle.manifest
    assert m.schema_version == 1 and m.name == "tiny_hybrid"
    assert (m.num_steps, m.num_tokens, m.adapter.window) == (32, 8, 4)
    assert m.spiking.total_delay_steps == 2 and m.spiking.cut_output == "output"
    assert {p.device for p in m.placement} == {"loihi", "gpu"}
    assert max(p.max_abs_err for p in m.dense.parity) < 1e-4
    ref = bundle.reference_outputs()
    assert ref["y"].shape == (8, 4) and bundle.reference_inputs().shape == (8, 32, 16)
    copy = write_bundle(tmp_path / "copy", m, {"spiking.nir": bundle.spiking_path, "dense.onnx": bundle.dense_path},
                        bundle.reference_inputs(), ref)
    again = read_bundle(copy)
    assert again.manifest == m
    for key, value in again.reference_outputs().items():
        np.testing.assert_array_equal(value, ref[key])
    assert not list(tmp_path.glob(".copy.*"))  # the temporary folder is gone


@pytest.mark.parametrize("breakage, message", [
    (lambda p: (p / "manifest.json").unlink(), "not a neurodeploy bundle"),
    (lambda p: (p / "manifest.json").write_text("{not json"), "not valid JSON"),
    (lambda p: (p / "dense.onnx").unlink(), "missing files"),
    (lambda p: _edit(p, lambda m: m.update(schema_version=99)), "schema_version 99"),
    (lambda p: _edit(p, lambda m: m["spiking"].pop("dt_s")), "spiking.dt_s"),
])
def test_bad_bundles_raise_named_errors(demo_bundle, tmp_path, breakage, message):
    broken = shutil.copytree(demo_bundle, tmp_path / "broken")
    breakage(broken)
    with pytest.raises(BundleError, match=message):
        read_bundle(broken)


def _edit(path, change):
    manifest = json.loads((path / "manifest.json").read_text())
    change(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_damaged_bundle_file_is_caught_by_its_checksum(demo_bundle, tmp_path):
    copy = tmp_path / "b"
    shutil.copytree(demo_bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    assert set(manifest["checksums"]) >= {"spiking.nir", "dense.onnx", "reference/inputs.npy"}
    data = bytearray((copy / "dense.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    (copy / "dense.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"checksum mismatch\): \['dense.onnx'\]"):
        read_bundle(copy)
