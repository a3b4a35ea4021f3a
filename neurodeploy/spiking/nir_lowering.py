"""NIR graph -> :class:`~neurodeploy.spiking.plan.SpikingPlan` in Lava's discrete-time parameters.

NIR 1.0.8's ODEs (CubaLIF: ``tau_syn dI/dt = -I + w_in S``, ``tau_mem dv/dt = v_leak - v + r I``; LIF
without the synapse; IF: ``dv/dt = r I``; CubaLI / LI: the same without a threshold) are stepped at
``dt`` with one of two :data:`DISCRETISATIONS`, each state's input held for the step:

- ``euler`` (default; what snnTorch, norse and SpikingJelly do): a state moves ``f = dt/tau`` of the way
  to its input each step (``v += dt/tau (v_leak - v + r I)``).
- ``exact`` (zero-order hold; what sinabs does): ``f = 1 - exp(-dt/tau)``, the exact solution of the
  ODE over one step (``v <- e^(-dt/tau) v + (1 - e^(-dt/tau)) (v_leak + r I)``).

Per population, with ``f_syn``/``f_mem`` from the chosen discretisation::

    CubaLIF: du = f_syn, dv = f_mem, input scale = (du*w_in)*(dv*r), bias = dv*v_leak
    LIF:     du = 1,     dv = f_mem, input scale = dv*r,             bias = dv*v_leak
    IF:      du = 1,     dv = 0,     input scale = dt*r              (v += dt*r*I per step, both schemes)
    CubaLI / LI: as CubaLIF / LIF with no threshold (a readout of v, returned as graded values)

The input scale multiplies the rows of the incoming weights; an Affine bias enters the current each
step, so it is exact as a Lava ``bias_mant`` only when du = 1. ``dt`` comes from the graph's metadata,
else the caller, else :data:`DEFAULT_DT_S`. IF is the one node whose meaning depends on dt alone (it has
no time constant): sinabs and snnTorch write ``IF(r=1)`` meaning ``v += I`` per step (dt = 1), SpikingJelly
writes ``r = 1/dt``. A graph with IF nodes, no dt anywhere, and a per-step gain ``dt*r`` other than 1 is
therefore refused with both readings; pass dt to choose.

Every path of linear nodes between two populations becomes one synaptic layer
(:mod:`neurodeploy.spiking.nir_chains`). A path whose source is fed, through other populations, by its own target
is a recurrent synapse. Before anything is built, :func:`check_design_rules` lists every construct
Loihi cannot run (one :class:`SpikingPlanError` naming each node and a way out); known exporter defects
are named there with the fix that corrects them (:mod:`neurodeploy.spiking.nir_fixes`).
"""
from __future__ import annotations

import math

import nir
import numpy as np

from neurodeploy.choices import DISCRETISATIONS
from neurodeploy.errors import SpikingPlanError
from neurodeploy.spiking.nir_chains import LINEAR_NODES, compose
from neurodeploy.spiking.nir_fixes import apply_fixes, defect_hints
from neurodeploy.spiking.nir_types import complete_types, has_missing_types, input_node_shape
from neurodeploy.spiking.plan import RESETS, NeuronLayer, SpikingPlan, SynapseLayer

DEFAULT_DT_S = 1e-4  # the convention of snnTorch, SpikingJelly and the NIR paper
NEURON_NODES = (nir.CubaLIF, nir.LIF, nir.IF, nir.CubaLI, nir.LI)
READOUT_NODES = (nir.CubaLI, nir.LI)
WAY_OUT = {
    "Delay": "Lava's synapses add exactly one step each; remove the Delay or retrain without it",
    "Threshold": "a stateless threshold has no Loihi neuron; use IF with r=1 and v_reset=0",
    "I": "a pure integrator without threshold: use LI with a very long tau",
    "NIRGraph": "flatten nested graphs first (nir.read does this for files)",
}


def _uniform(values, what: str, node: str, problems: list[str]) -> float:
    values = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(values == values[0]):
        problems.append(f"{node}: {what} differs across neurons; Lava shares it per population "
                        "(split the population)")
    return float(values[0])


def _snap_one(x: np.ndarray) -> np.ndarray:
    """(dt/tau)*(tau/dt) is 1 up to rounding: make it exactly 1 so identity mappings stay exact."""
    return np.where(np.abs(x - 1.0) <= 8 * np.finfo(np.float64).eps, 1.0, x)


