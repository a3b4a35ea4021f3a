"""snnTorch neurons at snnTorch's defaults (subtractive reset, reset delay) deploy unchanged.

Float: snnTorch's own ``Leaky`` and ``Synaptic``, stepped by snnTorch, against the float reference, Lava
(``ResetLIF`` in ``floating_pt``) and the emulator: 0 spike mismatches for every reset mode.
Fixed: the ``ResetLIF`` fixed_pt model against the emulator, bit-exact in spikes and state, on
randomised networks (hypothesis) with every reset mode, as the LIF tests do.
"""
from __future__ import annotations

import nir
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_emulator import assert_bit_exact, fixed_networks
from torch import nn

import neurodeploy as nd
from neurodeploy.exporters import sequential_to_nir, write_nir
from neurodeploy.spiking.nir_lowering import nir_to_plan
from neurodeploy.models.adapters import RateAdapter
from neurodeploy.runtime.emulator import EmulatorRunner
from neurodeploy.runtime.lava_runner import LavaRunner
from neurodeploy.spiking.plan import RESETS
from neurodeploy.spiking.quantize import quantize
from neurodeploy.spiking.float_simulation import simulate_float

snn = pytest.importorskip("snntorch")
T = 40
CONFIGS = {"default (subtract, reset_delay=True)": {}, "subtract, reset_delay=False": {"reset_delay": False},
           "none": {"reset_mechanism": "none"}, "zero, reset_delay=True": {"reset_mechanism": "zero"}}
EXPECTED = {"default (subtract, reset_delay=True)": "subtract_delayed", "subtract, reset_delay=False": "subtract",
            "none": "none", "zero, reset_delay=True": "zero"}


def _net(kind: str, **reset) -> nn.Sequential:
    torch.manual_seed(0)
    if kind == "Leaky":
        first, second = snn.Leaky(beta=0.8, threshold=0.7, **reset), snn.Leaky(beta=0.9, threshold=0.5, **reset)
    else:
        first = snn.Synaptic(alpha=0.6, beta=0.8, threshold=0.7, **reset)
        second = snn.Synaptic(alpha=0.5, beta=0.9, threshold=0.5, **reset)
    net = nn.Sequential(nn.Linear(10, 16), first, nn.Linear(16, 6), second).double()
    with torch.no_grad():
        net[0].weight.mul_(2.0)
        net[2].weight.mul_(2.0)
    return net


def _snntorch_spikes(net: nn.Sequential, x: torch.Tensor) -> dict[str, np.ndarray]:
    """snnTorch's own stepping: each neuron called with its state, as a user's time loop does."""
    states = [_init(net[1]), _init(net[3])]
    out = {"1": [], "3": []}
    with torch.no_grad():
        for t in range(len(x)):
            h = x[t][None]
            for i, key in ((0, "1"), (1, "3")):
                cell = net[2 * i + 1]
                s, *states[i] = cell(net[2 * i](h), *states[i])
                out[key].append(s[0].numpy())
                h = s.double()
    return {k: np.array(v) for k, v in out.items()}


def _init(cell):
    return list(cell.init_synaptic()) if type(cell).__name__ == "Synaptic" else [cell.init_leaky()]


@pytest.mark.parametrize(("kind", "config"), [(k, c) for k in ("Leaky", "Synaptic") for c in CONFIGS
                                               if (k, c) != ("Synaptic", "zero, reset_delay=True")])  # refused below
def test_snntorch_resets_run_as_snntorch_runs_them(kind, config, tmp_path):
    net = _net(kind, **CONFIGS[config])
    x = (torch.rand(T, 10, generator=torch.Generator().manual_seed(1)) < 0.3).double()
    want = _snntorch_spikes(net, x)
    write_nir(sequential_to_nir(net, (10,), 1e-3, producer="snntorch"), tmp_path / "g.nir")
    plan = nir_to_plan(nir.read(str(tmp_path / "g.nir")))  # the reset survives the file
    assert [p.reset for p in plan.neurons] == [EXPECTED[config]] * 2
    runs = {"reference": simulate_float(plan, x.numpy())}
    with LavaRunner(plan, T, "float") as lava:
        runs["lava"] = lava.run_sample(x.numpy()).spikes
    with EmulatorRunner(plan, T, "float") as emulator:
        runs["emulator"] = {k: v[0] for k, v in emulator.run_batch(x.numpy()[None]).spikes.items()}
    for name, got in runs.items():
        assert {k: int((got[k] != want[k]).sum()) for k in want} == {"1": 0, "3": 0}, name
    assert want["1"].sum() > 0 and want["3"].sum() > 0
    fixed = quantize(plan).plan
    assert_bit_exact(fixed, x.numpy())


