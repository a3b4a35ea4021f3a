"""NIR graph -> :class:`~neurodeploy.spiking_plan.SpikingPlan` in Lava's discrete-time parameters.

Forward-Euler mapping at ``dt`` (REFERENCE.md section 3), per population::

    CubaLIF: du = dt/tau_syn, dv = dt/tau_mem, input scale = (du*w_in)*(dv*r), bias = dv*v_leak
    LIF:     du = 1,          dv = dt/tau,     input scale = dv*r,            bias = dv*v_leak
    IF:      du = 1,          dv = 0,          input scale = r                (v += r*I per step)

The input scale multiplies the rows of the incoming weight matrix; an Affine bias enters the current
each step, so it is exact as a Lava ``bias_mant`` only when du = 1. ``dt`` comes from the graph's
metadata, else the caller, else :data:`DEFAULT_DT_S`.

This first version takes chains and trees of Input, Linear/Affine, LIF/CubaLIF/IF and Output nodes;
every other construct is rejected by name (no silent approximation).
"""
from __future__ import annotations

import math
from pathlib import Path

import nir
import numpy as np

from neurodeploy.spiking_plan import NeuronLayer, SpikingPlan, SpikingPlanError, SynapseLayer

DEFAULT_DT_S = 1e-4  # the convention of snnTorch, SpikingJelly and the NIR paper
SYNAPSE_NODES = (nir.Linear, nir.Affine)
NEURON_NODES = (nir.CubaLIF, nir.LIF, nir.IF)


def _uniform(values: np.ndarray, what: str, node: str, problems: list[str]) -> float:
    values = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(values == values[0]):
        problems.append(f"{node}: {what} differs across neurons; Lava shares it per population "
                        "(split the population)")
    return float(values[0])


def _snap_one(x: np.ndarray) -> np.ndarray:
    """(dt/tau)*(tau/dt) is 1 up to rounding: make it exactly 1 so identity mappings stay exact."""
    return np.where(np.abs(x - 1.0) <= 8 * np.finfo(np.float64).eps, 1.0, x)


def neuron_params(node: nir.NIRNode, name: str, dt: float, problems: list[str]) -> tuple[float, float, float, np.ndarray, np.ndarray]:
    """(du, dv, vth, input_scale, bias) of a NIR neuron node in Lava units."""
    v_reset = np.asarray(getattr(node, "v_reset", 0.0) if getattr(node, "v_reset", None) is not None else 0.0)
    if np.any(v_reset != 0):
        problems.append(f"{name}: v_reset != 0 has no Lava LIF equivalent (Lava resets to 0); retrain with reset to 0")
    vth = _uniform(node.v_threshold, "v_threshold", name, problems)
    if isinstance(node, nir.IF):
        return 1.0, 0.0, vth, np.asarray(node.r, dtype=np.float64).ravel(), np.zeros(np.size(node.r))
    if isinstance(node, nir.CubaLIF):
        du = _uniform(dt / np.asarray(node.tau_syn, dtype=np.float64), "tau_syn", name, problems)
        w_in = np.asarray(node.w_in, dtype=np.float64).ravel()
        tau_mem = node.tau_mem
    else:
        du, w_in, tau_mem = 1.0, 1.0, node.tau
    dv = _uniform(dt / np.asarray(tau_mem, dtype=np.float64), "tau_mem", name, problems)
    for what, value in (("dt/tau_syn", du), ("dt/tau_mem", dv)):
        if not 0.0 <= value <= 1.0:
            problems.append(f"{name}: {what} = {value:g} is outside [0, 1]: the Euler step is unstable at "
                            f"dt={dt:g} s; pass a smaller dt")
    r = np.asarray(node.r, dtype=np.float64).ravel()
    scale = _snap_one((du * w_in) * (dv * r))
    bias = dv * np.asarray(node.v_leak, dtype=np.float64).ravel()
    return du, dv, vth, scale, bias


def graph_dt(graph: nir.NIRGraph, dt: float | None = None) -> float:
    """dt in seconds: the graph's metadata, else the argument, else DEFAULT_DT_S."""
    meta = getattr(graph, "metadata", None) or {}
    value = meta.get("dt", dt if dt is not None else DEFAULT_DT_S)
    value = float(np.asarray(value))
    if not (math.isfinite(value) and value > 0):
        raise SpikingPlanError(f"dt must be a positive number of seconds, got {value}")
    return value


