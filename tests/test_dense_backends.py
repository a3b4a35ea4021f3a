"""Dense back-ends: both ONNX forms against PyTorch, the streaming form against the whole sequence, MACs."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from neurodeploy.cost.macs import count_macs
from neurodeploy.errors import OnnxExportError
from neurodeploy.exporters.onnx_export import check_step_parity, export_backend
from neurodeploy.models.backends import StreamingBackend

N_IN, N_OUT, K = 12, 5, 4
CASES = [("attention", "rate"), ("mamba", "rate"), ("cfc", "exp"), ("ssa", "membrane"), ("sdsa", "exp"),
         ("fusion_gate", "membrane"), ("fusion_cross", "rate"), ("exchange", "membrane")]


def _examples() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    # T = 16, 40 (the export example) and 160: one length longer than the example
    return [(torch.rand(b, t, N_IN, generator=g) < 0.3).float() for b, t in ((1, 16), (2, 40), (3, 160))]


@pytest.fixture(scope="module", params=CASES, ids=[f"{b}-{a}" for b, a in CASES])
def exported(request, tmp_path_factory):
    block, adapter = request.param
    torch.manual_seed(0)
    backend = StreamingBackend(N_IN, N_OUT, K, [block], d_model=16, heads=2, adapter=adapter).eval()
    return backend, export_backend(backend, tmp_path_factory.mktemp(block), _examples())


def test_both_forms_match_pytorch_at_three_lengths(exported):
    backend, result = exported
    assert [c.shape[1] for c in result.sequence_parity] == [16, 40, 160]
    assert max(c.max_abs_err for c in result.sequence_parity) < 1e-4
    assert max(c.max_abs_err for c in result.step_parity) < 1e-4
    if backend.block_names[0] in ("mamba", "fusion_gate", "fusion_cross") and backend.adapter_kind == "rate":
        assert result.sequence_form == "scan_of_step"  # the dynamo exporter cannot trace this one (torch 2.13)


def test_step_check_fails_when_the_model_differs(exported):
    backend, result = exported
    other = StreamingBackend(N_IN, N_OUT, K, backend.block_names, d_model=16, heads=2,
                             adapter=backend.adapter_kind).eval()
    with pytest.raises(OnnxExportError, match="streaming step model differs"):
        check_step_parity(result.step_path, other, _examples()[:1])


def test_streaming_equals_whole_sequence_in_pytorch_for_every_adapter():
    x = _examples()[1]
    for adapter in ("rate", "exp", "membrane"):
        backend = StreamingBackend(N_IN, N_OUT, K, ["attention", "mamba", "cfc"], d_model=16, heads=2,
                                   adapter=adapter).eval()
        with torch.no_grad():
            whole, state, steps = backend(x), backend.init_state(2), []
            for start in range(0, x.shape[1], K):
                y, *state = backend.step(x[:, start: start + K], *state)
                steps.append(y)
        assert (torch.stack(steps, 1) - whole).abs().max() < 1e-5, adapter


def test_macs_counted_from_onnx_equal_a_hand_count(tmp_path):
    torch.manual_seed(0)
    backend = StreamingBackend(N_IN, N_OUT, K, ["attention"], d_model=16, heads=2).eval()
    result = export_backend(backend, tmp_path, _examples())
    report = count_macs(result.sequence_path, {"spikes": (1, 64, N_IN)})
    tokens, d, dh, heads = 16, 16, 8, 2
    hand = tokens * (N_IN * d + d * 3 * d + d * d + 2 * d * 2 * d + d * N_OUT) + 2 * heads * tokens * tokens * dh
    assert report.macs == hand and not report.unknown
    assert report.per_op["Softmax"].flops == 5 * heads * tokens * tokens
    step = count_macs(result.step_path, {"window": (1, K, N_IN), "state_0": (1, 2, 256, 8), "state_1": (1, 2, 256, 8),
                                         "state_2": (1,)})
    assert step.macs > 0 and not step.unknown


class _Recurrent(nn.Module):
    """A GRU, a bidirectional two-layer LSTM and an RNN over the same spikes, batch first, and a head."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(N_IN, 12, batch_first=True)
        self.lstm = nn.LSTM(N_IN, 10, num_layers=2, bidirectional=True, batch_first=True)
        self.rnn = nn.RNN(N_IN, 6, batch_first=True)
        self.head = nn.Linear(12 + 20 + 6, N_OUT)

    def forward(self, spikes):
        h = torch.cat([self.gru(spikes)[0], self.lstm(spikes)[0], self.rnn(spikes)[0]], -1)
        return self.head(h[:, -1])


def test_macs_of_onnx_recurrent_layers_equal_a_hand_count(tmp_path):
    """ONNX GRU and LSTM nodes (what a user's nn.GRU/nn.LSTM exports to; nn.RNN exports as MatMuls) count every
    gate's input and recurrent products per step and direction: they were counted as 0 MACs before."""
    from neurodeploy.exporters.onnx_export import export_dense

    torch.manual_seed(0)
    steps = 20
    export_dense(_Recurrent().eval(), torch.rand(2, steps, N_IN), tmp_path / "r.onnx", {0: "batch"})
    report = count_macs(tmp_path / "r.onnx", {"spikes": (1, steps, N_IN)})
    lstm = 4 * 10 * (N_IN + 10) * 2 + 4 * 10 * (20 + 10) * 2  # layer 1 reads N_IN, layer 2 both directions' 20
    per_step = 3 * 12 * (N_IN + 12) + lstm + 6 * (N_IN + 6)
    assert {op: report.per_op[op].count for op in ("GRU", "LSTM")} == {"GRU": 1, "LSTM": 2}  # the RNN: MatMuls
    assert report.macs == steps * per_step + (12 + 20 + 6) * N_OUT and not report.unknown
    assert report.per_op["GRU"].flops == 2 * steps * 3 * 12 * (N_IN + 12) + steps * 12 * 13
