"""PyTorch spiking front-end (``SpikingSequential``) -> NIR graph.

Each ``nn.Linear`` becomes ``nir.Linear`` (or ``nir.Affine`` with a bias); each ``LIFCell`` becomes a
``nir.CubaLIF`` whose forward-Euler discretisation at ``dt`` is exactly the cell's update
(NIR's CubaLIF ODEs by forward Euler): ``tau_syn = dt/du``, ``tau_mem = dt/dv``, ``w_in = 1/du``, ``r = 1/dv``.
An integrate-and-fire cell (dv = 0) has no finite tau_mem and is written as ``nir.IF`` only when
du = 1; otherwise it is rejected. The graph's metadata carries ``dt``.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import nir
import numpy as np
from torch import nn

from neurodeploy.errors import SpikingPlanError
from neurodeploy.models.frontend import SpikingSequential
from neurodeploy.models.neurons import LIFCell


def _per_neuron(value: float, n: int) -> np.ndarray:
    # nir 1.0.8's nir.write fails on 0-d datasets ("Scalar datasets don't support chunk/filter options")
    return np.full(n, value, dtype=np.float64)


def lif_to_nir(cell: LIFCell, dt: float) -> nir.NIRNode:
    """The NIR node whose Euler step at ``dt`` equals ``cell``'s update."""
    n = cell.n
    if cell.dv == 0.0:
        if cell.du != 1.0:
            raise SpikingPlanError(f"LIFCell with dv=0 and du={cell.du} (current-based IF) has no NIR node; "
                                   "use dv > 0 or du = 1")
        return nir.IF(r=_per_neuron(1.0 / dt, n), v_threshold=_per_neuron(cell.vth, n), v_reset=_per_neuron(0.0, n))
    return nir.CubaLIF(
        tau_syn=_per_neuron(dt / cell.du, n), tau_mem=_per_neuron(dt / cell.dv, n),
        r=_per_neuron(1.0 / cell.dv, n), w_in=_per_neuron(1.0 / cell.du, n),
        v_leak=_per_neuron(0.0, n), v_threshold=_per_neuron(cell.vth, n), v_reset=_per_neuron(0.0, n),
    )


def linear_to_nir(layer: nn.Linear) -> nir.NIRNode:
    weight = layer.weight.detach().double().numpy()
    if layer.bias is None:
        return nir.Linear(weight=weight)
    return nir.Affine(weight=weight, bias=layer.bias.detach().double().numpy())


def frontend_to_nir(frontend: SpikingSequential, dt: float) -> nir.NIRGraph:
    """A chain graph ``input -> layers.0 -> ... -> output`` named after the module paths."""
    n_in = frontend.layers[0].in_features
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array([n_in])})}
    edges, previous = [], "input"
    for i, layer in enumerate(frontend.layers):
        name = f"layers.{i}"
        nodes[name] = lif_to_nir(layer, dt) if isinstance(layer, LIFCell) else linear_to_nir(layer)
        edges.append((previous, name))
        previous = name
    nodes["output"] = nir.Output(output_type={"output": np.array([frontend.out_features])})
    edges.append((previous, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": dt, "producer": "neurodeploy"})


def write_nir(graph: nir.NIRGraph, path: Path, compression: str | None = None) -> None:
    """``graph`` as a NIR file (``nir.write``'s format), uncompressed by default: ``nir.write``'s gzip took
    seconds per 4096 x 4096 float64 matrix (random weights compress by a few percent) and is read back on
    every run. The graph's dict is built without copying its arrays (``NIRNode.to_dict`` is
    ``dataclasses.asdict``, which deep-copies every array, twice for a graph's nodes)."""
    nir.write(str(path), _Serialised(graph), compression=compression)


class _Serialised:
    """What ``nir.write`` serialises (it calls ``to_dict`` only): the graph's :func:`_node_dict`."""

    def __init__(self, graph: nir.NIRGraph) -> None:
        self.graph = graph

    def to_dict(self) -> dict:
        return _node_dict(self.graph)


def _node_dict(node: nir.NIRNode) -> dict:
    """``node.to_dict()`` holding the node's own arrays, not copies (a node type with its own ``to_dict``,
    e.g. ``nir.Flatten``, keeps it: it holds no weights)."""
    if not isinstance(node, nir.NIRGraph) and type(node).to_dict is not nir.NIRNode.to_dict:
        return node.to_dict()
    ret = {f.name: getattr(node, f.name) for f in dataclasses.fields(node)
           if f.name not in ("input_type", "output_type")}
    if isinstance(node, nir.NIRGraph):
        ret["nodes"] = {k: _node_dict(n) for k, n in node.nodes.items()}
    ret["type"] = type(node).__name__
    return ret
