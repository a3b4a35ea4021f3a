"""Mapping a SpikingPlan onto neuron cores and chips by each core's limits, from a hardware profile.

Each population gets its own cores (no two populations share one), cut into equal tiles
(:mod:`neurodeploy.spiking.tiles`: convolutional populations spatially, with all or some of their channels;
dense ones in blocks of consecutive neurons). A tile must fit every per-core limit of the profile::

    neurons <= neurons_per_core                    (neuron state memory)
    synapses stored <= synapses_per_core           (synapse memory; a shared conv kernel once per core)
    input axons <= fan_in_per_core                 (the receptive field of the tile's neurons)
    output axons <= fan_out_per_core               (one per neuron and destination core)

and each population takes the tiling with the fewest cores (ties: more channels per tile, then more rows).
Output axons depend on how the populations a population feeds are tiled, so populations are tiled once on
the first three limits, then again from the last to the first with all four. ``limit`` names, per
population of more than one core, the limit its tiles come closest to (the one that binds). ``chips = ceil(cores /
cores_per_chip)``. A population no tile of one neuron fits, or a plan needing more than ``max_chips``,
raises :class:`ModelDoesNotFitError` listing every violation with the numbers.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import cached_property

import numpy as np

from neurodeploy.errors import ModelDoesNotFitError
from neurodeploy.profiles import NeuromorphicProfile, load_profile
from neurodeploy.spiking import tiles as tiling
from neurodeploy.spiking.plan import NeuronLayer, SpikingPlan

LIMITS = {"neurons": "neurons_per_core", "synapses": "synapses_per_core", "axons_in": "fan_in_per_core",
          "axons_out": "fan_out_per_core"}
"""What a tile uses -> the profile's per-core limit on it."""


@dataclass
class PopulationMap:
    name: str
    neurons: int
    synapses: int  # stored synapses, all cores together (a shared conv kernel slice once per core)
    connections: int  # nonzero pre x post pairs
    fan_in: int  # input axons of the busiest core (source neurons reaching it)
    fan_out: int  # output axons of the busiest core (neuron x destination core pairs)
    cores: int
    neurons_per_core: int
    synapses_per_core: int
    tile: list[int] = field(default_factory=list)  # (channels, rows, columns) per core; flat: (neurons, 1, 1)
    limit: str = ""  # the per-core limit the tiles come closest to
    use: dict[str, float] = field(default_factory=dict)  # fraction of each per-core limit used
    messages_per_spike: float = 0.0  # mean destination cores of one of its neurons' spikes


@dataclass
class ResourceMap:
    profile: str
    populations: list[PopulationMap]
    cores: int
    chips: int
    cores_per_chip: int

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Search:
    """One population's tiling problem: its plan, the limits, its shape and its neurons' reach."""

    plan: SpikingPlan
    pop: NeuronLayer
    limits: dict[str, int]
    shared: bool
    reach: np.ndarray | None = None

    @cached_property
    def shape(self) -> tiling.Shape3:
        """The population as (C, H, W) blocks of neurons, as it is tiled (asked at every candidate tile)."""
        return tiling.geometry(self.plan, self.pop)

    def use(self, tile: tiling.Tile) -> dict[str, int]:
        return {"neurons": tile.neurons, "synapses": tiling.synapses_stored(self.plan, self.pop, tile, self.shared),
                "axons_in": tiling.axons_in(self.plan, self.pop, tile),
                "axons_out": 0 if self.reach is None else tiling.axons_out(self.reach, tile)}

    def fits(self, tile: tiling.Tile) -> bool:
        return all(v <= self.limits[k] for k, v in self.use(tile).items())

    def best(self) -> tiling.Tile | None:
        """The feasible tile with the fewest cores (None: not even one neuron per core fits)."""
        c_all, h_all, w_all = self.shape
        best, best_cores = None, math.inf
        for c in sorted({math.ceil(c_all / k) for k in range(1, c_all + 1)}, reverse=True):
            for h in sorted({math.ceil(h_all / k) for k in range(1, h_all + 1)}, reverse=True):
                if math.ceil(c_all / c) * math.ceil(h_all / h) >= best_cores:
                    continue
                w = self._widest(c, h, w_all)
                if w and tiling.Tile(c, h, w).cores(self.shape) < best_cores:
                    best, best_cores = tiling.Tile(c, h, w), tiling.Tile(c, h, w).cores(self.shape)
        return best

    def _widest(self, c: int, h: int, w_all: int) -> int:
        """The most columns a (c, h, .) tile may hold (0: none), by bisection (every use grows with w)."""
        if not self.fits(tiling.Tile(c, h, 1)):
            return 0
        lo, hi = 1, w_all
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if self.fits(tiling.Tile(c, h, mid)) else (lo, mid - 1)
        return lo


