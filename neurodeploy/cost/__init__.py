"""Stage 6, cost: every figure of a run is computed here; the reports only render them.

Enters: a bundle and a :class:`~neurodeploy.runtime.cosim.CosimResult`, hardware profile names. Leaves: a
:class:`~neurodeploy.cost.pricing.CostReport` (the JSON contract's figures). Entry:
:func:`~neurodeploy.cost.pricing.price`.

- :mod:`~neurodeploy.cost.counts`: synaptic operations, spikes, sparsity (NeuroBench's definitions),
  counted once, from a run's spikes;
- :mod:`~neurodeploy.cost.macs`: MACs, FLOPs, bytes and kernels of the dense ONNX graph;
- :mod:`~neurodeploy.cost.energy_latency`: energy and latency per inference by device, and the baselines;
- :mod:`~neurodeploy.cost.pricing`: the priced run, early exits included.
"""
