"""``nd.benchmark``: one flat dict; the figures named as NeuroBench names them equal NeuroBench 2.3.0's own
static metrics on the same PyTorch model, the others equal the separate evaluate / cosimulate / estimate
calls they come from."""
from __future__ import annotations

import json

import pytest
import snntorch as snn
import torch
from torch import nn

import neurodeploy as nd
from neurodeploy.analysis.benchmark import FIELDS


class SpikingGRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.lif1 = nn.Linear(8, 24), snn.Leaky(beta=0.9)
        self.gru = nn.GRU(24, 12, batch_first=True)
        self.cell = nn.LSTMCell(12, 6)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        mem, spikes = self.lif1.init_leaky(), []
        for t in range(x.shape[1]):
            spk, mem = self.lif1(self.fc1(x[:, t]), mem)
            spikes.append(spk)
        h, _ = self.gru(torch.stack(spikes, 1))
        return self.head(self.cell(h[:, -1])[0])


@pytest.fixture(scope="module")
def model_and_data():
    torch.manual_seed(0)
    model = SpikingGRU().eval()
    with torch.no_grad():  # some zero weights, so that connection sparsity is not 0
        model.fc1.weight[:, :2] = 0
        model.gru.weight_hh_l0[:5] = 0
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(24, 12, 8, generator=g) < 0.3).float()
    return model, x.numpy(), model(x).argmax(1).numpy()


def test_static_metrics_equal_neurobench(model_and_data):
    from neurobench.metrics.static import ConnectionSparsity, Footprint, ParameterCount
    from neurobench.models import TorchModel

    from neurodeploy.analysis.benchmark import static_metrics

    model = model_and_data[0]
    theirs = TorchModel(model)
    want = {"Footprint": Footprint()(theirs), "ParameterCount": ParameterCount()(theirs),
            "ConnectionSparsity": ConnectionSparsity()(theirs)}
    assert static_metrics(model) == want and 0 < want["ConnectionSparsity"] < 1


def test_benchmark_is_flat_and_equals_the_separate_calls(model_and_data, tmp_path):
    model, x, labels = model_and_data
    got = nd.benchmark(model, x, labels, out=tmp_path / "b", dt_s=1e-3)
    assert list(got) == list(FIELDS) and json.loads(json.dumps(got)) == got  # flat, JSON as it is
    assert all(not isinstance(v, (dict, list)) for v in got.values())
    bundle = nd.load(tmp_path / "b")
    ev = nd.evaluate(bundle, x, labels, model=model)
    cost = nd.estimate(bundle, nd.cosimulate(bundle, x[:8], mode="fixed", backend="emulator", model=model)).figures
    assert (got["ClassificationAccuracy"], got["accuracy_pytorch"], got["same_class_as_pytorch"]) == \
        (ev.accuracy, ev.torch_accuracy, ev.agreement) and got["accuracy_pytorch"] == 1.0
    assert (got["energy_j"], got["latency_s"], got["macs_gpu"], got["sops_loihi_effective"]) == \
        (cost["energy_j"]["total"], cost["latency_s"]["total"], cost["macs"]["total"], cost["sops"]["effective"])
    assert got["energy_gpu_only_j"] == cost["baseline_gpu_only"]["energy_j"] > 0 and got["energy_j"] > 0
    assert got["ParameterCount"] == sum(p.numel() for p in model.parameters()) and got["loihi_cores"] >= 1
    assert got["macs_gpu"] > 12 * 3 * 12 * (24 + 12)  # the GRU's recurrence is counted
    # the same from the bundle itself, given the model
    again = nd.benchmark(tmp_path / "b", x, labels, model=model)
    assert {k: v for k, v in again.items()} == got


def test_benchmark_of_a_model_needs_a_folder(model_and_data):
    model, x, labels = model_and_data
    with pytest.raises(nd.NeurodeployError, match="give out="):
        nd.benchmark(model, x, labels)