def _limits(prof: NeuromorphicProfile) -> dict[str, int]:
    r = prof.resources
    return {use: int(getattr(r, key).value) for use, key in LIMITS.items()}


def _problem(search: _Search, prof: NeuromorphicProfile) -> str:
    """Why not even one neuron per core fits, in the limits' words."""
    use, limits, name = search.use(tiling.Tile(1, 1, 1)), search.limits, search.pop.name
    words = {"axons_in": f"fan-in {use['axons_in']} source neurons per core > {limits['axons_in']} ({prof.name}); "
                         "split the source population or use a conv",
             "axons_out": f"fan-out {use['axons_out']} output axons from one neuron > {limits['axons_out']} "
                          f"({prof.name}); split the populations it feeds",
             "synapses": f"{use['synapses']} synapses into one neuron > {limits['synapses']} per core ({prof.name})",
             "neurons": f"one neuron > {limits['neurons']} per core"}
    return "; ".join(f"{name}: {words[k]}" for k in LIMITS if use[k] > limits[k])


def _tile_all(plan: SpikingPlan, prof: NeuromorphicProfile
              ) -> tuple[dict[str, tiling.Tile], dict[str, _Search], list[str]]:
    """Tiles on neurons, synapses and input axons, then again from the last population with output axons."""
    limits, shared = _limits(prof), bool(prof.resources.shared_conv_weights.value)
    searches = {p.name: _Search(plan, p, limits, shared) for p in plan.neurons}
    tiles, problems = {}, []
    for name, search in searches.items():
        tile = search.best()
        if tile is None:
            problems.append(_problem(search, prof))
        else:
            tiles[name] = tile
    if problems:
        return tiles, searches, problems
    for pop in reversed(plan.neurons):
        search = searches[pop.name]
        search.reach = tiling.reach(plan, pop, tiles)
        tile = search.best()
        if tile is None:
            problems.append(_problem(search, prof))
        else:
            tiles[pop.name] = tile
    return tiles, searches, problems


def _population(search: _Search, tile: tiling.Tile) -> PopulationMap:
    use, cores, plan, pop = search.use(tile), tile.cores(search.shape), search.plan, search.pop
    fraction = {k: v / search.limits[k] for k, v in use.items()}
    return PopulationMap(name=pop.name, neurons=pop.n, synapses=use["synapses"] * cores,
                         connections=sum(s.num_connections for s in plan.incoming(pop.name)),
                         fan_in=use["axons_in"], fan_out=use["axons_out"], cores=cores,
                         neurons_per_core=math.ceil(pop.n / cores), synapses_per_core=use["synapses"],
                         tile=[tile.c, tile.h, tile.w], use=fraction,
                         messages_per_spike=0.0 if search.reach is None else float(search.reach.mean()),
                         limit=max(fraction, key=fraction.get) if cores > 1 else "none (one core)")


def map_resources(plan: SpikingPlan, profile: str | NeuromorphicProfile = "loihi2",
                  max_chips: int | None = None) -> ResourceMap:
    """Cores and chips for ``plan`` on ``profile``; raises ModelDoesNotFitError listing every violation."""
    prof = load_profile(profile) if isinstance(profile, str) else profile
    tiles, searches, problems = _tile_all(plan, prof)
    if problems:
        raise ModelDoesNotFitError(problems, f"the network does not fit {prof.name}")
    pops = [_population(searches[p.name], tiles[p.name]) for p in plan.neurons]
    per_chip = int(prof.resources.cores_per_chip.value)
    total = sum(p.cores for p in pops)
    chips = math.ceil(total / per_chip)
    if max_chips is not None and chips > max_chips:
        raise ModelDoesNotFitError(
            [f"needs {total} cores = {chips} chips of {per_chip} cores > {max_chips} chip(s): "
             + ", ".join(f"{p.name} {p.cores} ({p.limit})" for p in pops)],
            f"the network does not fit {max_chips} chip(s) of {prof.name}; raise --max-chips or shrink the network")
    return ResourceMap(profile=prof.name, populations=pops, cores=total, chips=chips, cores_per_chip=per_chip)
