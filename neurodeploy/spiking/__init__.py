"""Stage 2, spiking: the backend-neutral plan of the part Loihi runs, and everything computed on it alone.

Enters: a NIR graph (or a netx file's layers, read by :mod:`neurodeploy.exporters`) and a hardware
profile. Leaves: a :class:`~neurodeploy.spiking.plan.SpikingPlan` (populations and synapse layers), its
fixed-point form and quantization report, its resource map, and its float simulation.

- :mod:`~neurodeploy.spiking.nir_lowering` (entry: :func:`~neurodeploy.spiking.nir_lowering.nir_to_plan`):
  the design rules and the lowering of a NIR graph, with :mod:`~neurodeploy.spiking.nir_chains` (linear
  paths between populations), :mod:`~neurodeploy.spiking.nir_types` (shapes) and
  :mod:`~neurodeploy.spiking.nir_fixes` (exporter defects);
- :mod:`~neurodeploy.spiking.loihi`: Loihi's numerics in one place (bit widths, wraps, decays, shifts,
  weight truncation, LIF constants, the LIF step);
- :mod:`~neurodeploy.spiking.quantize` (:func:`~neurodeploy.spiking.quantize.quantize_for`): Loihi's integers;
- :mod:`~neurodeploy.spiking.resources` (:func:`~neurodeploy.spiking.resources.map_resources`): cores and chips,
  each population tiled by :mod:`~neurodeploy.spiking.tiles` (what one core holds and routes);
- :mod:`~neurodeploy.spiking.float_simulation`: the plan's float model in PyTorch;
- :mod:`~neurodeploy.spiking.resets`: the reset rules every simulator shares.
"""