def reset_mode(node: nir.NIRNode, name: str, problems: list[str]) -> str:
    """The reset after a spike, from the node's metadata (``{"reset": "subtract", "reset_delay": True}``, as
    neurodeploy writes it for snnTorch's subtractive neurons); NIR's own meaning, reset to v_reset, otherwise."""
    meta = getattr(node, "metadata", None) or {}
    mechanism = str(meta.get("reset", "zero"))
    if mechanism == "subtract" and bool(meta.get("reset_delay", False)):
        mechanism = "subtract_delayed"
    if mechanism not in RESETS:
        problems.append(f"{name}: reset {mechanism!r} in the node's metadata; known: {list(RESETS)}")
        return "zero"
    return mechanism


def step_fraction(dt: float, tau, discretisation: str = "euler") -> np.ndarray:
    """Fraction of the way to its input a state moves in one step: ``dt/tau`` (euler) or
    ``1 - exp(-dt/tau)`` (exact, zero-order hold)."""
    ratio = dt / np.asarray(tau, dtype=np.float64)
    if discretisation == "exact":
        return -np.expm1(-ratio)
    return ratio


def neuron_params(node: nir.NIRNode, name: str, dt: float, problems: list[str], discretisation: str = "euler"
                  ) -> tuple[float, float, float, np.ndarray, np.ndarray]:
    """(du, dv, vth, input_scale, bias) of a NIR neuron node in Lava units (arrays flattened)."""
    if isinstance(node, nir.IF):
        vth = _uniform(node.v_threshold, "v_threshold", name, problems)
        return 1.0, 0.0, vth, _snap_one(dt * np.asarray(node.r, dtype=np.float64).ravel()), np.zeros(np.size(node.r))
    if isinstance(node, (nir.CubaLIF, nir.CubaLI)):
        du = _uniform(step_fraction(dt, node.tau_syn, discretisation), "tau_syn", name, problems)
        w_in = np.asarray(getattr(node, "w_in", 1.0), dtype=np.float64).ravel()
        tau_mem = node.tau_mem
    else:
        du, w_in, tau_mem = 1.0, 1.0, node.tau
    dv = _uniform(step_fraction(dt, tau_mem, discretisation), "tau_mem", name, problems)
    for what, value in (("dt/tau_syn", du), ("dt/tau_mem", dv)):
        if not 0.0 <= value <= 1.0:
            problems.append(f"{name}: {what} = {value:g} is outside [0, 1]: the Euler step is unstable at "
                            f"dt={dt:g} s; pass a smaller dt, or discretisation='exact'")
    vth = math.inf if isinstance(node, READOUT_NODES) else _uniform(node.v_threshold, "v_threshold", name, problems)
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


def _undated_if_problems(graph: nir.NIRGraph, dt: float) -> list[str]:
    """One problem naming the IF nodes whose per-step gain dt*r is not 1 at a dt that neither the graph nor
    the caller gave (empty when there are none)."""
    rs = {name: np.asarray(node.r, dtype=np.float64).ravel() for name, node in graph.nodes.items()
          if isinstance(node, nir.IF)}
    odd = {name: float(r[0]) for name, r in rs.items() if r.size and not np.allclose(dt * r, 1.0, rtol=1e-9, atol=0)}
    if not odd:
        return []
    r = next(iter(odd.values()))
    return [f"IF node(s) {', '.join(sorted(odd))} with r={r:g} and no dt in the graph or the call: NIR's dv/dt = r*I "
            f"adds dt*r*I = {dt * r:g}*I per step at the default dt={dt:g} s. sinabs and snnTorch write IF(r=1) "
            f"meaning v += r*I per step: pass dt={1.0 / r:g} (--dt {1.0 / r:g}) for such a graph; pass the dt it "
            "was exported at to run it as NIR defines it"]


def _incoming(graph: nir.NIRGraph) -> dict[str, list[str]]:
    incoming: dict[str, list[str]] = {name: [] for name in graph.nodes}
    for src, dst in graph.edges:
        incoming.setdefault(dst, []).append(src)
    return incoming


