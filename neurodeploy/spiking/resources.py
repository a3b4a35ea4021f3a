"""Resource mapping of a SpikingPlan onto neuromorphic cores and chips, from a hardware profile.

Each population gets its own cores (no two populations share a core), as many as the tightest limit needs::

    cores = max(ceil(neurons / neurons_per_core), ceil(synapses_stored / synapses_per_core))

where ``synapses_stored`` counts every nonzero pre x post connection into the population, except that a
convolution's kernel is stored once per core when the profile has ``shared_conv_weights``. Every core of
a population receives the whole fan-in of its sources (``fan_in``: source neurons, summed over the
incoming synapses; a second layer that refines another one, the quantizer's precision "double", shares
its axons) and sends to every core of the populations it feeds (``fan_out`` in target cores).
``chips = ceil(total cores / cores_per_chip)``. A population whose fan-in or fan-out exceeds the per-core
limit, or a plan needing more than ``max_chips``, raises :class:`ModelDoesNotFitError` with the numbers.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from neurodeploy.profiles import NeuromorphicProfile, load_profile
from neurodeploy.errors import ModelDoesNotFitError
from neurodeploy.spiking.plan import SpikingPlan


@dataclass
class PopulationMap:
    name: str
    neurons: int
    synapses: int  # stored synapses (shared conv kernels counted once per core)
    connections: int  # nonzero pre x post pairs
    fan_in: int
    fan_out: int
    cores: int
    neurons_per_core: int
    synapses_per_core: int


@dataclass
class ResourceMap:
    profile: str
    populations: list[PopulationMap]
    cores: int
    chips: int
    cores_per_chip: int

    def as_dict(self) -> dict:
        return asdict(self)


def map_resources(plan: SpikingPlan, profile: str | NeuromorphicProfile = "loihi2",
                  max_chips: int | None = None) -> ResourceMap:
    """Cores and chips for ``plan`` on ``profile``; raises ModelDoesNotFitError listing every violation."""
    prof = load_profile(profile) if isinstance(profile, str) else profile
    r = prof.resources
    limit = {k: int(getattr(r, k).value) for k in ("neurons_per_core", "synapses_per_core", "fan_in_per_core",
                                                   "fan_out_per_core", "cores_per_chip")}
    shared = bool(r.shared_conv_weights.value)
    pops, problems = [], []
    for pop in plan.neurons:
        syns = plan.incoming(pop.name)
        connections = sum(s.num_connections for s in syns)
        fan_in = sum(int(math.prod(plan.source_shape(s.source))) for s in syns if s.refines is None)  # same axons
        base_cores = math.ceil(pop.n / limit["neurons_per_core"])
        stored = sum(s.num_synapses if (shared and s.kind == "conv") else s.num_connections for s in syns)
        cores = max(base_cores, math.ceil(stored / limit["synapses_per_core"]), 1)
        if shared:  # every core holds its own copy of each shared kernel
            stored = sum(s.num_synapses * cores if s.kind == "conv" else s.num_connections for s in syns)
        pops.append(PopulationMap(name=pop.name, neurons=pop.n, synapses=stored, connections=connections,
                                  fan_in=fan_in, fan_out=0, cores=cores,
                                  neurons_per_core=math.ceil(pop.n / cores), synapses_per_core=math.ceil(stored / cores)))
    by_name = {p.name: p for p in pops}
    for syn in plan.synapses:
        if syn.source in by_name and syn.refines is None:
            by_name[syn.source].fan_out += by_name[syn.target].cores
    for p in pops:
        if p.fan_in > limit["fan_in_per_core"]:
            problems.append(f"{p.name}: fan-in {p.fan_in} source neurons per core > {limit['fan_in_per_core']} "
                            f"({prof.name}); split the source population or use a conv")
        if p.fan_out > limit["fan_out_per_core"]:
            problems.append(f"{p.name}: fan-out to {p.fan_out} cores > {limit['fan_out_per_core']} ({prof.name})")
    total = sum(p.cores for p in pops)
    chips = math.ceil(total / limit["cores_per_chip"])
    if max_chips is not None and chips > max_chips:
        problems.append(f"needs {total} cores = {chips} chips of {limit['cores_per_chip']} cores > {max_chips} chip(s): "
                        + ", ".join(f"{p.name} {p.cores}" for p in pops))
    if problems:
        raise ModelDoesNotFitError(problems, f"the network does not fit {prof.name}")
    return ResourceMap(profile=prof.name, populations=pops, cores=total, chips=chips,
                       cores_per_chip=limit["cores_per_chip"])
