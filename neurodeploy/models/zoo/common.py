"""What the trained zoo models share: their neurons, their weights on disk, their readout."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

WEIGHTS = Path(__file__).parent / "weights"


def leaky(beta: float, threshold: float = 1.0) -> nn.Module:
    """snnTorch ``Leaky`` as Loihi runs it: ``v = beta v + x``, spike when ``v > threshold``, reset to zero
    in the same step; trained through its fast-sigmoid surrogate gradient."""
    import snntorch as snn
    from snntorch import surrogate

    return snn.Leaky(beta=beta, threshold=threshold, reset_mechanism="zero", reset_delay=False,
                     spike_grad=surrogate.fast_sigmoid(slope=5))


def beta_of_tau(tau: float) -> float:
    """SpikingJelly's LIF ``v += (x - v) / tau`` keeps ``1 - 1/tau`` of v per step (the input scale 1/tau
    is absorbed into the weights): tau 2.0 -> 0.5, tau 1.1 -> 0.0909."""
    return 1.0 - 1.0 / tau


def load_trained(model: nn.Module, name: str) -> nn.Module:
    """Load the shipped weights ``weights/NAME.pt`` (written by ``scripts/train_zoo.py NAME``)."""
    path = WEIGHTS / f"{name}.pt"
    if not path.exists():
        raise FileNotFoundError(f"no trained weights for zoo model {name!r} at {path}; "
                                f"run: .venv/bin/python scripts/train_zoo.py {name}")
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def calibrate(frontend: nn.Sequential, x: torch.Tensor, target_rate: float = 0.08, steps: int = 12) -> nn.Sequential:
    """Data-dependent initialisation: layer by layer, scale each synaptic layer's weights (bisection on a
    gain in [0, 64]) until the population after it fires at about ``target_rate`` on x (B, T, ...);
    otherwise the deeper populations of a fresh network stay silent and no surrogate gradient flows."""
    from neurodeploy.models.time_stepping import is_neuron, run_frontend

    for i, (name, module) in enumerate(frontend.named_children()):
        if not isinstance(module, (nn.Linear, nn.Conv2d)):
            continue
        target = next(n for n, m in list(frontend.named_children())[i:] if is_neuron(m))
        weight = module.weight.detach().clone()
        lo, hi = 0.0, 64.0
        for _ in range(steps):
            gain = (lo + hi) / 2
            with torch.no_grad():
                module.weight.copy_(weight * gain)
                rate = float(run_frontend(frontend, x)[target].mean())
            lo, hi = (gain, hi) if rate < target_rate else (lo, gain)
        with torch.no_grad():
            module.weight.copy_(weight * (lo + hi) / 2)
    return frontend
