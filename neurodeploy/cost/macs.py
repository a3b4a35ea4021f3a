"""MACs and FLOPs of an ONNX model, per operator type, from the graph and inferred shapes.

Shapes are measured: the graph runs once in ONNX Runtime on zeros of a concrete input size (e.g. batch
1, T steps) with every intermediate value exposed; a Scan body runs the same way as its own model, on
zeros of its per-iteration shapes.
Counting rules (``n`` = elements of the node's output):

    MatMul (..., M, K) x (..., K, N)      MACs = n * K                FLOPs = 2 MACs
    Gemm                                 MACs = M * N * K            FLOPs = 2 MACs
    Conv                                 MACs = n * C_in/groups * prod(kernel)
    Einsum                               MACs = product of every index size (when an index is summed)
    Softmax                              FLOPs = 5 n   (max, subtract, exp, sum, divide)
    LayerNormalization                   FLOPs = 8 n   (mean, subtract, square, mean, add eps, sqrt, divide, affine)
    Reduce*                              FLOPs = elements of the input
    elementwise math (Add, Mul, Exp, ...) FLOPs = n
    Scan / Loop                          the body's counts times the number of iterations
    GRU / LSTM / RNN (X: steps x batch x I; W: dirs x G*H x I; R: dirs x G*H x H; G = 3, 4, 1)
                                         MACs = steps * batch * (|W| + |R|)   (every gate's input and
                                         recurrent products, each direction)
                                         FLOPs besides = steps * batch * dirs * H * (13, 17, 3): the gates'
                                         bias adds, activations and products (GRU: 6 bias adds, 3
                                         activations, 4 products and sums; LSTM: 8 bias adds, 5 activations,
                                         4 products and sums; RNN: 2 bias adds, 1 activation)
    data movement (Reshape, Transpose, Gather, Concat, Slice, Shape, ...)   0

These include what NeuroBench omits (attention products, softmax, norms, scans). Unknown shapes are
reported, not guessed.
"""
from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Neg", "Abs", "Relu", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Pow",
               "Erf", "Softplus", "Greater", "Less", "Equal", "Where", "Max", "Min", "Reciprocal", "Gelu", "Sin",
               "Cos", "HardSigmoid", "LeakyRelu", "Clip", "Not", "And", "Or", "Mod", "Floor", "Ceil", "Round",
               "Sign", "CumSum", "IsInf", "IsNaN"}
PER_ELEMENT = {"Softmax": 5, "LogSoftmax": 5, "LayerNormalization": 8, "SimplifiedLayerNormalization": 6}
RECURRENT = {"GRU": 13, "LSTM": 17, "RNN": 3}  # element-wise FLOPs per hidden unit, step and direction


@dataclass
class OpCount:
    count: int = 0
    macs: float = 0.0
    flops: float = 0.0


@dataclass
class MacReport:
    per_op: dict[str, OpCount] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)  # nodes whose shapes could not be inferred
    kernels: float = 0.0  # node executions (Scan bodies times their iterations): kernel launches on a GPU
    activation_bytes: float = 0.0  # float32 bytes written by every node execution
    weight_bytes: float = 0.0  # float32 bytes of the initializers (read once per run)

    @property
    def macs(self) -> float:
        return sum(c.macs for c in self.per_op.values())

    @property
    def flops(self) -> float:
        return sum(c.flops for c in self.per_op.values())

    def as_dict(self) -> dict:
        return {"macs": self.macs, "flops": self.flops, "unknown_shapes": self.unknown,
                "kernels": self.kernels, "activation_bytes": self.activation_bytes, "weight_bytes": self.weight_bytes,
                "per_op": {k: vars(v) for k, v in sorted(self.per_op.items())}}


def _einsum_macs(equation: str, shapes: list[tuple]) -> float | None:
    lhs, _, rhs = equation.replace(" ", "").partition("->")
    sizes = {}
    for term, shape in zip(lhs.split(","), shapes):
        letters = [c for c in term if c in string.ascii_letters]
        if "..." in term or len(letters) != len(shape):
            return None
        sizes.update(zip(letters, shape))
    if not (set(sizes) - set(rhs)):
        return None  # no summed index: elementwise
    return float(np.prod(list(sizes.values())))


