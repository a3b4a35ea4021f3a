"""Tiles: the part of a population one neuron core holds, and what that core must store and route.

A population is seen as a ``(C, H, W)`` block of neurons (``(n,)`` as ``(n, 1, 1)``, ``(C, L)`` as
``(C, 1, L)``) and cut into tiles of ``(c, h, w)`` neurons, one tile per core::

    cores = ceil(C / c) * ceil(H / h) * ceil(W / w)

A population fed by a dense synapse layer (other than a bias line) is cut along its flattened order, in
blocks of ``c`` consecutive neurons (``(c, 1, 1)`` tiles of ``(n, 1, 1)``). For one tile (the worst tile,
an interior one where borders only shrink the numbers):

- **input axons** (Loihi's fan-in table): the distinct source neurons whose spikes reach the tile. For a
  convolution, the tile's receptive field::

      axons_in = C_in' * min(H_in, (h - 1) * s_h + (k_h - 1) * d_h + 1) * min(W_in, (w - 1) * s_w + (k_w - 1) * d_w + 1)

  (``C_in'``: all input channels, or for a grouped conv those of the groups the tile's channels belong
  to); for a dense layer, the source neurons with a nonzero weight into the block; a bias line is one axon.
  The second layer of the quantizer's precision ``double`` shares its first layer's axons.
- **synapses stored**: a convolution's kernel slice of the tile's channels once (shared weights), or every
  tap at every output of the tile (unrolled); a dense layer's nonzero weights into the block.
- **output axons** (Loihi's fan-out table): one per (neuron, destination core) pair::

      axons_out = sum over the tile's neurons i of reach(i)

  where ``reach(i)`` counts the cores of the populations it feeds whose tiles have ``i`` in their input
  (:func:`reach`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from neurodeploy.spiking.plan import NeuronLayer, SpikingPlan, SynapseLayer

Shape3 = tuple[int, int, int]


@dataclass(frozen=True)
class Tile:
    """Neurons per core along channels, rows and columns."""

    c: int
    h: int
    w: int

    @property
    def neurons(self) -> int:
        return self.c * self.h * self.w

    def cores(self, shape: Shape3) -> int:
        return math.ceil(shape[0] / self.c) * math.ceil(shape[1] / self.h) * math.ceil(shape[2] / self.w)


def as_3d(shape: tuple[int, ...]) -> Shape3:
    """(C, H, W) view of a shape: (n,) -> (n, 1, 1), (C, L) -> (C, 1, L)."""
    if len(shape) == 1:
        return (int(shape[0]), 1, 1)
    if len(shape) == 2:
        return (int(shape[0]), 1, int(shape[1]))
    return (int(shape[0]), int(shape[1]), int(np.prod(shape[2:])))


def is_flat(plan: SpikingPlan, pop: NeuronLayer) -> bool:
    """Whether the population is cut along its flattened order (a dense layer, not a bias line, feeds it)."""
    return len(pop.shape) == 1 or any(s.kind == "dense" and s.source != "bias" for s in plan.incoming(pop.name))


def geometry(plan: SpikingPlan, pop: NeuronLayer) -> Shape3:
    return (pop.n, 1, 1) if is_flat(plan, pop) else as_3d(pop.shape)


def _kernel(syn: SynapseLayer) -> tuple[int, int]:
    k = syn.weights.shape[2:]
    return (1, int(k[0])) if len(k) == 1 else (int(k[0]), int(k[1]))


def _pairs(value: tuple[int, ...], missing: int = 1) -> tuple[int, int]:
    """(rows, columns) of a stride, dilation or padding; a 1-D conv's has ``missing`` for rows."""
    return (missing, int(value[0])) if len(value) == 1 else (int(value[0]), int(value[-1]))


@dataclass
class _Dense:
    mask: np.ndarray  # nonzero weights (n_out, n_in)
    full: bool  # every weight nonzero
    per_row: np.ndarray  # nonzero weights into each target neuron


def _dense(syn: SynapseLayer) -> _Dense:
    """The dense layer's nonzero pattern, kept until the weights change."""
    cache = syn.__dict__.setdefault("_counts", {})
    if "pattern" not in cache or cache["pattern"][0] is not syn.weights:
        mask = np.asarray(syn.weights) != 0
        cache["pattern"] = (syn.weights, _Dense(mask, bool(mask.all()), mask.sum(axis=1)))
    return cache["pattern"][1]


def _blocks(mask: np.ndarray, c: int) -> np.ndarray:
    """Rows of ``mask`` summed over consecutive blocks of ``c`` rows: (blocks, n_in)."""
    return np.add.reduceat(mask, np.arange(0, mask.shape[0], c), axis=0, dtype=np.int64)


def _dense_axons_in(syn: SynapseLayer, c: int) -> int:
    if syn.source == "bias":
        return 1
    pattern = _dense(syn)
    if pattern.full:
        return pattern.mask.shape[1]
    return int((_blocks(pattern.mask, c) > 0).sum(axis=1).max(initial=0))