def check_design_rules(graph: nir.NIRGraph, dt: float = DEFAULT_DT_S, discretisation: str = "euler") -> None:
    """Raise one SpikingPlanError listing every node Loihi cannot run at ``dt``, with a way out for each
    (and, where the values look like a known exporter defect, the fix that corrects it)."""
    problems: list[str] = []
    if discretisation not in DISCRETISATIONS:
        problems.append(f"discretisation {discretisation!r} is unknown; use one of {list(DISCRETISATIONS)}")
        discretisation = "euler"
    incoming = _incoming(graph)
    for src, dst in graph.edges:
        for end in (src, dst):
            if end not in graph.nodes:
                problems.append(f"edge {src} -> {dst}: no node named {end!r}")
    inputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(inputs) != 1:
        problems.append(f"expected exactly one Input node, found {inputs or 'none'}")
    if not any(isinstance(node, nir.Output) for node in graph.nodes.values()):
        problems.append("the graph has no Output node: nothing leaves the network; add a nir.Output after the "
                        "population whose spikes are the result")
    for name, node in graph.nodes.items():
        kind = type(node).__name__
        if not isinstance(node, NEURON_NODES + LINEAR_NODES + (nir.Input, nir.Output)):
            problems.append(f"{name}: {kind} cannot run on Loihi; {WAY_OUT.get(kind, 'replace it')}")
            continue
        if isinstance(node, NEURON_NODES) and not isinstance(node, READOUT_NODES):
            v_reset = getattr(node, "v_reset", None)
            if v_reset is not None and np.any(np.asarray(v_reset) != 0):
                problems.append(f"{name}: v_reset != 0 (subtractive or offset reset) has no Lava LIF equivalent "
                                "(Lava resets v to 0); retrain with reset to zero")
        sizes = _size_problems(name, node) if isinstance(node, NEURON_NODES + LINEAR_NODES) else []
        problems += sizes
        if isinstance(node, NEURON_NODES) and not sizes:
            neuron_params(node, name, dt, problems, discretisation)
        if isinstance(node, LINEAR_NODES) and len(incoming[name]) != 1:
            problems.append(f"{name}: {kind} has {len(incoming[name])} inputs; a linear node needs exactly one "
                            "(sum the paths at a neuron instead)")
        if isinstance(node, nir.Output) and len(incoming[name]) != 1:
            problems.append(f"{name}: Output has {len(incoming[name])} inputs; it needs exactly one population")
        for attr in ("weight", "bias", "scale", "tau", "tau_mem", "tau_syn", "r", "v_threshold", "v_leak", "w_in"):
            value = getattr(node, attr, None)
            if value is not None and not isinstance(value, str) and not np.all(np.isfinite(np.asarray(value, np.float64))):
                problems.append(f"{name}: {attr} contains NaN or inf")
    if problems:
        raise SpikingPlanError(problems + defect_hints(graph, dt), "the NIR graph breaks Loihi's design rules")


def _size_problems(name: str, node: nir.NIRNode) -> list[str]:
    """An empty layer, or a population whose threshold is not positive (every step would spike, and the
    quantizer scales by it)."""
    arrays = {attr: np.asarray(getattr(node, attr)) for attr in ("weight", "v_threshold", "tau", "tau_mem", "r")
              if getattr(node, attr, None) is not None and not isinstance(getattr(node, attr), str)}
    if any(a.size == 0 for a in arrays.values()):
        return [f"{name}: {type(node).__name__} has no neurons (a dimension of size 0); remove the layer or give "
                "it at least one neuron"]
    threshold = arrays.get("v_threshold")
    if threshold is not None and np.all(np.isfinite(threshold)) and np.any(threshold <= 0):
        return [f"{name}: v_threshold <= 0 ({float(threshold.min()):g}): the neuron would fire on every step and "
                "has no fixed-point scale; use a positive threshold"]
    return []


def _chains(graph: nir.NIRGraph, incoming: dict[str, list[str]], neuron: str, problems: list[str]) -> list[tuple[str, list[str]]]:
    """(spike source, linear node names in order) for every path into ``neuron``."""
    result = []
    for first in incoming[neuron]:
        path, node = [], first
        while isinstance(graph.nodes[node], LINEAR_NODES):
            path.insert(0, node)
            node = incoming[node][0]
        if not isinstance(graph.nodes[node], NEURON_NODES + (nir.Input,)):
            problems.append(f"{neuron}: fed by {node} ({type(graph.nodes[node]).__name__}), which is not a population")
        elif not path:
            problems.append(f"{neuron}: fed directly by {node}; a population needs synapses (a Linear/Affine/Conv) "
                            "in between")
        else:
            result.append((node, path))
    return result