def _count_graph(graph: onnx.GraphProto, opset, inputs: dict[str, np.ndarray], report: MacReport,
                 times: float) -> None:
    """Add ``graph``'s work, run ``times`` times, to ``report``: each node's kernels, bytes written, MACs
    and FLOPs from the shapes measured on ``inputs``; Scan and Loop bodies counted per iteration."""
    values = measured_values(graph, opset, inputs)
    shapes = {k: tuple(np.shape(v)) for k, v in values.items()}
    report.weight_bytes += 4.0 * sum(float(np.prod(init.dims)) for init in graph.initializer)  # once per graph
    for node in graph.node:
        if node.op_type not in ("Constant", "Shape") and node.output and shapes.get(node.output[0]) is not None:
            report.kernels += times
            report.activation_bytes += times * 4.0 * float(np.prod(shapes[node.output[0]]))
        in_shapes = [shapes.get(name) for name in node.input]
        entry = report.per_op.setdefault(node.op_type, OpCount())
        entry.count += 1
        if node.op_type in ("Scan", "Loop"):
            _count_body(node, opset, values, in_shapes, report, times)
            continue
        work = _node_work(node, shapes.get(node.output[0]) if node.output else None, in_shapes)
        if work is None:
            report.unknown.append(f"{node.name or node.op_type} ({node.op_type})")
            continue
        macs, flops = work
        entry.macs += times * macs
        entry.flops += times * (flops + 2 * macs)


def _count_body(node: onnx.NodeProto, opset, values: dict[str, np.ndarray], in_shapes: list, report: MacReport,
                times: float) -> None:
    """A Scan's (or Loop's) body, counted once per iteration on zeros of its inputs' shapes."""
    body = next(a.g for a in node.attribute if a.name == "body")
    iterations = _iterations(node, in_shapes)
    if iterations is None:
        report.unknown.append(f"{node.name or node.op_type}: iteration count")
        return
    body_inputs = {name: np.zeros(shape, dtype=np.float32) for name, shape in
                   _scan_body_shapes(node, body, in_shapes).items()}
    for vi in body.input:
        if vi.name in body_inputs:
            body_inputs[vi.name] = body_inputs[vi.name].astype(
                onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type))
    body_inputs.update({name: values[name] for name in _free_names(body) if name in values})
    _count_graph(body, opset, body_inputs, report, times * iterations)


def _node_work(node: onnx.NodeProto, out_shape: tuple | None, in_shapes: list) -> tuple[float, float] | None:
    """(MACs, FLOPs besides the MACs) of one node; None where a shape it needs is unknown."""
    op = node.op_type
    if op in RECURRENT:
        return _recurrent_work(op, in_shapes)
    if not (op in ("MatMul", "Gemm", "Conv", "Einsum") or op in PER_ELEMENT or op in ELEMENTWISE
            or op.startswith("Reduce")):
        return 0.0, 0.0
    if out_shape is None or any(s is None for s in in_shapes[:2] if op in ("MatMul", "Gemm", "Conv")):
        return None
    n = float(np.prod(out_shape))
    if op == "MatMul":
        return n * in_shapes[0][-1], 0.0
    if op == "Gemm":
        trans_a = next((a.i for a in node.attribute if a.name == "transA"), 0)
        return n * (in_shapes[0][0] if trans_a else in_shapes[0][-1]), 0.0
    if op == "Conv":
        return n * float(np.prod(in_shapes[1][1:])), 0.0
    if op == "Einsum":
        eq = next(a.s.decode() for a in node.attribute if a.name == "equation")
        m = _einsum_macs(eq, in_shapes) if all(s is not None for s in in_shapes) else None
        return (0.0, n) if m is None else (m, 0.0)
    if op in PER_ELEMENT:
        return 0.0, PER_ELEMENT[op] * n
    if op.startswith("Reduce"):
        return 0.0, float(np.prod(in_shapes[0])) if in_shapes[0] is not None else n
    return 0.0, n


def _recurrent_work(op: str, in_shapes: list) -> tuple[float, float] | None:
    """(MACs, FLOPs besides) of an ONNX GRU, LSTM or RNN node from its X, W and R shapes (the module
    docstring's rule; ``layout`` 0 or 1 alike: steps x batch is the product of X's first two sizes)."""
    x, w, r = (in_shapes + [None] * 3)[:3]
    if x is None or w is None or r is None:
        return None
    rows = float(np.prod(x[:2]))  # steps x batch
    directions, hidden = w[0], r[-1]
    return rows * (float(np.prod(w)) + float(np.prod(r))), rows * directions * hidden * RECURRENT[op]