def _conv_axons_in(plan: SpikingPlan, syn: SynapseLayer, tile: Tile, out_channels: int) -> int:
    cs, hs, ws = as_3d(plan.source_shape(syn.source))
    (kh, kw), (sh, sw), (dh, dw) = _kernel(syn), _pairs(syn.stride), _pairs(syn.dilation)
    rows = min(hs, (tile.h - 1) * sh + (kh - 1) * dh + 1)
    cols = min(ws, (tile.w - 1) * sw + (kw - 1) * dw + 1)
    if syn.groups == 1:
        chans = cs
    else:
        per_group_out, per_group_in = out_channels // syn.groups, cs // syn.groups
        chans = min(cs, (math.ceil(tile.c / per_group_out) + 1) * per_group_in)
    return chans * rows * cols


def axons_in(plan: SpikingPlan, pop: NeuronLayer, tile: Tile) -> int:
    """Distinct source neurons reaching one tile of ``pop`` (the worst tile)."""
    flat, shape = is_flat(plan, pop), geometry(plan, pop)
    total = 0
    for syn in plan.incoming(pop.name):
        if syn.refines is not None:
            continue
        if syn.kind == "dense":
            total += _dense_axons_in(syn, tile.c)
        elif flat:  # a conv into a population cut flat: its whole source, at worst
            total += int(np.prod(plan.source_shape(syn.source)))
        else:
            total += _conv_axons_in(plan, syn, tile, shape[0])
    return total


def synapses_stored(plan: SpikingPlan, pop: NeuronLayer, tile: Tile, shared_conv: bool) -> int:
    """Weights one core of ``pop`` stores for ``tile`` (the worst tile)."""
    shape = geometry(plan, pop)
    total = 0
    for syn in plan.incoming(pop.name):
        if syn.kind == "dense":
            rows = _dense(syn).per_row
            total += int(np.add.reduceat(rows, np.arange(0, len(rows), tile.c)).max(initial=0)) \
                if syn.source != "bias" or shape[1:] == (1, 1) else tile.neurons
        elif shared_conv:
            total += math.ceil(syn.num_synapses * min(tile.c, shape[0]) / shape[0])
        else:
            total += math.ceil(syn.num_connections * tile.neurons / pop.n)
    return total


def reach(plan: SpikingPlan, pop: NeuronLayer, tiles: dict[str, Tile]) -> np.ndarray:
    """Destination cores of each neuron of ``pop`` (``geometry(pop)``-shaped), given its targets' tiles."""
    shape = geometry(plan, pop)
    out = np.zeros(shape, dtype=np.int64)
    for syn in plan.synapses:
        if syn.source != pop.name or syn.refines is not None or syn.target not in tiles:
            continue
        target = plan.layer(syn.target)
        t_shape, tile = geometry(plan, target), tiles[syn.target]
        if syn.kind == "dense":
            out += _dense_reach(syn, tile, t_shape).reshape(shape)
        elif is_flat(plan, target) or is_flat(plan, pop):  # at worst: every core of the target
            out += tile.cores(t_shape)
        else:
            out += _conv_reach(plan, syn, tile, t_shape)[None]
    return out


def _dense_reach(syn: SynapseLayer, tile: Tile, t_shape: Shape3) -> np.ndarray:
    pattern = _dense(syn)
    if pattern.full:
        return np.full(pattern.mask.shape[1], tile.cores(t_shape), dtype=np.int64)
    return (_blocks(pattern.mask, tile.c) > 0).sum(axis=0)


def _conv_reach(plan: SpikingPlan, syn: SynapseLayer, tile: Tile, t_shape: Shape3) -> np.ndarray:
    """(H_in, W_in): how many of the target's cores read each input position (every channel alike)."""
    _, hs, ws = as_3d(plan.source_shape(syn.source))
    (kh, kw), (sh, sw), (dh, dw), (ph, pw) = _kernel(syn), _pairs(syn.stride), _pairs(syn.dilation), \
        _pairs(syn.padding, 0)
    grid = np.zeros((hs + 1, ws + 1), dtype=np.int64)
    channel_tiles = math.ceil(t_shape[0] / tile.c)
    for r0 in range(0, t_shape[1], tile.h):
        r1 = min(r0 + tile.h, t_shape[1]) - 1
        top, bottom = max(0, r0 * sh - ph), min(hs - 1, r1 * sh - ph + (kh - 1) * dh)
        for c0 in range(0, t_shape[2], tile.w):
            c1 = min(c0 + tile.w, t_shape[2]) - 1
            left, right = max(0, c0 * sw - pw), min(ws - 1, c1 * sw - pw + (kw - 1) * dw)
            if top <= bottom and left <= right:
                grid[top, left] += channel_tiles
                grid[top, right + 1] -= channel_tiles
                grid[bottom + 1, left] -= channel_tiles
                grid[bottom + 1, right + 1] += channel_tiles
    return grid.cumsum(axis=0).cumsum(axis=1)[:hs, :ws]


def axons_out(reach_map: np.ndarray, tile: Tile) -> int:
    """The largest sum of ``reach_map`` over one tile."""
    if not reach_map.any():
        return 0
    c, h, w = reach_map.shape
    padded = np.zeros((math.ceil(c / tile.c) * tile.c, math.ceil(h / tile.h) * tile.h,
                       math.ceil(w / tile.w) * tile.w), dtype=np.int64)
    padded[:c, :h, :w] = reach_map
    blocks = padded.reshape(padded.shape[0] // tile.c, tile.c, padded.shape[1] // tile.h, tile.h,
                            padded.shape[2] // tile.w, tile.w)
    return int(blocks.sum(axis=(1, 3, 5)).max())
