"""Stage 7, qat: fixed-point-aware fine-tuning.

Enters: a spiking-only bundle. Leaves: a PyTorch module that computes exactly what the deployed
fixed-point network computes (:class:`~neurodeploy.qat.network.FixedPointNetwork`, the entry point), trained
with straight-through gradients, and a bundle written back on the grid it was compiled on, so that the
fine-tuned module and the deployed network (Lava ``fixed_pt``, the emulator) agree spike for spike."""
from neurodeploy.qat.network import FixedPointNetwork

__all__ = ["FixedPointNetwork"]
