"""The counts labelled NeuroBench equal NeuroBench 2.3.0's own metrics on the same snnTorch network and input.

NeuroBench runs the snnTorch network through its ``SNNTorchModel`` wrapper with its hooks and computes
``SynapticOperations`` (Effective ACs/MACs and Dense), ``ActivationSparsity`` and ``MembraneUpdates``;
neurodeploy compiles the same network, co-simulates it on the same input and prices it. With biases, the
always-on bias lines Loihi runs are reported beside the NeuroBench figure, not in it.
"""
from __future__ import annotations

import numpy as np
import pytest
import snntorch as snn
import torch
from neurobench.metrics.workload import ActivationSparsity, MembraneUpdates, SynapticOperations
from neurobench.models import SNNTorchModel
from torch import nn

import neurodeploy as nd
from neurodeploy.exporters.torch_to_nir import sequential_to_nir

STEPS, SAMPLES = 25, 4


def _net(bias: bool) -> nn.Sequential:
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(12, 16, bias=bias), snn.Leaky(beta=0.9, init_hidden=True),
                        nn.Linear(16, 5, bias=bias), snn.Leaky(beta=0.8, init_hidden=True, output=True))
    with torch.no_grad():
        net[0].weight.mul_(1.5)
        net[2].weight.abs_().mul_(1.5)
    return net


def _neurobench(net: nn.Sequential, x: torch.Tensor) -> dict:
    model = SNNTorchModel(net)
    model.register_hooks()
    with torch.no_grad():
        preds = model(x)
    data = (x, torch.zeros(len(x)))
    sops = SynapticOperations()(model, preds, data)
    counts = {"effective": sops["Effective_ACs"] + sops["Effective_MACs"], "dense": sops["Dense"],
              "activation_sparsity": ActivationSparsity()(model, preds, data),
              "membrane_updates": MembraneUpdates()(model, preds, data),
              "hidden": torch.stack(model.activation_hooks[0].activation_outputs, 1).numpy()}
    model.cleanup_hooks()
    return counts


@pytest.mark.parametrize("bias", [False, True], ids=["no-bias", "bias"])
def test_sops_sparsity_and_membrane_updates_equal_neurobench(tmp_path, bias):
    net = _net(bias)
    x = torch.as_tensor((np.random.default_rng(5).random((SAMPLES, STEPS, 12)) < 0.3).astype(np.float32))
    want = _neurobench(net, x)
    graph = sequential_to_nir(net, (12,), 1e-4)
    bundle = nd.compile(graph, tmp_path / "b")
    result = nd.cosimulate(bundle, x.numpy(), backend="emulator")
    assert np.array_equal(result.spikes["1"], want["hidden"])  # the same spikes, so the counts are comparable
    got = nd.estimate(bundle, result).figures
    assert 0 < want["effective"] < want["dense"]
    assert got["sops"]["effective"] == want["effective"]
    assert got["sops"]["dense"] == want["dense"]
    assert got["activation_sparsity"]["value"] == pytest.approx(want["activation_sparsity"], abs=1e-12)
    assert got["membrane_updates"]["value"] == want["membrane_updates"]
    assert "biases excluded" in got["sops"]["unit"]
    assert (got["sops"]["bias"]["effective"] > 0) == bias  # Loihi's bias lines, reported beside the figure
