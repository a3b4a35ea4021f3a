"""Synaptic operations of the dense part on the GPU, counted as NeuroBench 2.3.0's ``SynapticOperations`` counts.

NeuroBench hooks every connection layer of a model (``nn.Linear``, ``nn.Conv1d/2d/3d``) and, at each call,
with ``x`` the layer's input and ``W`` its weights (its bias left out)::

    spiking   = every value of x is -1, 0 or 1
    effective = sum over outputs of #{(i, j): x_i != 0 and W_ji != 0}      (its binary copy of the layer)
    dense     = the same with every x_i and W_ji taken as nonzero
    Effective_ACs += effective if spiking, Effective_MACs += effective otherwise, Dense += dense

each divided by the number of samples. The spiking neurons that run on the GPU (populations after the
cut, or the ones inside a spiking transformer's attention) feed such layers with spikes: their operations
are ACs, as they would be on a neuromorphic chip, while the MAC count of :mod:`neurodeploy.cost.macs` prices
every multiply the GPU does.

Here the layers are the dense ONNX graph's ``Gemm``, ``MatMul`` and ``Conv`` nodes whose weight is a
constant: an exported ``nn.Linear`` or ``nn.Conv`` is one such node per call (a loop over T, unrolled, gives
one per step, as NeuroBench sees one call per step). Their inputs are read by running the graph on the
run's cut spikes with every value exposed (:func:`neurodeploy.cost.macs.measured_values`), :data:`CHUNK`
samples at a time (NeuroBench's classification is per call, over the batch it is given: this is NeuroBench
with a batch of :data:`CHUNK`). A product of two activations (``Q K^T``) is not a connection layer, for
NeuroBench as here. Nodes inside a ``Scan``, ``Loop`` or ``If`` body are not seen: ``layers_not_seen``
counts the graph's nodes that hold such a body.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import helper

CHUNK = 16
"""Samples per ONNX Runtime run (the batch NeuroBench would be given): every value of the graph is kept for
them, so this bounds the memory (a 2,000-node graph of 16 x 32 x 2,048 floats per value: about 1 GB)."""
CONNECTIONS = ("Gemm", "MatMul", "Conv")


@dataclass
class GpuSops:
    effective_acs: float  # per sample: NeuroBench's Effective_ACs (layers fed spikes)
    effective_macs: float  # per sample: NeuroBench's Effective_MACs (layers fed other values)
    dense: float  # per sample: NeuroBench's Dense
    layers: int  # connection-layer calls counted (ONNX nodes)
    layers_not_seen: int  # Scan, Loop and If nodes, whose bodies are not counted

    def as_dict(self) -> dict:
        return asdict(self) | {"unit": "per sample, NeuroBench SynapticOperations over the dense part's Linear "
                                       "and Conv calls (ACs: inputs all -1/0/1)"}


def _attributes(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _pairs(node: onnx.NodeProto, x: np.ndarray, w: np.ndarray) -> float:
    """Input x weight pairs of ``node`` with both nonzero, summed over its outputs (x, w binary 0/1)."""
    if node.op_type == "Gemm":
        a = _attributes(node)
        x = x.T if a.get("transA", 0) else x
        w_in_out = w.T if a.get("transB", 0) else w
        return float((x @ w_in_out.sum(1)).sum())
    if node.op_type == "MatMul":
        return float((x @ w.sum(-1)).sum())
    a = _attributes(node)
    dims = w.ndim - 2
    pads = list(a.get("pads", [0] * 2 * dims))
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[dims]
    xt, wt = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(w, dtype=torch.float64)
    if pads[:dims] != pads[dims:]:  # asymmetric padding: pad first
        xt = F.pad(xt, [p for d in reversed(range(dims)) for p in (pads[d], pads[d + dims])])
        pads = [0] * 2 * dims
    return float(conv(xt, wt, None, a.get("strides", 1), tuple(pads[:dims]), a.get("dilations", 1),
                      a.get("group", 1)).sum())


def _layers(graph: onnx.GraphProto, values: dict[str, np.ndarray]) -> list[onnx.NodeProto]:
    """The connection layers: Gemm/MatMul nodes with a constant 2-D weight, Conv nodes with a constant kernel."""
    constant = {i.name for i in graph.initializer}
    constant |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    return [n for n in graph.node if n.op_type in CONNECTIONS and len(n.input) > 1 and n.input[1] in constant
            and (n.op_type == "Conv" or values[n.input[1]].ndim == 2)]


def gpu_synaptic_ops(dense_path: str | Path, input_name: str, cut: np.ndarray) -> GpuSops:
    """NeuroBench's synaptic operations of the dense ONNX model at ``dense_path`` on ``cut`` (its input:
    the run's cut spikes, (B, T, ...) as the model takes them), per sample."""
    from neurodeploy.cost.macs import measured_values

    model = onnx.load(str(dense_path))
    acs = macs = dense = 0.0
    layers: list[onnx.NodeProto] = []
    for start in range(0, len(cut), CHUNK):
        chunk = {input_name: np.asarray(cut[start: start + CHUNK], np.float32)}
        values = measured_values(model.graph, model.opset_import, chunk)
        layers = _layers(model.graph, values)
        for node in layers:
            x, w = values[node.input[0]], values[node.input[1]] != 0
            effective = _pairs(node, (x != 0).astype(np.float64), w.astype(np.float64))
            dense += _pairs(node, np.ones(x.shape), np.ones(w.shape))
            if np.all((x == 0) | (x == 1) | (x == -1)):
                acs += effective
            else:
                macs += effective
    not_seen = sum(n.op_type in ("Scan", "Loop", "If") for n in model.graph.node)
    return GpuSops(acs / len(cut), macs / len(cut), dense / len(cut), len(layers), not_seen)
