"""Compose a chain of NIR linear nodes (between two spiking populations) into one synaptic layer.

Loihi has synapses only between populations, so every path of linear nodes from a spike source to a
neuron (e.g. ``SumPool2d -> Flatten -> Affine``) becomes one synaptic layer with one step of delay.
The composition is exact:

- ``Conv`` alone, or a non-overlapping ``SumPool2d``/``AvgPool2d`` followed by a ``Conv``, stays a
  convolution: pooling by k then a conv with kernel K, stride s, padding p equals one conv on the
  unpooled input with kernel ``K*k`` (each tap repeated k x k), stride ``s*k`` and padding ``p*k``.
- A pooling layer alone becomes a grouped conv with a kernel of ones (1/k^2 for average pooling).
- ``Affine``/``Linear`` nodes over the whole (flattened) sample, with ``Flatten`` around them, are
  multiplied out: ``W = W_k ... W_1``, ``b = W_k (... (W_2 b_1 + b_2) ...) + b_k`` (one node: its own
  matrix, copied: no work growing as N^3).
- Anything else is composed into a dense matrix by pushing the identity through the chain in float64:
  ``W = f(I) - f(0)``, ``b = f(0)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np
import torch
import torch.nn.functional as F

LINEAR_NODES = (nir.Affine, nir.Linear, nir.Scale, nir.Conv1d, nir.Conv2d, nir.SumPool2d, nir.AvgPool2d,
                nir.Flatten)
MAX_DENSE_ENTRIES = 1 << 26  # a composed dense matrix larger than this (512 MiB in float64) is refused


@dataclass
class ComposedSynapse:
    """One synaptic layer in PyTorch layouts (see :class:`neurodeploy.spiking.plan.SynapseLayer`)."""

    kind: str
    weights: np.ndarray
    bias: np.ndarray  # (*out_shape)
    out_shape: tuple[int, ...]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1


def _pair(value, kernel: tuple[int, int] | None = None) -> tuple[int, int]:
    if isinstance(value, str):
        if value == "valid":
            return (0, 0)
        if value == "same" and kernel is not None and all(k % 2 for k in kernel):
            return (kernel[0] // 2, kernel[1] // 2)
        raise ValueError(f"padding {value!r} is not supported (use 'valid', 'same' with an odd kernel, or ints)")
    arr = np.atleast_1d(np.asarray(value, dtype=np.int64))
    return (int(arr[0]), int(arr[-1]))


def _conv_args(node: nir.Conv1d | nir.Conv2d) -> dict:
    """A Conv1d is a Conv2d over a (C, 1, L) input."""
    w = np.asarray(node.weight, dtype=np.float64)
    if isinstance(node, nir.Conv1d):
        w = w[:, :, None, :]
        stride, dilation = (1, _pair(node.stride)[0]), (1, _pair(node.dilation)[0])
        padding = (0, _pair(node.padding, (1, w.shape[-1]))[1])
    else:
        kernel = w.shape[2:]
        stride, dilation, padding = _pair(node.stride), _pair(node.dilation), _pair(node.padding, kernel)
    bias = getattr(node, "bias", None)
    bias = np.zeros(w.shape[0]) if bias is None else np.broadcast_to(np.asarray(bias, np.float64), (w.shape[0],))
    return dict(weight=w, bias=bias.copy(), stride=stride, padding=padding, dilation=dilation, groups=int(node.groups))


def _as_2d(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    return (x[:, :, None, :], True) if x.dim() == 3 else (x, False)


def apply_node(node: nir.NIRNode, x: torch.Tensor) -> torch.Tensor:
    """Apply one linear NIR node to a batch ``x`` (N, *shape) in float64."""
    if isinstance(node, (nir.Affine, nir.Linear)):
        w = torch.as_tensor(np.asarray(node.weight, np.float64))
        flat = x.reshape(x.shape[0], -1) if x.dim() > 2 and w.shape[1] == x[0].numel() else x
        y = flat @ w.T
        return y + torch.as_tensor(np.asarray(node.bias, np.float64)) if isinstance(node, nir.Affine) else y
    if isinstance(node, nir.Scale):
        return x * torch.as_tensor(np.asarray(node.scale, np.float64))
    if isinstance(node, nir.Flatten):
        start = node.start_dim + 1 if node.start_dim >= 0 else node.start_dim
        end = node.end_dim + 1 if node.end_dim >= 0 else node.end_dim
        return x.flatten(start, end)
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        a = _conv_args(node)
        x2, squeeze = _as_2d(x)
        y = F.conv2d(x2, torch.as_tensor(a["weight"]), torch.as_tensor(a["bias"]), a["stride"], a["padding"],
                     a["dilation"], a["groups"])
        return y[:, :, 0, :] if squeeze else y
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        k, s, p = _pair(node.kernel_size), _pair(node.stride), _pair(node.padding)
        y = F.avg_pool2d(x, k, s, p, count_include_pad=True)
        return y * (k[0] * k[1]) if isinstance(node, nir.SumPool2d) else y
    raise TypeError(f"{type(node).__name__} is not a linear node")


def chain_function(chain: list[nir.NIRNode]):
    def f(x: torch.Tensor) -> torch.Tensor:
        for node in chain:
            x = apply_node(node, x)
        return x
    return f


def _pool_as_conv(node: nir.NIRNode, channels: int) -> dict:
    k, s, p = _pair(node.kernel_size), _pair(node.stride), _pair(node.padding)
    value = 1.0 if isinstance(node, nir.SumPool2d) else 1.0 / (k[0] * k[1])
    return dict(weight=np.full((channels, 1, *k), value), bias=np.zeros(channels), stride=s, padding=p,
                dilation=(1, 1), groups=channels)


def _fuse_pool_conv(pool: nir.NIRNode, conv: dict, in_shape: tuple[int, ...]) -> dict | None:
    """Pool(k, stride k, no padding) then conv -> one conv, or None when that is not exact."""
    k, s, p = _pair(pool.kernel_size), _pair(pool.stride), _pair(pool.padding)
    if k != s or p != (0, 0) or conv["dilation"] != (1, 1) or len(in_shape) != 3:
        return None
    if in_shape[1] % k[0] or in_shape[2] % k[1]:
        return None  # pooling drops a remainder row/column that the fused kernel would read
    w = np.repeat(np.repeat(conv["weight"], k[0], axis=2), k[1], axis=3)
    if isinstance(pool, nir.AvgPool2d):
        w = w / (k[0] * k[1])
    return dict(weight=w, bias=conv["bias"], stride=(conv["stride"][0] * k[0], conv["stride"][1] * k[1]),
                padding=(conv["padding"][0] * k[0], conv["padding"][1] * k[1]), dilation=(1, 1), groups=conv["groups"])


def compose(chain: list[nir.NIRNode], in_shape: tuple[int, ...]) -> ComposedSynapse:
    """The single synaptic layer equal to ``chain`` applied to inputs of shape ``in_shape``."""
    f = chain_function(chain)
    with torch.no_grad():
        zero = f(torch.zeros((1, *in_shape), dtype=torch.float64))[0]
    out_shape = tuple(zero.shape)
    conv = None
    kinds = [type(n) for n in chain]
    if kinds in ([nir.Conv2d], [nir.Conv1d]):
        conv = _conv_args(chain[0])
    elif kinds in ([nir.SumPool2d], [nir.AvgPool2d]) and len(in_shape) == 3:
        conv = _pool_as_conv(chain[0], in_shape[0])
    elif len(chain) == 2 and kinds[0] in (nir.SumPool2d, nir.AvgPool2d) and kinds[1] is nir.Conv2d:
        conv = _fuse_pool_conv(chain[0], _conv_args(chain[1]), in_shape)
    if conv is not None:
        return ComposedSynapse(kind="conv", weights=conv["weight"], bias=zero.numpy().copy(), out_shape=out_shape,
                               stride=conv["stride"], padding=conv["padding"], dilation=conv["dilation"],
                               groups=conv["groups"])
    product = _dense_product(chain, in_shape)
    if product is not None:
        return ComposedSynapse(kind="dense", weights=product[0], bias=product[1], out_shape=out_shape)
    n_in, n_out = int(np.prod(in_shape)), int(np.prod(out_shape))
    if n_in * n_out > MAX_DENSE_ENTRIES:
        raise ValueError(f"composing {[k.__name__ for k in kinds]} gives a {n_out}x{n_in} dense matrix, too large")
    with torch.no_grad():
        eye = torch.eye(n_in, dtype=torch.float64).reshape(n_in, *in_shape)
        weights = (f(eye) - zero).reshape(n_in, n_out).T.numpy().copy()
    return ComposedSynapse(kind="dense", weights=weights, bias=zero.numpy().copy(), out_shape=out_shape)


def _dense_product(chain: list[nir.NIRNode], in_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    """``(W, b)`` of a chain of ``Affine``/``Linear`` nodes over the whole flattened sample (as
    :func:`apply_node` applies them) and ``Flatten`` nodes (the identity on it), multiplied out; None for any
    other chain (composed through the identity)."""
    n = int(np.prod(in_shape))
    weights, bias = None, np.zeros(n)
    for node in chain:
        if isinstance(node, nir.Flatten):
            continue
        if not isinstance(node, (nir.Affine, nir.Linear)):
            return None
        w = np.asarray(node.weight, np.float64)
        if w.ndim != 2 or w.shape[1] != n:
            return None  # applied on the last dimension only
        b = np.asarray(node.bias, np.float64) if isinstance(node, nir.Affine) else np.zeros(w.shape[0])
        weights = w if weights is None else w @ weights  # the node's own array: a plan never writes into one
        bias, n = w @ bias + b, w.shape[0]
    return None if weights is None else (weights, bias)
