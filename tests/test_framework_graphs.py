"""Graphs written by the frameworks' own NIR exporters run in neurodeploy as each framework simulates them.

Each test builds a small network from the framework's own neurons at their defaults, exports it with the
framework's own exporter (SpikingJelly ``export_to_nir``, snnTorch ``export_to_nir``, norse ``to_nir``,
sinabs ``to_nir``), compiles the returned graph with neurodeploy and compares every population's spikes, step
by step, with the framework's own simulation of the same network on the same input (neurodeploy in float64;
the frameworks in float64 where their spike functions allow, else float32).
Where an exporter loses part of what the framework computes, the named exporter fix
(:mod:`neurodeploy.spiking.nir_fixes`) is passed, and the test shows that without it the spikes differ.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import neurodeploy as nd
from neurodeploy.errors import SpikingPlanError

STEPS = 60


def _spikes_in(rng: np.random.Generator, n: int, p: float = 0.5) -> torch.Tensor:
    return torch.as_tensor((rng.random((STEPS, n)) < p).astype(np.float64))


def _recorder(net: nn.Module, indices: tuple[int, ...]) -> dict[int, list[np.ndarray]]:
    """Spikes each neuron module returns (the first element where it returns a tuple), per call."""
    record: dict[int, list[np.ndarray]] = {i: [] for i in indices}

    def hook(i):
        def keep(module, args, out):
            record[i].append((out[0] if isinstance(out, tuple) else out).detach().double().numpy().copy())
        return keep

    for i in indices:
        net[i].register_forward_hook(hook(i))
    return record


def _deployed(graph, tmp_path, x: torch.Tensor, name: str = "b", backend: str = "emulator", **reading):
    bundle = nd.compile(graph, tmp_path / name, **reading)
    return bundle, nd.cosimulate(bundle, x.numpy(), backend=backend).spikes


def _mismatches(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> dict[str, int]:
    assert set(want) <= set(got), (sorted(got), sorted(want))
    return {k: int(np.sum(got[k][0].reshape(STEPS, -1) != w.reshape(STEPS, -1))) for k, w in want.items()}


def _active(want: dict[str, np.ndarray]) -> None:
    for name, s in want.items():
        assert 0 < s.mean() < 0.9, f"population {name} is not exercised ({s.mean():.2f} spikes per neuron-step)"


def test_spikingjelly_if_and_lif_graphs_run_as_spikingjelly_steps_them(tmp_path):
    """SpikingJelly writes IFNode as IF(r = 1/dt) at dt = 1e-4 (it used to fire wildly: r*I per step)."""
    from spikingjelly.activation_based import functional, neuron
    from spikingjelly.activation_based.nir_exchange import export_to_nir

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 10), neuron.IFNode(), nn.Linear(10, 4), neuron.LIFNode()).double()
    with torch.no_grad():
        net[0].weight.mul_(2.0)
        net[2].weight.mul_(6.0)
    functional.set_step_mode(net, "m")
    x = _spikes_in(np.random.default_rng(0), 6)
    graph = export_to_nir(net, x[:, None], dt=1e-4)
    functional.reset_net(net)
    record = _recorder(net, (1, 3))
    with torch.no_grad():
        net(x[:, None])
    want = {f"_{i}": record[i][0][:, 0] for i in (1, 3)}
    _active(want)
    bundle, got = _deployed(graph, tmp_path, x)
    assert graph.nodes["_1"].r[0] == pytest.approx(1e4)
    assert _mismatches(got, want) == {"_1": 0, "_3": 0}
    assert _mismatches(nd.cosimulate(bundle, x.numpy(), backend="lava").spikes, want) == {"_1": 0, "_3": 0}


def _snntorch_net(reset: str | None):
    import snntorch as snn

    # Synaptic's reset to zero with reset_delay=True also zeroes the next step's input (no NIR/Loihi form)
    kw = {} if reset is None else {"reset_mechanism": reset, "reset_delay": False}
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(6, 10), snn.Leaky(beta=torch.full((10,), 0.9), threshold=torch.ones(10),
                                                  init_hidden=True, **kw),
                        nn.Linear(10, 4), snn.Synaptic(alpha=torch.full((4,), 0.8), beta=torch.full((4,), 0.9),
                                                        threshold=torch.ones(4), init_hidden=True, output=True, **kw))
    with torch.no_grad():
        net[0].weight.mul_(1.5)
        net[2].weight.mul_(1.5)
    return net  # float32: snnTorch's spike function returns float32 whatever the input


def _snntorch_run(net: nn.Module, x: torch.Tensor) -> dict[str, np.ndarray]:
    from snntorch import utils

    utils.reset(net)
    record = _recorder(net, (1, 3))
    with torch.no_grad():
        for t in range(STEPS):
            net(x[t][None].float())
    return {str(i): np.concatenate(record[i]) for i in (1, 3)}


@pytest.mark.parametrize("reset, fixes", [("zero", []), (None, ["snntorch"])], ids=["reset-zero", "default-reset"])
def test_snntorch_exported_graphs_run_as_snntorch_steps_them(tmp_path, reset, fixes):
    """snnTorch's exporter writes Leaky/Synaptic without their reset: right for reset_mechanism="zero";
    at snnTorch's default (subtract, delayed) the ``snntorch`` fix restores it."""
    from snntorch.export_nir import export_to_nir

    net = _snntorch_net(reset)
    x = _spikes_in(np.random.default_rng(1), 6)
    graph = export_to_nir(net, torch.zeros(1, 6), ignore_dims=[0])
    want = _snntorch_run(net, x)
    _active(want)
    _, got = _deployed(graph, tmp_path, x, fixes=fixes)
    assert _mismatches(got, want) == {"1": 0, "3": 0}
    if fixes:
        _, unfixed = _deployed(graph, tmp_path, x, name="unfixed")
        assert sum(_mismatches(unfixed, want).values()) > 0  # the fix is what makes them agree


