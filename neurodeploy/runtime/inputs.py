"""The inputs of a co-simulation in the bundle's layout: (B, T, *input_shape) float64, checked.

``--input`` is time-major: (T, ...) for one sample or (B, T, ...) for a batch; a conv front-end's
samples may also come flattened, (B, T, n_in). T must be a multiple of the adapter window K, or
exactly the compiled T where the dense part is the user's own loop over T. A bundle compiled from a model
that takes ``(T, B, ...)`` (its ``input_layout`` is ``"TB"``) takes its batches the same way at the API and
the CLI (:func:`from_model_layout`); the runtime works in ``(B, T, ...)``.
"""
from __future__ import annotations

import numpy as np

from neurodeploy.bundle import Bundle, Manifest
from neurodeploy.errors import InputShapeError


def bundle_inputs(bundle: Bundle, inputs: np.ndarray | None) -> np.ndarray:
    """``inputs`` normalised (:func:`normalize_inputs`), by default the bundle's reference inputs."""
    m = bundle.manifest
    if inputs is None and m.reference is None:
        raise InputShapeError(f"bundle '{m.name}' has no reference inputs; pass inputs (--input FILE.npy), "
                              f"time-major (T, {', '.join(map(str, m.sample_shape))})")
    return normalize_inputs(bundle.reference_inputs() if inputs is None else inputs, bundle)


def from_model_layout(x, m: Manifest):
    """A batch in the layout the bundle's model takes -> the bundle's (B, T, ...): ``(T, B, ...)`` transposed
    for a time-major model, a ``(B, T, ...)`` batch refused for it (unless T = B); others as they are."""
    if x is None or m.input_layout != "TB":
        return x
    x = np.asarray(x)
    if x.ndim < 3 or x.shape[1:] in (m.sample_shape, (m.sample_size,)):
        return x  # one sample (T, ...)
    if x.shape[0] != m.num_steps and x.shape[1] == m.num_steps:
        raise InputShapeError(f"input of shape {x.shape} for bundle '{m.name}': its model takes (T, B, ...) with "
                              f"T={m.num_steps}, and so does the bundle; transpose the batch "
                              "(x.swapaxes(0, 1)) to (T, B, ...)")
    return x.swapaxes(0, 1)


def prefix_steps(m: Manifest) -> int | None:
    """The most steps a prefix runner's graphs take (None: no prefix runner, or one graph for any length)."""
    if m.dense is None or not m.dense.prefix_files or m.dense.prefix_any_length:
        return None
    return len(m.dense.prefix_files) * m.window_steps


def length_problem(steps: int, m: Manifest, schedule: str | None = None) -> str | None:
    """Why ``steps`` time steps do not fit the dense part: a multiple of the adapter window (or of a captured
    model's step window, on the window and event schedules), or exactly the compiled T where the dense part
    is a captured model's own loop over T (its whole-sequence form, the ``end`` schedule)."""
    longest = prefix_steps(m)
    if longest is not None and steps > longest:
        return (f"T must be at most {longest} (a multiple of {m.window_steps}): the prefix runner has the dense "
                f"code on up to {longest} steps")
    if m.adapter is None and m.window_steps is not None and schedule == "end" and steps != m.num_steps:
        return (f"T must be {m.num_steps} on the end schedule (the dense part's whole-sequence form is the model's "
                f"own code over {m.num_steps} steps); the window schedule runs any multiple of {m.window_steps}")
    if m.window_steps is None:
        return None if steps == m.num_steps else \
            f"T must be {m.num_steps}: the dense part is the model's own code over its {m.num_steps} steps"
    if m.adapter is None and steps % m.window_steps:
        return f"T must be a multiple of the step model's window {m.window_steps} (the bundle was compiled with " \
               f"T={m.num_steps})"
    if m.adapter is not None and steps % m.adapter.window:
        return f"T must be a multiple of the adapter window {m.adapter.window} (the bundle was compiled with " \
               f"T={m.num_steps})"
    return None


def normalize_inputs(x: np.ndarray, bundle: Bundle) -> np.ndarray:
    """(T, N) or (B, T, N) -> (B, T, N) float64; spiking-only bundles and conv front-ends: (T, *shape) or
    (B, T, *shape)."""
    m = bundle.manifest
    x = np.asarray(x)
    if m.spiking_only:
        return shaped_inputs(x, m)
    if m.gpu_only or len(m.sample_shape) > 1:  # a conv front-end (B, T, C, H, W), or the model's own inputs
        x = shaped_inputs(x, m)
        problem = length_problem(x.shape[1], m)
        if problem:
            raise InputShapeError(f"input of {x.shape[1]} steps does not fit bundle '{m.name}': {problem}")
        return x
    if x.ndim == 2:
        x = x[None]
    n_in = m.spiking.n_in - (m.feedback.n_fb if m.feedback else 0)  # feedback channels are added by the runtime
    problem = None if x.ndim != 3 else length_problem(x.shape[1], m)
    if x.ndim != 3 or x.shape[2] != n_in or problem:
        raise InputShapeError(
            f"input of shape {x.shape} does not fit bundle '{m.name}': expected time-major (T, {n_in}) "
            f"or (B, T, {n_in}); {problem or 'see the shape'}")
    _check_values(x)
    return x.astype(np.float64)


