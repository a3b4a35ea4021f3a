"""The PyTorch model's own outputs: the one reference every stage compares with.

- :func:`torch_reference`: what a bundle stores at compile and what a co-simulation on other inputs is
  compared with: float64 (the precision of Lava's ``floating_pt`` models, so that spike-for-spike
  comparisons are not disturbed by float32 rounding at the threshold), the spikes of every population
  (B, T, *shape) keyed by NIR node (``spikes/<node>``), the output ``y`` and, for a back-end with a
  salience threshold, ``y_event`` and ``salient`` (the event schedule).
- :func:`torch_output`: the output alone, in the inputs' dtype and differentiable, for evaluation and
  training; a captured model runs whole, as the user wrote it.

Both run the model as it is deployed: a flat ``nn.Sequential`` or a HybridModel steps its neurons per
time step (:mod:`neurodeploy.models.time_stepping`), a feedback model closes its loop per window.
Inputs are in the bundle's layout (B, T, ...); ``layout`` says what the model itself takes.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from neurodeploy.compiler.partition import Partition, partition
from neurodeploy.compiler.split import as_model_takes, split
from neurodeploy.models.feedback import FeedbackHybrid, run_with_feedback
from neurodeploy.models.hybrid import HybridModel
from neurodeploy.models.time_stepping import output_spikes, reset_memories, run_frontend


def torch_reference(model: nn.Module, x: torch.Tensor, *, layout: str = "BT", part: Partition | None = None,
                    cut: str | None = None, dt_s: float | None = None) -> dict[str, np.ndarray]:
    """Float64 outputs of ``model`` on x (B, T, ...): ``spikes/<node>``, ``y`` (and ``y_event``, ``salient``).
    ``part``: the model's partition when already made, else it is split here (``cut``, ``dt_s`` as compiled)."""
    if isinstance(model, FeedbackHybrid):
        y, spikes = run_with_feedback(copy.deepcopy(model).double().eval(), x.double())
        return {**{f"spikes/{name}": s.numpy() for name, s in spikes.items()}, "y": y.numpy()}
    if part is None:
        part, x, _ = split(model.eval(), as_model_takes(x, layout).float(), cut, dt_s)
    dtype = torch.float32 if _float32_spikes(part.dense) else torch.float64
    dense = copy.deepcopy(part.dense).to(dtype).eval()
    if part.spiking is None:  # the model runs wholly on the GPU
        with torch.no_grad():
            return {"y": dense(x.to(dtype)).numpy().astype(np.float64)}
    spiking64 = copy.deepcopy(part.spiking).double().eval()
    with torch.no_grad():
        spikes = run_frontend(spiking64, x.double(), cut_reads=part.cut_reads)
        out = {f"spikes/{name}": s.numpy() for name, s in spikes.items()}
        out.update(_dense_outputs(dense, list(spikes.values())[-1].to(dtype)))
    return {k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in out.items()}


def _float32_spikes(dense: nn.Module) -> bool:
    """The user's code after the cut steps snnTorch neurons, whose spikes are float32 whatever their input:
    it runs in float32 (the chain's own neurons stand in, they do not count)."""
    cap = getattr(dense, "cap", None)
    if cap is None:
        return False
    chain = {id(m) for _, m in cap.chain}
    return any(type(m).__module__.startswith("snntorch") and id(m) not in chain for m in dense.modules())


def _dense_outputs(dense: nn.Module, cut: torch.Tensor) -> dict[str, np.ndarray]:
    out = {"y": dense(cut).numpy()}
    if getattr(dense, "salience_threshold", None) is not None:
        y_event, salient = dense.forward_event(cut)
        out["y_event"], out["salient"] = y_event.numpy(), salient.numpy()
    return out


def torch_output(model: nn.Module, x: torch.Tensor, *, layout: str = "BT", event: bool = False) -> torch.Tensor:
    """The model's output for x (B, T, ...), differentiable; with ``event``, through the event schedule (the
    back-end runs on salient windows only), as that model is deployed."""
    if isinstance(model, FeedbackHybrid):
        return run_with_feedback(model, x)[0]
    if not isinstance(model, (HybridModel, nn.Sequential)):  # a captured model: itself, as it takes inputs
        from neurodeploy.compiler.capture import batch_first

        def run(inputs: torch.Tensor) -> torch.Tensor:
            reset_memories(model)
            y = model(as_model_takes(inputs, layout))
            return y[0] if isinstance(y, tuple) else y

        return batch_first(run(x), x.shape[0], layout, lambda: run(x[:1]))
    part = partition(model)  # a flat nn.Sequential steps its neurons per time step, as the deployment does
    cut = output_spikes(part.spiking, x, grad=True)
    return part.dense.forward_event(cut)[0] if event else part.dense(cut)
