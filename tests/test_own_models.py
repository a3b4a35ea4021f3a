"""Models written the ordinary way, deployed as they are: any forward argument name, several modules after
the cut, norse neurons at norse's default dt, and agreement with the unmodified model on any input.

Each reference is the user's own PyTorch model run on inputs that were not used to compile it.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import neurodeploy as nd
from neurodeploy.errors import PartitionError
from neurodeploy.models.adapters import RateAdapter
from neurodeploy.models.neurons import LIFCell


class Head(nn.Module):
    """A hand-written head whose forward names its argument ``x`` (not ``spikes``)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.proj, self.out = nn.Linear(n_in, 16), nn.Linear(16, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.proj(x)))


def _new_inputs(shape: tuple[int, ...], seed: int, rate: float = 0.3) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) < rate).astype(np.float64)


def test_several_modules_after_the_cut_with_any_argument_name(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 12), LIFCell(12, du=0.5, dv=0.2, vth=0.5), nn.Linear(12, 8),
                          LIFCell(8, dv=0.3, vth=0.5), RateAdapter(4), nn.Linear(8, 8), nn.ReLU(), Head(8, 3))
    with torch.no_grad():
        model[0].weight.mul_(3.0)
        model[2].weight.mul_(3.0)
    bundle = nd.compile(model, tmp_path / "b", inputs=torch.as_tensor(_new_inputs((2, 16, 6), 1)))
    placed = {p.module: p.device for p in bundle.manifest.placement}
    assert placed == {"0": "loihi", "1": "loihi", "2": "loihi", "3": "loihi", "4": "gpu", "5": "gpu", "6": "gpu",
                      "7.proj": "gpu", "7.out": "gpu"}
    x = _new_inputs((4, 24, 6), 2)  # another batch and another length than the compile example
    result = nd.cosimulate(bundle, x, model=model)
    assert result.agreement.spike_mismatches == 0 and result.agreement.max_abs_err < 1e-5
    assert sum(s.sum() for s in result.spikes.values()) > 0


def test_agreement_on_any_input_against_the_model_at_hand(mamba_bundle):
    bundle = nd.load(mamba_bundle)  # nd.compile("tiny_mamba", ...), once per session
    x = _new_inputs((3, 32, 16), 5, 0.25)
    result = nd.cosimulate(bundle, x, backend="emulator")  # the zoo model named in the bundle
    assert result.agreement is not None and result.agreement.spike_mismatches == 0
    assert result.agreement.max_abs_err < 1e-5
    other = bundle.manifest.provenance["model"]
    from neurodeploy.models import zoo

    wrong = zoo.get(other).build()
    with torch.no_grad():
        next(wrong.parameters()).mul_(1.5)  # not the deployed model: the comparison must see it
    assert nd.cosimulate(bundle, x, backend="emulator", model=wrong).agreement.spike_mismatches > 0


def test_norse_lif_box_at_norse_default_dt(tmp_path):
    norse = pytest.importorskip("norse.torch")
    torch.manual_seed(3)
    p = norse.LIFBoxParameters(v_th=torch.tensor(0.3))
    model = nn.Sequential(nn.Linear(6, 12), norse.LIFBoxCell(p), nn.Linear(12, 8), norse.LIFBoxCell(p),
                          RateAdapter(4), Head(8, 2))
    with torch.no_grad():
        model[0].weight.mul_(6.0)
        model[2].weight.mul_(6.0)
    assert float(model[1].dt) == 1e-3  # norse's default, which the compile default matches
    bundle = nd.compile(model, tmp_path / "n", inputs=torch.as_tensor(_new_inputs((2, 16, 6), 7)))
    result = nd.cosimulate(bundle, _new_inputs((3, 20, 6), 8), model=model)
    assert result.agreement.spike_mismatches == 0 and result.agreement.max_abs_err < 1e-5
    assert result.spikes["1"].sum() > 0 and result.spikes["3"].sum() > 0
    with pytest.raises(PartitionError, match=r"1: norse LIFBoxCell dt=0.001 s differs .* dt_s=0.001"):
        nd.compile(model, tmp_path / "n2", inputs=torch.as_tensor(_new_inputs((2, 16, 6), 7)), dt_s=1e-4)


def test_norse_lif_cell_runs_as_norse_runs_it(tmp_path):
    """norse's current-based LIFCell at its defaults (dt 1e-3, tau_syn 5 ms, tau_mem 10 ms), stepped by norse."""
    norse = pytest.importorskip("norse.torch")
    torch.manual_seed(4)
    p = norse.LIFParameters(v_th=torch.tensor(0.3))
    model = nn.Sequential(nn.Linear(6, 12), norse.LIFCell(p), nn.Linear(12, 8), norse.LIFCell(p), RateAdapter(4),
                          Head(8, 2))
    with torch.no_grad():
        model[0].weight.mul_(4.0)
        model[2].weight.mul_(4.0)
    bundle = nd.compile(model, tmp_path / "c", inputs=torch.as_tensor(_new_inputs((2, 16, 6), 9)))
    x = _new_inputs((3, 24, 6), 10)
    result = nd.cosimulate(bundle, x, model=model)
    assert result.agreement.spike_mismatches == 0 and result.agreement.max_abs_err < 1e-5
    assert result.spikes["1"].sum() > 0 and result.spikes["3"].sum() > 0
    fixed = [nd.cosimulate(bundle, x, mode="fixed", backend=b).spikes for b in ("lava", "emulator")]
    assert all(np.array_equal(fixed[0][k], fixed[1][k]) for k in fixed[0])
    leaky = nn.Sequential(nn.Linear(6, 4), norse.LIFCell(norse.LIFParameters(v_leak=torch.tensor(0.1))),
                          RateAdapter(4), Head(4, 2))
    with pytest.raises(PartitionError, match="v_leak != 0 starts v at v_leak"):
        nd.compile(leaky, tmp_path / "d", inputs=torch.as_tensor(_new_inputs((2, 8, 6), 9)))
