"""Front-end -> NIR file -> plan, checked against NIR's own equations and for named errors."""
from __future__ import annotations

import nir
import numpy as np
import pytest
import torch
from conftest import CASES

from neurodeploy.errors import SpikingPlanError
from neurodeploy.exporters.nir_export import frontend_to_nir, write_nir
from neurodeploy.exporters.nir_read import read_plan
from neurodeploy.spiking.nir_lowering import DEFAULT_DT_S, nir_to_plan
from neurodeploy.models.zoo import tiny_hybrid


def euler_nir_chain(graph: nir.NIRGraph, x: np.ndarray, dt: float) -> dict[str, np.ndarray]:
    """Independent forward-Euler simulation of a NIR chain, written from NIR's CubaLIF ODEs
    (tau_syn dI/dt = -I + w_in S; tau_mem dv/dt = v_leak - v + r I), with no synaptic delay."""
    order, nxt = ["input"], dict(graph.edges)
    while order[-1] in nxt:
        order.append(nxt[order[-1]])
    out, h = {}, x
    for name in order[1:-1]:
        node = graph.nodes[name]
        if isinstance(node, (nir.Linear, nir.Affine)):
            h = h @ node.weight.T + (node.bias if isinstance(node, nir.Affine) else 0)
        else:
            steps, n = h.shape
            i_syn, v, z = np.zeros(n), np.zeros(n), np.zeros((steps, n))
            for t in range(steps):
                i_syn = i_syn + dt / node.tau_syn * (-i_syn + node.w_in * h[t])
                v = v + dt / node.tau_mem * (node.v_leak - v + node.r * i_syn)
                z[t] = v > node.v_threshold
                v = np.where(z[t] > 0, node.v_reset, v)
            out[name] = z
            h = z
    return out


def test_exported_graph_follows_nir_equations(tmp_path):
    model = tiny_hybrid.build()
    x = tiny_hybrid.example_inputs(1)
    write_nir(frontend_to_nir(model.frontend, tiny_hybrid.DT_S), tmp_path / "f.nir")
    graph = nir.read(str(tmp_path / "f.nir"))
    expected = euler_nir_chain(graph, x[0].double().numpy(), float(graph.metadata["dt"]))
    with torch.no_grad():
        torch_spikes = model.frontend.double().run(x.double())
    assert [type(graph.nodes[n]).__name__ for n in ("layers.0", "layers.1")] == ["Linear", "CubaLIF"]
    for (name, z_nir), z_torch in zip(expected.items(), torch_spikes):
        assert z_nir.sum() > 10
        assert np.sum(z_nir != z_torch[0].numpy()) == 0, name


def test_plan_records_dt_delays_and_outputs(tmp_path):
    model = tiny_hybrid.build()
    write_nir(frontend_to_nir(model.frontend, 2e-3), tmp_path / "f.nir")
    plan = read_plan(tmp_path / "f.nir")
    assert plan.dt == 2e-3
    assert [n.delay_steps for n in plan.neurons] == [1, 2]
    assert plan.outputs == {"output": "layers.3"}
    lif = plan.neurons[0]
    assert (lif.du, lif.dv) == (0.5, 0.25)
    np.testing.assert_array_equal(plan.synapses[0].weights, model.frontend.layers[0].weight.detach().double().numpy())


def _graph(neuron: nir.NIRNode, extra: dict | None = None, edges_extra: list | None = None, dt=None) -> nir.NIRGraph:
    nodes = {"input": nir.Input(input_type={"input": np.array([2])}), "fc": nir.Linear(weight=np.eye(2)),
             "lif": neuron, "output": nir.Output(output_type={"output": np.array([2])})}
    nodes.update(extra or {})
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "output")] + (edges_extra or [])
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={} if dt is None else {"dt": dt}, type_check=False)


def _lif(v_reset=0.0, tau=1e-3):
    return nir.LIF(tau=np.full(2, tau), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2),
                   v_reset=np.full(2, v_reset))


