"""Fixed-point-aware fine-tuning: a PyTorch module that computes exactly what the deployed fixed-point
network computes (:class:`~neurodeploy.qat.network.FixedPointNetwork`), trained with straight-through
gradients, and written back as a bundle on the grid it was compiled on, so that the fine-tuned module
and the deployed network (Lava ``fixed_pt``, the emulator) agree spike for spike."""
from neurodeploy.qat.network import FixedPointNetwork

__all__ = ["FixedPointNetwork"]