def _iterations(node: onnx.NodeProto, in_shapes: list) -> int | None:
    if node.op_type == "Scan":
        n_scan = next(a.i for a in node.attribute if a.name == "num_scan_inputs")
        first_scan = in_shapes[len(in_shapes) - n_scan]
        return None if first_scan is None else int(first_scan[0])
    return None


def _scan_body_shapes(node: onnx.NodeProto, body: onnx.GraphProto, in_shapes: list) -> dict[str, tuple]:
    n_scan = next(a.i for a in node.attribute if a.name == "num_scan_inputs")
    n_state = len(in_shapes) - n_scan
    known = {}
    for i, vi in enumerate(body.input):
        shape = in_shapes[i]
        if shape is not None:
            known[vi.name] = shape if i < n_state else shape[1:]
    return known


def measured_values(graph: onnx.GraphProto, opset, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run ``graph`` on ``inputs`` with every node output exposed; every value (initializers included).

    A subgraph may read names of the graph around it: pass those values in ``inputs`` too."""
    import onnxruntime as ort

    names = [o for node in graph.node for o in node.output if o]
    g = onnx.GraphProto()
    g.CopyFrom(graph)
    g.ClearField("output")
    g.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names)
    g.ClearField("input")
    g.input.extend(onnx.helper.make_tensor_value_info(k, onnx.helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
                   for k, v in inputs.items())
    model = onnx.helper.make_model(g, opset_imports=opset)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    values = dict(inputs)
    values.update(zip(names, session.run(names, inputs)))
    values.update({init.name: onnx.numpy_helper.to_array(init) for init in graph.initializer})
    return values


def _free_names(graph: onnx.GraphProto) -> set[str]:
    """Names a (sub)graph reads but does not define: values from the enclosing scope."""
    defined = {i.name for i in graph.input} | {i.name for i in graph.initializer}
    defined |= {o for n in graph.node for o in n.output}
    used = {i for n in graph.node for i in n.input if i}
    for n in graph.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                used |= _free_names(a.g)
    return used - defined


def count_macs(path: Path, input_shapes: dict[str, tuple[int, ...]]) -> MacReport:
    """Count ``path`` run on inputs of ``input_shapes`` (e.g. ``{"spikes": (1, 256, 128)}``)."""
    model = onnx.load(str(path))
    report = MacReport()
    dtypes = {vi.name: onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type) for vi in model.graph.input}
    inputs = {k: np.zeros(v, dtype=dtypes.get(k, np.float32)) for k, v in input_shapes.items()}
    _count_graph(model.graph, model.opset_import, inputs, report, 1.0)
    return report


def count_steps(path: Path, window_shape: tuple[int, ...], windows: int) -> MacReport:
    """A step model (window and states in, output and states out) run ``windows`` times for one sample: the
    window ``(1, *window_shape)``, each state at its batch of 1; every count times ``windows`` (the weights
    once). A state that grows as it steps (a KV cache: a dynamic dimension not named ``batch``) holds
    ``l * K`` tokens at window l, so each window is counted at its own size."""
    model = onnx.load(str(path))
    grows = any(d.dim_param and d.dim_param != "batch" for vi in model.graph.input[1:]
                for d in vi.type.tensor_type.shape.dim)
    report = MacReport()
    for w in range(windows) if grows else [0]:
        inputs = {}
        for i, vi in enumerate(model.graph.input):
            tt = vi.type.tensor_type
            shape = (1, *window_shape) if i == 0 else tuple(
                (1 if d.dim_param == "batch" else w * window_shape[0]) if d.dim_param else d.dim_value
                for d in tt.shape.dim)
            inputs[vi.name] = np.zeros(shape, dtype=onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type))
        weights = report.weight_bytes
        _count_graph(model.graph, model.opset_import, inputs, report, 1.0 if grows else float(windows))
        report.weight_bytes = report.weight_bytes if not weights else weights  # read once
    return report


def summed(reports: list[MacReport], weights: list[float] | None = None) -> MacReport:
    """The work of several graphs run one after another (each's weights read once); with ``weights``, the
    sum of each report times its weight (an average over samples that ran different graphs)."""
    total = MacReport()
    for r, w in zip(reports, weights or [1.0] * len(reports)):
        for op, c in r.per_op.items():
            entry = total.per_op.setdefault(op, OpCount())
            entry.count, entry.macs, entry.flops = entry.count + w * c.count, entry.macs + w * c.macs, entry.flops + w * c.flops
        total.unknown += r.unknown
        total.kernels += w * r.kernels
        total.activation_bytes += w * r.activation_bytes
        total.weight_bytes += w * r.weight_bytes
    return total