def _order(sources: dict[str, list[str]], input_name: str) -> tuple[list[str], set[tuple[str, str]]]:
    """Populations in depth-first order from the input, and the (source, target) pairs that close a cycle."""
    successors: dict[str, list[str]] = {}
    for target, srcs in sources.items():
        for src in srcs:
            successors.setdefault(src, []).append(target)
    order, back, on_stack, seen = [], set(), set(), set()

    def visit(node: str) -> None:
        seen.add(node)
        on_stack.add(node)
        for nxt in successors.get(node, []):
            if nxt in on_stack:
                back.add((node, nxt))
            elif nxt not in seen:
                visit(nxt)
        on_stack.discard(node)
        order.append(node)

    visit(input_name)
    return [n for n in reversed(order) if n != input_name], back


def nir_to_plan(graph: nir.NIRGraph, dt: float | None = None, discretisation: str = "euler",
                fixes: tuple[str, ...] | list[str] = ()) -> SpikingPlan:
    """Map a NIR graph onto Lava synapses (Dense/Conv) and populations; raise one error listing every problem.

    ``discretisation`` is one of :data:`DISCRETISATIONS`; ``fixes`` names exporter defects to correct
    (:data:`neurodeploy.spiking.nir_fixes.FIXES`), each recorded in the plan's metadata. Types an
    exporter left empty are filled first (:mod:`neurodeploy.spiking.nir_types`).
    """
    dt_s = graph_dt(graph, dt)
    dated = dt is not None or "dt" in (getattr(graph, "metadata", None) or {})
    if has_missing_types(graph):
        graph = complete_types(graph)
    graph, applied = apply_fixes(graph, fixes, dt_s)
    check_design_rules(graph, dt_s, discretisation)
    problems: list[str] = [] if dated else _undated_if_problems(graph, dt_s)
    incoming = _incoming(graph)
    input_name = next(n for n, node in graph.nodes.items() if isinstance(node, nir.Input))
    input_shape = input_node_shape(graph.nodes[input_name])
    neurons = [n for n, node in graph.nodes.items() if isinstance(node, NEURON_NODES)]
    chains = {n: _chains(graph, incoming, n, problems) for n in neurons}
    order, back_edges = _order({n: [src for src, _ in c] for n, c in chains.items()}, input_name)
    for n in neurons:
        if n not in order:
            problems.append(f"{n}: not reachable from the input {input_name}")
    if problems:
        raise SpikingPlanError(problems, "cannot map the NIR graph to Lava")

    shapes: dict[str, tuple[int, ...]] = {input_name: input_shape}
    delays: dict[str, int] = {input_name: 0}
    params = {n: neuron_params(graph.nodes[n], n, dt_s, problems, discretisation) for n in order}
    incoming_syn: dict[str, list[SynapseLayer]] = {n: [] for n in order}
    bias_in: dict[str, np.ndarray] = {n: np.zeros(1) for n in order}
    for recurrent_pass in (False, True):
        for target in order:
            for src, path in chains[target]:
                if ((src, target) in back_edges or src == target) != recurrent_pass:
                    continue
                if src not in shapes or (recurrent_pass and target not in shapes):
                    continue
                syn, bias = _synapse(graph, src, target, path, shapes[src], problems, input_name)
                if syn is None:
                    continue
                syn.recurrent = recurrent_pass
                incoming_syn[target].append(syn)
                bias_in[target] = bias_in[target] + bias.ravel()
            if not recurrent_pass and incoming_syn[target]:
                ff = {delays[input_name if s.source == "input" else s.source] + 1 for s in incoming_syn[target]}
                if len(ff) > 1:
                    problems.append(f"{target}: inputs arrive over paths with different synaptic delays {sorted(ff)}; "
                                    "Loihi's per-layer delay cannot align them (remove the skip connection)")
                shapes[target], delays[target] = incoming_syn[target][0].out_shape, max(ff)
    layers: list[SynapseLayer | NeuronLayer] = []
    for target in order:
        if target not in shapes:
            continue
        du, dv, vth, scale, leak = params[target]
        shape, syns = shapes[target], incoming_syn[target]
        _apply_input_scale(syns, scale, shape, target, problems)
        layers.extend(s for s in syns if not s.recurrent)
        bias_syn = _bias_synapse(target, shape, du, scale, leak, bias_in[target], delays[target], problems)
        if bias_syn is not None:
            layers.append(bias_syn)
        layers.append(NeuronLayer(name=target, shape=shape, du=du, dv=dv, vth=vth, bias=np.zeros(shape),
                                  delay_steps=delays[target], model="li" if math.isinf(vth) else "lif",
                                  reset="none" if math.isinf(vth) else reset_mode(graph.nodes[target], target, problems)))
        layers.extend(s for s in syns if s.recurrent)
    outputs = {}
    for name, node in graph.nodes.items():
        if isinstance(node, nir.Output):
            src = incoming[name][0]
            if src not in shapes or src == input_name:
                problems.append(f"{name}: fed by {src}; an Output must read a population's spikes")
            else:
                outputs[name] = src
    if problems:
        raise SpikingPlanError(problems, "cannot map the NIR graph to Lava")
    return SpikingPlan(input_shape=input_shape, layers=layers, outputs=outputs, dt=dt_s, input_name=input_name,
                       metadata={"discretisation": discretisation, "exporter_fixes": applied})