def shaped_inputs(x: np.ndarray, m: Manifest) -> np.ndarray:
    """(T, *shape) or (B, T, *shape) (or flattened) -> (B, T, *shape) float64."""
    shape, n_in = m.sample_shape, m.sample_size
    if x.shape[1:] == shape or (len(shape) > 1 and x.shape[1:] == (n_in,)):
        x = x[None]
    if x.ndim < 3 or x.shape[2:] not in (shape, (n_in,)):
        raise InputShapeError(f"input of shape {x.shape} does not fit bundle '{m.name}': expected time-major "
                              f"(T, {', '.join(map(str, shape))}) or (B, T, {', '.join(map(str, shape))})")
    _check_values(x)
    return x.reshape(x.shape[0], x.shape[1], *shape).astype(np.float64)


def _check_values(x: np.ndarray) -> None:
    """At least one sample of at least one step, every value finite."""
    if x.ndim < 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise InputShapeError(f"input of shape {x.shape} holds {x.shape[0] if x.ndim > 1 else 0} sample(s) of "
                              f"{x.shape[1] if x.ndim > 1 else 0} step(s); it needs at least one sample of at least "
                              "one step, time-major (B, T, ...)")
    if not np.all(np.isfinite(x)):
        raise InputShapeError("input contains NaN or inf values")


def frames_as_bias(bundle: Bundle, frames, steps: int) -> np.ndarray:
    """One frame per sample, ``(B, *input_shape)`` or ``(*input_shape)``, held for ``steps`` steps as the input
    layer's bias, as lava-dl drives its netx networks (``net.in_layer.neuron.bias_mant = frame``; the frame as
    the dataset gives it, after the input layer's own transform) -> the runtime's inputs ``(B, T, *input_shape)``.

    The runtime feeds those inputs to the input layer's current: for a netx LIF input layer with ``du = 4095``
    (iDecay 4096) and no bias of its own, Lava's fixed-point update is, each step,

        u[t] = (u[t-1] * (4096 - 4096) >> 12) + (a_in[t] << 6) = frame << 6
        v[t] = decay(v[t-1]) + u[t] + 0

    which is the update with ``a_in = 0`` and the bias ``frame << 6`` (``bias_exp`` 6): the same integers,
    step for step, and in float (``du = 1``, bias ``frame``) the same values. A bundle whose first layer is
    not such a layer, or a frame outside the 13-bit signed bias mantissa, is refused by name.
    """
    from neurodeploy.runtime.bundle_plan import load_plan

    m = bundle.manifest
    bundle.require_spiking("frames held as the input layer's bias (steps=)")
    shape = m.sample_shape
    x = np.asarray(frames)
    x = x[None] if x.shape == shape else x
    if steps < 1 or x.ndim != len(shape) + 1 or x.shape[1:] != shape:
        raise InputShapeError(f"frames of shape {x.shape} with steps={steps} for bundle '{m.name}': expected one "
                              f"frame per sample, (B, {', '.join(map(str, shape))}), and steps >= 1")
    _check_values(x[:, None])
    plan = load_plan(bundle, "fixed" if not m.spiking.quantization_error else "float")
    first = plan.neurons[0]
    q = plan.fixed.get(first.name)
    bias_exp = getattr(q, "bias_exp", None)
    problems = []
    if not first.driven_by_input or first.model != "lif":
        problems.append(f"its first population {first.name} is not an input layer of LIF neurons (a netx input layer)")
    elif q is None or q.du != 4095 or bias_exp != 6 or np.any(np.asarray(q.bias_mant) != 0):
        problems.append(f"its input layer {first.name} keeps current between steps or has a bias of its own (du "
                        f"{getattr(q, 'du', None)}, bias_exp {bias_exp}): a bias there is not its input current")
    if np.any(x != np.rint(x)) or np.abs(x).max(initial=0) > 4095:
        problems.append("frame values must be integers within the 13-bit signed bias mantissa (-4096..4095): "
                        "apply the input layer's transform first, as lava-dl's dataset does")
    if problems:
        raise InputShapeError(f"bundle '{m.name}' cannot take frames as its input layer's bias: "
                              + "; ".join(problems) + "; pass time-major inputs (B, T, ...) without steps")
    return np.repeat(x.astype(np.float64)[:, None], steps, axis=1)