def test_norse_graphs_need_the_named_fix_and_then_run_as_norse_steps_them(tmp_path):
    """norse's to_nir writes tau as dt*tau: the graph is refused with the cause named; with fixes=["norse"]
    at norse's dt (1e-3) the LIFCell (CubaLIF) and LIFBoxCell (LIF) populations spike as in norse."""
    import norse.torch as norse

    torch.manual_seed(2)
    net = norse.SequentialState(nn.Linear(6, 10), norse.LIFCell(), nn.Linear(10, 4), norse.LIFBoxCell()).double()
    with torch.no_grad():
        net[0].weight.mul_(2.0)
        net[2].weight.abs_().mul_(4.0)  # excitatory, so the output layer fires
    x = _spikes_in(np.random.default_rng(2), 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = norse.to_nir(net, torch.zeros(6, dtype=torch.float64))  # no batch dim: NIR shapes have none
    record = _recorder(net, (1, 3))
    state = None
    with torch.no_grad():
        for t in range(STEPS):
            _, state = net(x[t][None], state)
    want = {str(i): np.concatenate(record[i]) for i in (1, 3)}
    _active(want)
    with pytest.raises(SpikingPlanError, match=r"looks like norse 1.1.0's to_nir.*fixes=\['norse'\]"):
        nd.compile(graph, tmp_path / "refused", dt_s=1e-3)
    bundle, got = _deployed(graph, tmp_path, x, dt_s=1e-3, fixes=["norse"])
    assert bundle.manifest.spiking.exporter_fixes == ["norse"]
    assert _mismatches(got, want) == {"1": 0, "3": 0}


def test_sinabs_graphs_with_missing_types_run_exactly_as_sinabs_steps_them(tmp_path):
    """sinabs leaves types empty (nir.write fails on its graph), counts time in steps and integrates LIF
    exactly: with dt=1, discretisation="exact" and fixes=["sinabs"] (its subtractive reset and >= test) the
    spikes equal sinabs's; forward Euler on the same graph does not."""
    import sinabs
    import sinabs.layers as sl

    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(6, 10), sl.IAFSqueeze(batch_size=1), nn.Linear(10, 4),
                        sl.LIFSqueeze(tau_mem=8.0, batch_size=1))
    with torch.no_grad():
        net[0].weight.mul_(0.8)
        net[2].weight.abs_().mul_(8.0)  # excitatory, so the LIF layer fires
    x = _spikes_in(np.random.default_rng(3), 6)
    graph = sinabs.to_nir(net, torch.zeros(1, 6))
    sinabs.reset_states(net)
    record = _recorder(net, (1, 3))
    with torch.no_grad():
        net(x.float())  # float32: sinabs's spike functions return float32
    want = {str(i): record[i][0] for i in (1, 3)}
    assert max(s.max() for s in want.values()) == 1  # below 2x threshold: sinabs's MultiSpike sends single spikes
    _active(want)
    reading = {"dt_s": 1.0, "fixes": ["sinabs"]}
    bundle, got = _deployed(graph, tmp_path, x, discretisation="exact", **reading)
    assert bundle.manifest.spiking.discretisation == "exact"
    assert _mismatches(got, want) == {"1": 0, "3": 0}
    _, euler = _deployed(graph, tmp_path, x, name="euler", **reading)
    assert _mismatches(euler, want)["3"] > 0  # the LIF's discretisation is what makes them agree


