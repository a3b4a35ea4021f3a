"""Fill the input/output types an exporter left empty, so a graph can be planned and written.

sinabs 3.1.3's ``to_nir`` leaves ``Conv2d.input_shape``, the Conv2d and Flatten types as None and writes a
LIF's ``tau`` as a 0-d value (type ``[]``); ``nir.write`` then fails ("One of data, shape or dtype must be
specified") and NIR's own ``NIRGraph.infer_types`` stops at the 0-d LIF ("type mismatch"). Shapes are
propagated here from the Input node instead: a linear node's output shape is that of the node applied to
a zero input (:func:`neurodeploy.spiking.nir_chains.apply_node`), a neuron's is its input's, and
per-neuron parameters given as scalars are broadcast to the population's shape (``nir.write`` cannot store
0-d datasets). The values are not changed.
"""
from __future__ import annotations


import nir
import numpy as np
import torch

from neurodeploy.errors import SpikingPlanError
from neurodeploy.spiking.nir_chains import LINEAR_NODES, apply_node
from neurodeploy.spiking.plan import copy_sharing_arrays

NEURON_PARAMS = ("tau", "tau_mem", "tau_syn", "r", "v_leak", "v_threshold", "v_reset", "w_in")


def has_missing_types(graph: nir.NIRGraph) -> bool:
    """Some node has a None type or shape, a 0-d type, or a Conv without its ``input_shape``."""
    for node in graph.nodes.values():
        for types in (getattr(node, "input_type", None), getattr(node, "output_type", None)):
            if types is None or any(t is None or np.size(t) == 0 for t in types.values()):
                return True
        if isinstance(node, (nir.Conv1d, nir.Conv2d)) and node.input_shape is None:
            return True
    return False


def input_node_shape(node: nir.Input) -> tuple[int, ...]:
    """The shape an Input node delivers (its output type; SpikingJelly keys it "input", NIR "output")."""
    types = getattr(node, "output_type", None) or getattr(node, "input_type", None) or {}
    shape = next((t for t in types.values() if t is not None), None)
    if shape is None:
        raise SpikingPlanError("the Input node has no shape; export the graph with a sample input")
    return tuple(int(d) for d in np.atleast_1d(shape))


def complete_types(graph: nir.NIRGraph) -> nir.NIRGraph:
    """A copy of ``graph`` (its weight arrays shared: nothing here writes into them) with every node's types
    (and a Conv's ``input_shape``) filled from the Input's shape."""
    graph = copy_sharing_arrays(graph, graph.nodes.values())
    inputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(inputs) != 1:
        raise SpikingPlanError(f"expected exactly one Input node to infer the shapes from, found {inputs or 'none'}")
    first = input_node_shape(graph.nodes[inputs[0]])
    in_shapes, out_shapes = {inputs[0]: first}, {inputs[0]: first}
    pending = list(graph.edges)
    while pending:
        ready = [(a, b) for a, b in pending if a in out_shapes]
        if not ready:
            break  # what is left is unreachable from the Input (the design rules name it)
        for src, dst in ready:
            pending.remove((src, dst))
            if dst not in out_shapes:
                in_shapes[dst] = out_shapes[src]
                out_shapes[dst] = _shape_through(graph.nodes[dst], out_shapes[src], dst)
    for name, out_shape in out_shapes.items():
        _set_types(graph.nodes[name], in_shapes[name], out_shape)
    return graph


def _shape_through(node: nir.NIRNode, in_shape: tuple[int, ...], name: str) -> tuple[int, ...]:
    """The output shape of ``node`` fed ``in_shape`` (a Conv's missing ``input_shape`` is set on the way)."""
    if isinstance(node, (nir.Conv1d, nir.Conv2d)) and node.input_shape is None:
        node.input_shape = tuple(in_shape[1:]) if isinstance(node, nir.Conv2d) else int(in_shape[1])
    if not isinstance(node, LINEAR_NODES):
        return in_shape
    try:
        with torch.no_grad():
            return tuple(apply_node(node, torch.zeros((1, *in_shape), dtype=torch.float64)).shape[1:])
    except (RuntimeError, ValueError, TypeError) as exc:
        raise SpikingPlanError(f"{name}: {type(node).__name__} cannot take an input of shape {in_shape} ({exc})",
                               "cannot infer the graph's shapes") from exc


def _set_types(node: nir.NIRNode, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> None:
    """Write the shapes into the node's types; broadcast a neuron's scalar parameters to its shape."""
    node.input_type = {"input": np.array(in_shape)}
    node.output_type = {"output": np.array(out_shape)}
    if isinstance(node, LINEAR_NODES + (nir.Input, nir.Output)):
        return
    for field in NEURON_PARAMS:
        value = getattr(node, field, None)
        if value is not None and not isinstance(value, str):
            arr = value.detach().double().numpy() if isinstance(value, torch.Tensor) else np.asarray(value, np.float64)
            setattr(node, field, np.broadcast_to(arr, out_shape).copy())
