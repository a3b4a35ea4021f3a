"""The first pass of a compile: a PyTorch model split into the part Loihi runs and the part the GPU runs."""
from __future__ import annotations

import logging

import torch
from torch import nn

from neurodeploy.compiler.partition import Partition, captured_placement, partition
from neurodeploy.errors import UsageError
from neurodeploy.models.hybrid import HybridModel

LOG = logging.getLogger(__name__)


def split(model: nn.Module, inputs: torch.Tensor, cut: str | None = None, dt_s: float | None = None
          ) -> tuple[Partition, torch.Tensor, str]:
    """The partition of ``model`` and the inputs in the bundle's layout (B, T, ...), with the layout the
    model takes (``"BT"`` or ``"TB"``): a HybridModel or a flat nn.Sequential by :func:`partition`, any other
    module by graph capture (:mod:`neurodeploy.compiler.capture`) on ``inputs``."""
    if isinstance(model, (HybridModel, nn.Sequential)):
        return partition(model, cut, dt_s), inputs, "BT"
    if cut is not None:
        raise UsageError("cut= applies to a flat nn.Sequential; a captured model is cut where its spikes first "
                         "meet an operation Loihi cannot run")
    from neurodeploy.compiler.capture import (capture, dense_remainder, gpu_only_reason, loihi_modules,
                                              spiking_sequential, whole_model)

    cap = capture(model, inputs, dt_s)
    layout = "BT" if cap.time_dim == 1 else "TB"
    bundle_inputs = inputs if cap.time_dim == 1 else inputs.transpose(0, 1)
    if gpu_only_reason(cap):
        LOG.warning("%s runs wholly on the GPU: %s", type(model).__name__, cap.stop)
        return Partition(None, whole_model(model, cap, inputs), None, captured_placement(model, cap)), \
            bundle_inputs, layout
    if cap.stop:
        LOG.info("Loihi runs %s up to %s; it stops at %s, so %d later population(s) run on the GPU: %s",
                 type(model).__name__, cap.chain[-1][0], cap.stop, len(cap.later_neurons), ", ".join(cap.later_neurons))
    dense = dense_remainder(model, cap, inputs)
    paths = {str(i): label for i, (label, _) in enumerate(loihi_modules(cap))}
    placement = captured_placement(model, cap)
    if dense.reads == "v":  # the code after the cut reads the membrane: the population sends it
        placement = [p.model_copy(update={"reason": p.reason + "; the code after the cut reads its membrane voltage, "
                                          "which it sends each step (graded values)"})
                     if p.module == cap.chain[-1][0] else p for p in placement]
    return Partition(spiking_sequential(cap), dense, None, placement, paths, dense.reads), bundle_inputs, layout


def as_model_takes(x: torch.Tensor, layout: str) -> torch.Tensor:
    """Inputs in the bundle's layout (B, T, ...) -> the layout the model takes (``"BT"``, or ``"TB"``)."""
    return x if layout == "BT" else x.transpose(0, 1)