def _synapse(graph: nir.NIRGraph, src: str, target: str, path: list[str], in_shape: tuple[int, ...],
             problems: list[str], input_name: str = "input") -> tuple[SynapseLayer | None, np.ndarray]:
    """The synapse of ``path``; a source that is the graph's Input node (whatever its name, e.g.
    SpikingJelly's ``input_1``) is the plan's ``"input"``."""
    try:
        composed = compose([graph.nodes[n] for n in path], in_shape)
    except (ValueError, RuntimeError) as exc:
        problems.append(f"{' -> '.join(path)}: {exc}")
        return None, np.zeros(1)
    source = "input" if src == input_name else src
    syn = SynapseLayer(name=path[-1] if len(path) == 1 else "+".join(path), source=source, target=target,
                       weights=composed.weights, kind=composed.kind, in_shape=in_shape, out_shape=composed.out_shape,
                       stride=composed.stride, padding=composed.padding, dilation=composed.dilation,
                       groups=composed.groups)
    return syn, composed.bias


def _bias_synapse(target: str, shape: tuple[int, ...], du: float, scale: np.ndarray, leak: np.ndarray,
                  bias_in: np.ndarray, delay_steps: int, problems: list[str]) -> SynapseLayer | None:
    """Constant input as a synapse from an always-on line that starts when the population's input does.

    A Lava ``bias_mant`` acts from the first step, ``delay_steps`` before the population's first input
    arrives; an always-on line switched on at step ``delay_steps - 1`` reproduces the float simulation exactly.
    With du = 1 the current is the voltage input, so a leak bias (dv*v_leak) joins it; with du < 1 a
    bias on v cannot pass through the current filter.
    """
    n = int(np.prod(shape))
    current = np.broadcast_to(scale, (n,)) * np.broadcast_to(bias_in, (n,))
    leak = np.broadcast_to(leak, (n,))
    if du != 1.0 and np.any(leak != 0):
        problems.append(f"{target}: v_leak != 0 on a current-based population (du={du:g}) has no exact Lava form; "
                        "retrain with v_leak = 0 or tau_syn = dt")
    total = current + (leak if du == 1.0 else 0.0)
    if not np.any(total != 0):
        return None
    return SynapseLayer(name=f"{target}.bias", source="bias", target=target, weights=total.reshape(n, 1),
                        in_shape=(1,), out_shape=shape, start_step=max(delay_steps - 1, 0))


def _apply_input_scale(synapses: list[SynapseLayer], scale: np.ndarray, shape: tuple[int, ...], target: str,
                       problems: list[str]) -> None:
    """Multiply each target neuron's incoming weights by its Euler input scale."""
    scale = np.broadcast_to(scale, (int(np.prod(shape)),))
    for syn in synapses:
        if syn.out_shape != shape:
            problems.append(f"{syn.name}: delivers shape {syn.out_shape} to {target} of shape {shape}")
        elif syn.kind == "dense" and syn.source != "bias":
            syn.weights = syn.weights * scale[:, None]
        else:
            per_channel = scale.reshape(shape[0], -1)
            if not np.all(per_channel == per_channel[:, :1]):
                problems.append(f"{target}: r/w_in/tau differ within a channel behind the conv {syn.name}; a conv "
                                "kernel is shared across positions")
            else:
                syn.weights = syn.weights * per_channel[:, 0].reshape(-1, 1, 1, 1)
