"""Streaming for the user's own causal dense code (compiler/stepping.py): models captured as written, their
recurrent back-ends (nn.GRU, nn.LSTM, ncps CfC, time-major or batch-first) stepped once per window with
their state carried. Each is compared with the unmodified PyTorch model: the window schedule's output equals
the model's (float, new inputs), the dense part runs once per window, inputs of 2T give the model's output on
2T; Lava in fixed point equals the emulator. Code that a state carry cannot stream is refused for ``window``
with why (a bidirectional GRU named as the module that looks ahead) and still runs ``end``."""
from __future__ import annotations

import numpy as np
import pytest
import snntorch as snn
import torch
from ordinary_models import make_conv_gru
from torch import nn

import neurodeploy as nd
from neurodeploy.errors import InputShapeError, ScheduleError

T = 8


class LeakyThen(nn.Module):
    """snnTorch ``Linear -> Leaky`` over (B, T, 6) in the model's own loop, then ``back`` over the spikes, a head
    on its last step."""

    def __init__(self, back: nn.Module, width: int):
        super().__init__()
        self.fc, self.lif = nn.Linear(6, 10), snn.Leaky(beta=0.85)
        self.back, self.head = back, nn.Linear(width, 3)

    def forward(self, x):
        mem, out = self.lif.init_leaky(), []
        for t in range(x.shape[1]):
            spk, mem = self.lif(self.fc(x[:, t]), mem)
            out.append(spk)
        h = self.back(torch.stack(out, 1))[0]
        return self.head(h[:, -1])


def _spikes(batch: int, steps: int, seed: int) -> torch.Tensor:
    return (torch.rand(batch, steps, 6, generator=torch.Generator().manual_seed(seed)) < 0.4).float()


def _model(back: str) -> nn.Module:
    torch.manual_seed(2)
    if back == "gru":
        return LeakyThen(nn.GRU(10, 8, batch_first=True), 8).eval()
    if back == "cfc":
        from ncps.torch import CfC

        return LeakyThen(CfC(10, 8), 8).eval()
    return LeakyThen(nn.GRU(10, 8, batch_first=True, bidirectional=True), 16).eval()


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    out = {}
    for back in ("gru", "cfc", "bidirectional"):
        model = _model(back)
        out[back] = model, nd.compile(model, tmp_path_factory.mktemp(back) / "b", inputs=_spikes(4, T, 0), dt_s=1e-3)
    return out


@pytest.mark.parametrize("back", ["gru", "cfc"])
def test_window_schedule_streams_a_recurrent_back_end_as_the_model(bundles, back):
    model, bundle = bundles[back]
    d = bundle.manifest.dense
    assert d.schedules == ["end", "window"] and d.window_steps == T // 4 and d.step_output == "last"
    assert d.step_derivation == f"state carry: back ({type(model.back).__name__})"
    assert max(p.max_abs_err for p in d.step_parity) < 1e-5 and [p.shape[1] for p in d.step_parity] == [T, 2 * T]
    x = _spikes(16, T, 5)
    with torch.no_grad():
        want = model(x).numpy()
    end = nd.cosimulate(bundle, x.numpy(), model=model, backend="emulator", schedule="end")
    window = nd.cosimulate(bundle, x.numpy(), model=model, backend="emulator", schedule="window")
    assert window.y.shape == want.shape and np.abs(window.y - want).max() < 1e-4
    assert window.agreement.spike_mismatches == 0 and np.abs(window.y - end.y).max() < 1e-5
    assert (end.dense_invocations, window.dense_invocations) == (16, 16 * 4)  # once per sample; once per window
    timeline = window.timeline["windows"]
    assert len(timeline) == 16 * 4 and window.timeline["dense_calls"] == 4  # each window of all 16 in one call


@pytest.mark.parametrize("back", ["gru", "cfc"])
def test_inputs_of_twice_the_compiled_length_stream_to_the_models_output(bundles, back):
    model, bundle = bundles[back]
    x = _spikes(5, 2 * T, 6)
    with torch.no_grad():
        want = model(x).numpy()
    got = nd.cosimulate(bundle, x.numpy(), model=model, backend="emulator", schedule="window")
    assert np.abs(got.y - want).max() < 1e-4 and got.dense_invocations == 5 * 8
    with pytest.raises(InputShapeError, match="on the end schedule.*window schedule runs any multiple of 2"):
        nd.cosimulate(bundle, x.numpy(), backend="emulator", schedule="end")


def test_lava_fixed_point_streams_as_the_emulator(bundles):
    model, bundle = bundles["gru"]
    x = _spikes(2, T, 7).numpy()
    lava = nd.cosimulate(bundle, x, mode="fixed", backend="lava", schedule="window")
    emulated = nd.cosimulate(bundle, x, mode="fixed", backend="emulator", schedule="window")
    assert all(np.array_equal(lava.spikes[k], emulated.spikes[k]) for k in lava.spikes)
    assert np.abs(lava.y - emulated.y).max() < 1e-5 and lava.dense_invocations == 2 * 4


def test_a_time_major_conv_gru_streams(tmp_path):
    """norse's conv LIFCell front-end over (T, B, 2, 8, 8) and a batch-second nn.GRU (its state (1, B, H))."""
    model, x, dt = make_conv_gru()
    bundle = nd.compile(model, tmp_path / "b", inputs=x, dt_s=dt)
    assert "window" in bundle.manifest.dense.schedules, bundle.manifest.dense.no_step_reason
    new = (torch.rand(x.shape[0], 6, *x.shape[2:], generator=torch.Generator().manual_seed(9)) < 0.3).float()
    with torch.no_grad():
        want = model(new).numpy()
    got = nd.cosimulate(bundle, new.numpy(), model=model, backend="emulator", schedule="window")
    assert got.agreement.spike_mismatches == 0 and np.abs(got.y - want).max() < 1e-4


def test_a_bidirectional_gru_is_refused_for_window_by_name_and_runs_end(bundles):
    model, bundle = bundles["bidirectional"]
    d = bundle.manifest.dense
    assert d.schedules == ["end"] and d.step_file is None
    assert "back (GRU) looks ahead" in d.no_step_reason
    with pytest.raises(ScheduleError, match=r"no step model could be derived.*back \(GRU\) looks ahead"):
        nd.cosimulate(bundle, _spikes(2, T, 1).numpy(), backend="emulator", schedule="window")
    x = _spikes(4, T, 3)
    got = nd.cosimulate(bundle, x.numpy(), model=model, backend="emulator")
    with torch.no_grad():
        assert got.schedule == "end" and np.abs(got.y - model(x).numpy()).max() < 1e-4
