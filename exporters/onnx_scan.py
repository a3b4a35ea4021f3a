"""A whole-sequence ONNX model built as an ONNX ``Scan`` over an exported streaming step model.

``y[:, l] = step(window_l, state_l)``: the outer graph reshapes spikes (B, T, N) into windows
(L, B, K, N), creates the zero initial states for the input's batch size, and scans the step graph
over the windows. The sequence length stays dynamic, and the whole-sequence model is by construction
the streaming model iterated, so only one traced graph has to be right.

Used where ``torch.onnx.export`` cannot trace a block's whole-sequence form (the dynamo exporter fails
to decompose ``torch._higher_order_ops.scan`` for the Mamba block behind a reshaping adapter in
torch 2.13); :func:`neurodeploy.exporters.onnx_export.check_parity` still compares it with PyTorch's ``forward``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from neurodeploy.exporters.onnx_export import INPUT_NAME, OUTPUT_NAME


def _const(name: str, value: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value), name))


def build_sequence_model(step_path: Path, backend, out_path: Path) -> None:
    """Write ``out_path``: spikes (B, T, n_in) -> y (B, T // K, n_out) as a Scan over ``step_path``."""
    step = onnx.load(str(step_path))
    body = step.graph
    window_in, *state_in = body.input
    y_out, *state_out = body.output
    body.ClearField("input")
    body.input.extend(state_in + [window_in])
    body.ClearField("output")
    body.output.extend(state_out + [y_out])

    k, n_in = backend.adapter.window, backend.proj.in_features
    one, two = backend.init_state(1), backend.init_state(2)
    nodes = [
        _const("i0", np.array([0])), _const("i1", np.array([1])), _const("i2", np.array([2])),
        _const("k", np.array([k])), _const("n", np.array([n_in])),
        helper.make_node("Shape", [INPUT_NAME], ["shape"]),
        helper.make_node("Slice", ["shape", "i0", "i1"], ["batch"]),
        helper.make_node("Slice", ["shape", "i1", "i2"], ["steps"]),
        helper.make_node("Div", ["steps", "k"], ["tokens"]),
        helper.make_node("Concat", ["batch", "tokens", "k", "n"], ["windowed_shape"], axis=0),
        helper.make_node("Reshape", [INPUT_NAME, "windowed_shape"], ["windowed"]),
        helper.make_node("Transpose", ["windowed"], ["windows"], perm=[1, 0, 2, 3]),
    ]
    initial = []
    for i, (s1, s2) in enumerate(zip(one, two)):
        name = f"init_state_{i}"
        if s1.shape[0] != s2.shape[0]:  # batch-sized: zeros of shape (B, *rest)
            nodes += [_const(f"rest_{i}", np.array(s1.shape[1:], dtype=np.int64)),
                      helper.make_node("Concat", ["batch", f"rest_{i}"], [f"shape_{i}"], axis=0),
                      helper.make_node("ConstantOfShape", [f"shape_{i}"], [name],
                                       value=numpy_helper.from_array(np.zeros(1, s1.numpy().dtype)))]
        else:
            nodes.append(_const(name, s1.numpy()))
        initial.append(name)
    finals = [f"final_state_{i}" for i in range(len(initial))]
    nodes += [helper.make_node("Scan", initial + ["windows"], finals + ["y_stacked"], body=body,
                               num_scan_inputs=1),
              helper.make_node("Transpose", ["y_stacked"], [OUTPUT_NAME], perm=[1, 0, 2])]
    n_out = backend.head.out_features
    graph = helper.make_graph(
        nodes, "sequence_as_scan_of_step",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", "steps", n_in])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", "tokens", n_out])])
    model = helper.make_model(graph, opset_imports=step.opset_import, functions=step.functions)
    model.ir_version = step.ir_version
    onnx.checker.check_model(model)
    onnx.save(model, str(out_path))
