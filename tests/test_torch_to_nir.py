"""torch -> NIR -> Lava round trips for snnTorch and norse front-ends, against the modules themselves."""
from __future__ import annotations

import nir
import numpy as np
import pytest
import torch
from torch import nn

from neurodeploy.errors import SpikingPlanError
from neurodeploy.spiking.nir_lowering import nir_to_plan
from neurodeploy.exporters.torch_to_nir import sequential_to_nir
from neurodeploy.runtime.lava_runner import LavaRunner

T, N_IN = 40, 8


def _inputs(seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((T, N_IN)) < 0.3).astype(np.float64)


def _linear(n_in: int, n_out: int, seed: int, gain: float) -> nn.Linear:
    torch.manual_seed(seed)
    layer = nn.Linear(n_in, n_out)
    with torch.no_grad():
        layer.weight.mul_(gain)
        layer.bias.uniform_(-0.05, 0.15)
    return layer.double()


def _lava_spikes(graph: nir.NIRGraph, x: np.ndarray, tmp_path) -> dict[str, np.ndarray]:
    nir.write(str(tmp_path / "g.nir"), graph)  # through the file format, as a user would
    plan = nir_to_plan(nir.read(str(tmp_path / "g.nir")))
    with LavaRunner(plan, len(x), "float") as run:
        return run.run_sample(x).spikes


def _assert_same_spikes(got: dict[str, np.ndarray], want: dict[str, list]) -> None:
    for name, ref in want.items():
        ref = np.stack(ref)
        assert ref.sum() > 0  # the layer is active, so equality means something
        assert int(np.abs(got[name] - ref).sum()) == 0, name


def test_snntorch_leaky_and_synaptic_round_trip(tmp_path):
    snn = pytest.importorskip("snntorch")
    net = nn.Sequential(_linear(N_IN, 16, 1, 3.0),
                        snn.Leaky(beta=0.85, threshold=1.0, reset_mechanism="zero", reset_delay=False),
                        _linear(16, 6, 2, 3.0),
                        snn.Synaptic(alpha=0.6, beta=0.8, threshold=0.5, reset_mechanism="zero", reset_delay=False))
    x = _inputs()
    mem1 = torch.zeros(1, 16, dtype=torch.float64)
    syn2, mem2 = torch.zeros(1, 6, dtype=torch.float64), torch.zeros(1, 6, dtype=torch.float64)
    want = {"1": [], "3": []}
    with torch.no_grad():
        for t in range(T):
            s1, mem1 = net[1](net[0](torch.as_tensor(x[t])[None]), mem1)
            s2, syn2, mem2 = net[3](net[2](s1.double()), syn2, mem2)
            want["1"].append(s1[0].numpy())
            want["3"].append(s2[0].numpy())
    _assert_same_spikes(_lava_spikes(sequential_to_nir(net, (N_IN,), dt=1e-3, producer="snntorch"), x, tmp_path), want)


def test_norse_lif_box_round_trip(tmp_path):
    norse = pytest.importorskip("norse.torch")
    p = norse.LIFBoxParameters(tau_mem_inv=torch.tensor(200.0, dtype=torch.float64),
                               v_leak=torch.tensor(0.0, dtype=torch.float64), v_th=torch.tensor(0.4, dtype=torch.float64))
    net = nn.Sequential(_linear(N_IN, 12, 3, 4.0), norse.LIFBoxCell(p, dt=1e-3), _linear(12, 5, 4, 4.0),
                        norse.LIFBoxCell(p, dt=1e-3))
    x = _inputs(1)
    s1_state = s2_state = None
    want = {"1": [], "3": []}
    with torch.no_grad():
        for t in range(T):
            z1, s1_state = net[1](net[0](torch.as_tensor(x[t])[None]), s1_state)
            z2, s2_state = net[3](net[2](z1.double()), s2_state)
            want["1"].append(z1[0].numpy())
            want["3"].append(z2[0].numpy())
    _assert_same_spikes(_lava_spikes(sequential_to_nir(net, (N_IN,), dt=1e-3, producer="norse"), x, tmp_path), want)


def test_unexportable_modules_are_all_listed():
    snn = pytest.importorskip("snntorch")
    net = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), snn.Leaky(beta=0.9), nn.MaxPool2d(2))
    with pytest.raises(SpikingPlanError) as err:
        sequential_to_nir(net, (2, 8, 8), dt=1e-3)
    text = "\n".join(err.value.problems)
    assert "1: BatchNorm must be folded" in text and "3: MaxPool" in text
    assert "2:" not in text  # snnTorch's default Leaky (subtractive reset, reset delay) now maps
