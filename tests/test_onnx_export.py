"""Dense-part ONNX export: parity with PyTorch and guards that fail loudly."""
from __future__ import annotations

import pytest
import torch

from neurodeploy.errors import OnnxExportError
from neurodeploy.exporters.onnx_export import check_dynamic_dims, check_parity, export_dense
from neurodeploy.models.backends import TransformerBackend
from neurodeploy.exporters.onnx_session import select_providers

DIMS = {0: "batch", 1: "steps"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    backend = TransformerBackend(12, 3, window=4, d_model=16, n_heads=2, n_layers=1).eval()
    path = tmp_path_factory.mktemp("onnx") / "dense.onnx"
    export_dense(backend, (torch.rand(2, 16, 12) < 0.3).float(), path, DIMS)
    return backend, path


def test_ort_matches_pytorch_at_three_lengths(exported):
    backend, path = exported
    check_dynamic_dims(path, DIMS)
    g = torch.Generator().manual_seed(5)
    checks = check_parity(path, backend, [(torch.rand(b, t, 12, generator=g) < 0.3).float()
                                          for b, t in ((1, 8), (2, 16), (3, 64))])
    assert [c.shape[1] for c in checks] == [8, 16, 64]
    assert max(c.max_abs_err for c in checks) < 1e-5


def test_parity_check_fails_on_a_different_model(exported):
    backend, path = exported
    other = TransformerBackend(12, 3, window=4, d_model=16, n_heads=2, n_layers=1).eval()
    with pytest.raises(OnnxExportError, match="differs from PyTorch"):
        check_parity(path, other, [(torch.rand(1, 8, 12) < 0.3).float()])


def test_specialised_dimension_is_an_error(tmp_path):
    backend = TransformerBackend(12, 3, window=4, d_model=16, n_heads=2, n_layers=1).eval()
    export_dense(backend, (torch.rand(1, 16, 12) < 0.3).float(), tmp_path / "b1.onnx", DIMS)  # batch 1
    with pytest.raises(OnnxExportError, match=r"dim 0 \(batch\) = 1"):
        check_dynamic_dims(tmp_path / "b1.onnx", DIMS)


def test_cpu_provider_without_gpu():
    assert select_providers(prefer_gpu=False) == ["CPUExecutionProvider"]
    assert select_providers()[-1] == "CPUExecutionProvider"