def test_an_li_readout_returns_norse_membrane_and_fixed_point_is_bit_exact(tmp_path):
    """norse's LIBoxCell, exported as NIR LI, read by an Output: the deployed readout returns its voltage,
    equal to norse's membrane trace in float; in fixed point Lava fixed_pt's voltages equal the emulator's."""
    import norse.torch as norse

    torch.manual_seed(6)
    net = norse.SequentialState(nn.Linear(6, 10), norse.LIFBoxCell(), nn.Linear(10, 3), norse.LIBoxCell()).double()
    with torch.no_grad():
        net[0].weight.abs_().mul_(3.0)
    x = _spikes_in(np.random.default_rng(6), 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = norse.to_nir(net, torch.zeros(6, dtype=torch.float64))
    state, voltages = None, []
    with torch.no_grad():
        for t in range(STEPS):
            v, state = net(x[t][None], state)
            voltages.append(v.numpy())
    want = np.concatenate(voltages)
    bundle, got = _deployed(graph, tmp_path, x, dt_s=1e-3, fixes=["norse"])
    assert bundle.manifest.spiking.outputs == {"output": "3"}
    assert np.abs(want).max() > 0.1
    # norse keeps tau_mem_inv in float32 and its exporter computes dt/tau_inv in float32: the graph's tau
    # carries float32 rounding (relative 1e-7), so the voltages agree to that and no further
    np.testing.assert_allclose(got["3"][0], want, rtol=1e-6, atol=1e-9)
    lava = nd.cosimulate(bundle, x.numpy(), backend="lava").spikes["3"]
    np.testing.assert_allclose(lava, got["3"], rtol=1e-12, atol=1e-15)  # Lava floating_pt sends the same v
    fixed = {b: nd.cosimulate(bundle, x.numpy(), mode="fixed", backend=b).spikes["3"] for b in ("emulator", "lava")}
    assert np.array_equal(fixed["emulator"], fixed["lava"]) and np.count_nonzero(fixed["lava"]) > 0


def test_rockpool_lif_graphs_run_as_rockpool_steps_them_with_the_named_fix(tmp_path):
    """Rockpool's LIFTorch (i <- beta (i + x); v <- alpha v + i; v >= threshold, subtract) at its defaults
    (dt = 1 ms, tau 20 ms): its exporter writes another input scale; with fixes=["rockpool"] and the exact
    discretisation every population spikes as in Rockpool."""
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch
    from rockpool.nn.modules.torch.nir import to_nir

    torch.manual_seed(7)
    net = Sequential(LinearTorch((6, 10)), LIFTorch(10), LinearTorch((10, 4)), LIFTorch(4))
    with torch.no_grad():
        net[0].weight.mul_(0.03)  # LIFTorch does not normalise its input: v settles near x / ((1-alpha)(1-beta))
        net[2].weight.abs_().mul_(0.03)  # excitatory, so the output layer fires
    x = _spikes_in(np.random.default_rng(7), 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = to_nir(net, torch.zeros(1, 1, 6))
        _, _, record = net(x[None].float(), record=True)
    want = {name: record[f"{name}_output"][0].detach().double().numpy() for name in ("1_LIFTorch", "3_LIFTorch")}
    assert max(s.max() for s in want.values()) == 1  # below 2x threshold: Rockpool's multi-spikes are single
    _active(want)
    reading = {"dt_s": 1e-3, "fixes": ["rockpool"]}
    _, got = _deployed(graph, tmp_path, x, discretisation="exact", **reading)
    assert _mismatches(got, want) == {"1_LIFTorch": 0, "3_LIFTorch": 0}
    _, unfixed = _deployed(graph, tmp_path, x, name="unfixed", discretisation="exact", dt_s=1e-3)
    assert sum(_mismatches(unfixed, want).values()) > 0