def test_default_dt_is_stated_and_metadata_wins():
    assert nir_to_plan(_graph(_lif())).dt == DEFAULT_DT_S
    assert nir_to_plan(_graph(_lif()), dt=5e-4).dt == 5e-4
    assert nir_to_plan(_graph(_lif(), dt=2e-4), dt=5e-4).dt == 2e-4


def test_every_offending_node_is_listed_in_one_error():
    extra = {"delay": nir.Delay(delay=np.ones(2)), "thr": nir.Threshold(threshold=np.ones(2)),
             "bad": nir.Linear(weight=np.array([[np.nan, 0.0], [0.0, 1.0]]))}
    with pytest.raises(SpikingPlanError) as err:
        nir_to_plan(_graph(_lif(v_reset=0.5, tau=1e-5), extra, [("lif", "delay"), ("delay", "thr"), ("lif", "bad")]),
                    dt=1e-4)
    problems = err.value.problems
    assert any(p.startswith("delay: Delay cannot run on Loihi") for p in problems)
    assert any(p.startswith("thr: Threshold cannot run on Loihi") and "use IF" in p for p in problems)
    assert any(p.startswith("lif: v_reset != 0") for p in problems)
    assert any("outside [0, 1]" in p for p in problems)
    assert any(p.startswith("bad: weight contains NaN") for p in problems)
    assert "looks like norse 1.1.0's to_nir" in problems[-1] and "fixes=['norse']" in problems[-1]  # tau < dt
    assert len(problems) == 6


def test_an_li_readout_output_is_planned_as_a_voltage_readout():
    li = nir.LI(tau=np.full(2, 1e-3), r=np.ones(2), v_leak=np.zeros(2))
    plan = nir_to_plan(_graph(li), dt=1e-4)
    assert plan.outputs == {"output": "lif"} and plan.readouts == {"lif"}
    assert plan.layer("lif").model == "li" and plan.layer("lif").reset == "none"


def test_an_input_node_of_any_name_and_a_float_only_graph(tmp_path):
    """SpikingJelly names its Input ``input_1``; a graph whose threshold has no Loihi integer still compiles
    for float runs, records why, and a fixed-point run refuses it by name."""
    import nir

    import neurodeploy as nd
    from neurodeploy.errors import QuantizationError

    graph = nir.read(str(CASES / "nir" / "01_lif" / "lif_norse.nir"))
    rename = {"input": "input_1"}
    renamed = nir.NIRGraph(nodes={rename.get(k, k): v for k, v in graph.nodes.items()},
                           edges=[(rename.get(a, a), rename.get(b, b)) for a, b in graph.edges],
                           metadata=graph.metadata, type_check=False)
    nir.write(str(tmp_path / "renamed.nir"), renamed)
    x = np.loadtxt(CASES / "nir" / "01_lif" / "lif_exact.csv", delimiter=",")[:, :1]
    bundle = nd.compile(tmp_path / "renamed.nir", tmp_path / "b")
    spikes = nd.cosimulate(bundle, x, backend="emulator").spikes
    assert np.flatnonzero(next(iter(spikes.values()))[0]).tolist() == [460, 510, 710, 760]  # lif_exact.csv

    tiny = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([2])}),
                               "fc": nir.Linear(weight=np.array([[1e6, 0.0], [0.0, 1e6]])),
                               "lif": nir.IF(r=np.ones(2), v_threshold=np.full(2, 1e-3), v_reset=np.zeros(2)),
                               "output": nir.Output(output_type={"output": np.array([2])})},
                        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")], type_check=False)
    nir.write(str(tmp_path / "tiny.nir"), tiny)
    bundle = nd.compile(tmp_path / "tiny.nir", tmp_path / "t", dt_s=1.0)
    assert "rounds to 0" in bundle.manifest.spiking.quantization_error
    assert nd.cosimulate(bundle, np.ones((5, 2)), backend="emulator").spikes["lif"].sum() > 0  # float runs
    with pytest.raises(QuantizationError, match=r"has no fixed-point form (?s:.)* rounds to 0"):
        nd.cosimulate(bundle, np.ones((5, 2)), mode="fixed", backend="emulator")