def test_synaptic_delayed_zero_reset_is_refused_by_name():
    with pytest.raises(nd.NeurodeployError, match="1: snnTorch Synaptic with reset_mechanism='zero' and reset_delay"):
        sequential_to_nir(_net("Synaptic", reset_mechanism="zero"), (10,), 1e-3)


@st.composite
def reset_networks(draw):
    """The emulator's randomised LIF networks, each population with a reset mode drawn from all four."""
    plan, x = draw(fixed_networks())
    for layer in plan.neurons:
        layer.reset = draw(st.sampled_from(RESETS))
        if layer.reset != "zero":  # a bias before the delayed input would need Lava's LIFReset as well
            plan.fixed[layer.name].bias_mant = np.zeros_like(np.asarray(plan.fixed[layer.name].bias_mant))
    return plan, x


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(reset_networks())
def test_reset_lif_fixed_is_bit_exact_with_the_emulator(net):
    plan, x = net
    assert_bit_exact(plan, x)


def _deploys_unchanged(model: nn.Module, out, seed: int):
    """Compile ``model``, co-simulate new inputs: 0 spike mismatches against it in float, and Lava fixed_pt
    equal to the emulator; returns the bundle."""
    x = (torch.rand(2, 16, 8, generator=torch.Generator().manual_seed(seed)) < 0.35).float()
    bundle = nd.compile(model, out, inputs=x)
    x_new = (np.random.default_rng(seed + 1).random((3, 24, 8)) < 0.35).astype(np.float64)
    result = nd.cosimulate(bundle, x_new, model=model)
    assert result.agreement.spike_mismatches == 0 and result.agreement.max_abs_err < 1e-5
    assert result.spikes["1"].sum() > 0 and result.spikes["3"].sum() > 0
    lava, emulator = (nd.cosimulate(bundle, x_new, mode="fixed", backend=b) for b in ("lava", "emulator"))
    assert all(np.array_equal(lava.spikes[k], emulator.spikes[k]) for k in lava.spikes)
    assert np.allclose(lava.y, emulator.y, atol=1e-6)
    return bundle


def test_a_default_snntorch_model_deploys_unchanged(tmp_path):
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(8, 16), snn.Leaky(beta=0.85), nn.Linear(16, 8), snn.Leaky(beta=0.9),
                          RateAdapter(4), nn.Linear(8, 3))
    with torch.no_grad():
        model[0].weight.mul_(2.5)
        model[2].weight.mul_(2.5)
    bundle = _deploys_unchanged(model, tmp_path / "b", 3)
    assert [p.device for p in bundle.manifest.placement][:4] == ["loihi"] * 4


@pytest.mark.parametrize("kind", ["RLeaky", "RSynaptic"])
def test_recurrent_snntorch_neurons_at_their_defaults(kind, tmp_path):
    """RLeaky / RSynaptic (dense recurrent weights, subtractive reset with delay) compiled as written."""
    from neurodeploy.exporters import load_spiking

    torch.manual_seed(5)
    cell = getattr(snn, kind)
    extra = {"alpha": 0.6} if kind == "RSynaptic" else {}
    model = nn.Sequential(nn.Linear(8, 12), cell(beta=0.85, linear_features=12, **extra), nn.Linear(12, 6),
                          snn.Leaky(beta=0.9), RateAdapter(4), nn.Linear(6, 3))
    with torch.no_grad():
        model[0].weight.mul_(2.5)
        model[1].recurrent.weight.mul_(2.0)
        model[2].weight.mul_(2.5)
    plan = load_spiking(_deploys_unchanged(model, tmp_path / "r", 6).spiking_path)
    assert any(s.recurrent and s.name == "1.recurrent" for s in plan.synapses)  # the user's module path