def _incoming(graph: nir.NIRGraph) -> dict[str, list[str]]:
    incoming: dict[str, list[str]] = {name: [] for name in graph.nodes}
    for src, dst in graph.edges:
        incoming[dst].append(src)
    return incoming


def _topological(graph: nir.NIRGraph) -> list[str]:
    incoming, order, done = _incoming(graph), [], set()
    pending = list(graph.nodes)
    while pending:
        ready = [n for n in pending if all(s in done for s in incoming[n])]
        if not ready:
            raise SpikingPlanError(f"the graph has a cycle through {sorted(pending)}; recurrent edges "
                                   "are not supported by this importer yet")
        for n in ready:
            order.append(n)
            done.add(n)
            pending.remove(n)
    return order


def nir_to_plan(graph: nir.NIRGraph, dt: float | None = None) -> SpikingPlan:
    """Map a NIR graph onto Lava Dense + LIF layers; raise one error listing every problem."""
    dt_s = graph_dt(graph, dt)
    problems: list[str] = []
    incoming = _incoming(graph)
    inputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(inputs) != 1:
        problems.append(f"expected exactly one Input node, found {inputs or 'none'}")
    for name, node in graph.nodes.items():
        if not isinstance(node, SYNAPSE_NODES + NEURON_NODES + (nir.Input, nir.Output)):
            problems.append(f"{name}: {type(node).__name__} is not supported yet")
        elif not isinstance(node, nir.Input) and len(incoming[name]) != 1:
            problems.append(f"{name}: {len(incoming[name])} incoming edges; exactly one is supported")
    if problems:
        raise SpikingPlanError("cannot map the NIR graph to Lava:\n  - " + "\n  - ".join(problems))

    layers: list[SynapseLayer | NeuronLayer] = []
    synapse_delay: dict[str, int] = {}
    neuron_delay: dict[str, int] = {inputs[0]: 0}
    outputs: dict[str, str] = {}
    pending_synapse: dict[str, SynapseLayer] = {}
    biases: dict[str, np.ndarray] = {}
    for name in _topological(graph):
        node, srcs = graph.nodes[name], incoming[name]
        if isinstance(node, SYNAPSE_NODES):
            src = srcs[0]
            if src not in neuron_delay:
                problems.append(f"{name}: fed by {src} ({type(graph.nodes[src]).__name__}); a synaptic layer "
                                "must be fed by the Input or a neuron population")
                continue
            weight = np.asarray(node.weight, dtype=np.float64)
            if weight.ndim != 2:
                problems.append(f"{name}: weight of shape {weight.shape} is not a matrix")
                continue
            pending_synapse[name] = SynapseLayer(name=name, weights=weight.copy(),
                                                 source="input" if src == inputs[0] else src)
            biases[name] = np.asarray(getattr(node, "bias", np.zeros(weight.shape[0])), dtype=np.float64)
            synapse_delay[name] = neuron_delay[src] + 1
        elif isinstance(node, NEURON_NODES):
            src = srcs[0]
            if src not in pending_synapse:
                problems.append(f"{name}: fed by {src}; a neuron population must be fed by a Linear/Affine node")
                continue
            syn = pending_synapse[src]
            du, dv, vth, scale, leak_bias = neuron_params(node, name, dt_s, problems)
            if np.any(biases[src] != 0) and du != 1.0:
                problems.append(f"{src}: a bias into the current-based population {name} (du={du:g}) is not "
                                "expressible as Lava bias_mant; use a Linear node or tau_syn = dt")
            syn.weights = syn.weights * scale[:, None]
            layers.append(syn)
            layers.append(NeuronLayer(name=name, n=syn.weights.shape[0], du=du, dv=dv, vth=vth,
                                      bias=leak_bias + scale * biases[src], source=src,
                                      delay_steps=synapse_delay[src]))
            neuron_delay[name] = synapse_delay[src]
        elif isinstance(node, nir.Output):
            src = srcs[0]
            if src not in neuron_delay or src == inputs[0]:
                problems.append(f"{name}: fed by {src}; an Output must be fed by a neuron population")
                continue
            outputs[name] = src
    if problems:
        raise SpikingPlanError("cannot map the NIR graph to Lava:\n  - " + "\n  - ".join(problems))
    n_in = int(np.prod(graph.nodes[inputs[0]].output_type["output"]))
    return SpikingPlan(n_in=n_in, layers=layers, outputs=outputs, dt=dt_s, input_name=inputs[0])


def read_plan(path: Path, dt: float | None = None) -> SpikingPlan:
    return nir_to_plan(nir.read(str(path)), dt)
