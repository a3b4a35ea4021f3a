"""What a LIF population does after a spike: the reset modes neurodeploy runs (float and Loihi fixed point).

With ``s[t] = v[t] > vth`` and ``r[t] = v[t-1] > vth`` (the previous step's spike, read from the stored,
unreset voltage)::

    zero              v[t] <- 0 where s[t]                      Lava's LIF; snnTorch reset_mechanism="zero"
                                                                (either reset_delay: the same spikes)
    subtract          s[t] = v[t] - vth r[t] > vth;             snnTorch "subtract", reset_delay=False
                      v[t] <- v[t] - vth where s[t]             (its spike test subtracts again while the
                                                                voltage left after the last reset is above vth)
    subtract_delayed  v[t] = (1 - dv) v[t-1] + u[t] + b - vth r[t], before the threshold; no reset after it
                                                                snnTorch's default: "subtract", reset_delay=True
    none              v is never reset                          snnTorch reset_mechanism="none"

In fixed point ``vth`` is Lava's ``vth << 6`` and the subtraction of ``subtract_delayed`` comes after
Lava's clip of v to 24 bits, followed by the clip's lower bound again. Lava's own LIF only resets to
zero; the other modes run on :mod:`neurodeploy.runtime.lava_procs` (a programmable Loihi 2 neuron), and
the emulator and the float simulation use the functions below.
"""
from __future__ import annotations

import torch


def fired_before(v: torch.Tensor, vth, reset: str) -> torch.Tensor | None:
    """``r[t] = v[t-1] > vth`` for the subtractive resets (read before v is updated), else None."""
    return v > vth if reset in ("subtract", "subtract_delayed") else None


def subtract_delayed(v: torch.Tensor, fired: torch.Tensor | None, vth, reset: str, low=None) -> torch.Tensor:
    """``v - vth r[t]`` for ``subtract_delayed`` (then clipped below at ``low`` in fixed point); else ``v``."""
    if reset != "subtract_delayed":
        return v
    v = v - fired.to(v.dtype) * vth
    return v if low is None else v.clamp(min=low)


def threshold(v: torch.Tensor, fired: torch.Tensor | None, vth, reset: str) -> torch.Tensor:
    """This step's spikes ``s[t]``; for ``subtract`` tested on ``v - vth r[t]``, as snnTorch does."""
    if reset == "subtract":
        return v - fired.to(v.dtype) * vth > vth
    return v > vth


def after_spike(v: torch.Tensor, s: torch.Tensor, vth, reset: str) -> torch.Tensor:
    """The voltage after this step's spikes ``s``, by reset mode (``subtract_delayed``, ``none``: unchanged)."""
    if reset == "zero":
        return v.masked_fill(s, 0)
    if reset == "subtract":
        return v - s.to(v.dtype) * vth
    return v
