"""Streaming for the user's own causal dense code (compiler/stepping.py): models captured as written, their
recurrent back-ends (nn.GRU, nn.LSTM, ncps CfC, time-major or batch-first) stepped once per window with
their state carried. Each is compared with the unmodified PyTorch model: the window schedule's output equals
the model's (float, new inputs), the dense part runs once per window, inputs of 2T give the model's output on
2T; Lava in fixed point equals the emulator; the event schedule equals the model's own code on each sample's
salient windows alone (recurrent state, KV caches, the prefix runner), priced on the windows that ran. Causal
code no state carry reproduces streams through the prefix runner (a hand-written scan; GPT-2 behind a
SpikingJelly front-end, from one graph at any length). Code that looks ahead is refused for ``window`` with
why (a bidirectional GRU or encoder named as the module that looks ahead) and still runs ``end``."""
from __future__ import annotations

import numpy as np
import pytest
import snntorch as snn
import torch
from conftest import on_salient_windows
from ordinary_models import make_conv_gru, make_lstm_attention, make_synaptic_scan
from torch import nn

import neurodeploy as nd
from neurodeploy.errors import InputShapeError, ScheduleError

T = 8


def leaky_spikes(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The test models' front-end, as a user writes it: ``model.fc -> model.lif`` (snnTorch Leaky) over (B, T, 6)
    in a Python loop; the spikes (B, T, n) stacked. The tests also call it for the model's own spikes."""
    mem, out = model.lif.init_leaky(), []
    for t in range(x.shape[1]):
        spk, mem = model.lif(model.fc(x[:, t]), mem)
        out.append(spk)
    return torch.stack(out, 1)


class LeakyThen(nn.Module):
    """snnTorch ``Linear -> Leaky`` over (B, T, 6) in the model's own loop, then ``back`` over the spikes, a head
    on its last step."""

    def __init__(self, back: nn.Module, width: int):
        super().__init__()
        self.fc, self.lif = nn.Linear(6, 10), snn.Leaky(beta=0.85)
        self.back, self.head = back, nn.Linear(width, 3)

    def forward(self, x):
        h = self.back(leaky_spikes(self, x))[0]
        return self.head(h[:, -1])


def _spikes(batch: int, steps: int, seed: int) -> torch.Tensor:
    return (torch.rand(batch, steps, 6, generator=torch.Generator().manual_seed(seed)) < 0.4).float()


def _model(back: str) -> nn.Module:
    torch.manual_seed(2)
    if back == "gru":
        return LeakyThen(nn.GRU(10, 8, batch_first=True), 8).eval()
    if back == "lstm":
        return LeakyThen(nn.LSTM(10, 8, batch_first=True), 8).eval()
    if back == "cfc":
        from ncps.torch import CfC

        return LeakyThen(CfC(10, 8), 8).eval()
    return LeakyThen(nn.GRU(10, 8, batch_first=True, bidirectional=True), 16).eval()


EVENT = 4  # cut spikes per window that wake the dense part
WAKE = {"gru": 4, "lstm": 2, "cfc": 1}  # the same for the recurrent models' bundles (their cuts fire 0-7, 0-3, 0-4)
EXIT = {"gru": 0.36, "lstm": 0.397, "cfc": 0.42}  # softmax confidence that ends a sample (early and late exits)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    out = {}
    for back in ("gru", "lstm", "cfc", "bidirectional"):
        model = _model(back)
        thresholds = {"event_threshold": WAKE[back], "exit_threshold": EXIT[back]} if back in EXIT else {}
        out[back] = model, nd.compile(model, tmp_path_factory.mktemp(back) / "b", inputs=_spikes(4, T, 0), dt_s=1e-3,
                                      **thresholds)
    return out


@pytest.mark.parametrize("back", ["gru", "lstm", "cfc"])
def test_window_schedule_streams_a_recurrent_back_end_as_the_model(bundles, back):
    model, bundle = bundles[back]
    d = bundle.manifest.dense
    assert d.schedules[:2] == ["end", "window"] and d.window_steps == T // 4 and d.step_output == "last"
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


@pytest.mark.parametrize("back", ["gru", "lstm", "cfc"])
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


@pytest.mark.parametrize("back", ["gru", "lstm", "cfc"])
def test_event_schedule_runs_the_recurrence_on_salient_windows_only(bundles, back):
    """Equal to the model's own recurrence and head run on the salient windows alone (its state passes quiet
    windows unchanged), the output held over quiet windows (zeros before the first salient one)."""
    model, bundle = bundles[back]
    assert bundle.manifest.dense.schedules == ["end", "window", "event"] and bundle.manifest.default_schedule == "end"
    x = _spikes(12, T, 8)
    got = nd.cosimulate(bundle, x.numpy(), model=model, backend="emulator", schedule="event")
    k = T // 4
    with torch.no_grad():
        cut = leaky_spikes(model, x)
    want, invocations = on_salient_windows(lambda s: model.head(model.back(s)[0][:, -1]), cut, k, WAKE[back], 3)
    assert got.agreement.spike_mismatches == 0 and got.agreement.max_abs_err is None  # the model has no event form
    assert 0 < invocations < 12 * 4 and got.dense_invocations == invocations
    assert np.abs(got.y - want).max() < 1e-4
    # priced on the windows that ran: the step model's work per window times the salient windows per sample
    from neurodeploy.cost.macs import count_steps

    one = count_steps(bundle.path / bundle.manifest.dense.step_file, (k, 10), 1).macs
    priced = nd.estimate(bundle, got).figures["macs"]["total"]
    assert priced == pytest.approx(one * invocations / 12, rel=1e-9)
    assert priced < nd.estimate(bundle, nd.cosimulate(bundle, x.numpy(), backend="emulator", schedule="window")
                                ).figures["macs"]["total"]


@pytest.mark.parametrize("back", ["gru", "lstm", "cfc"])
def test_early_exits_end_each_sample_at_its_first_confident_window(bundles, back):
    """The exit window and output equal the model's own outputs on the first windows of its input (its output
    had the sample ended there); the priced run is cut there."""
    model, bundle = bundles[back]
    x = _spikes(12, T, 10)
    got = nd.cosimulate(bundle, x.numpy(), model=model, backend="emulator", schedule="window", early_exit=True)
    with torch.no_grad():
        prefix = torch.stack([model(x[:, : (w + 1) * (T // 4)]) for w in range(4)], 1)  # (B, L, 3)
    confident = torch.softmax(prefix, -1).max(-1).values >= EXIT[back]
    exits = torch.where(confident.any(1), confident.int().argmax(1), torch.full((12,), 3)).numpy()
    assert np.array_equal(got.exit_windows, exits) and 0 < exits.mean() < 3
    assert np.abs(got.y - prefix[np.arange(12), exits].numpy()).max() < 1e-4
    saved = nd.estimate(bundle, got).figures["early_exit"]["energy_j"]
    assert 0 < saved["with_exits"] < saved["full"]


def test_thresholds_apply_only_where_the_models_own_code_streams(bundles, tmp_path):
    model, _ = bundles["bidirectional"]
    with pytest.raises(nd.NeurodeployError, match="apply to a captured model whose own dense code streams.*looks ahead"):
        nd.compile(model, tmp_path / "b", inputs=_spikes(4, T, 0), dt_s=1e-3, event_threshold=2)


def test_causal_attention_streams_with_a_kv_cache(tmp_path):
    """An LSTM then a stock causal nn.MultiheadAttention read at the last step: the LSTM's (h, c) and the
    attention's keys and values so far (a cache that grows by a window each step) are carried; equal to the
    unmodified model on new inputs and on 2T, every window of the batch in one ONNX Runtime call."""
    model, x, dt = make_lstm_attention()
    bundle = nd.compile(model, tmp_path / "b", inputs=x, dt_s=dt)
    d = bundle.manifest.dense
    assert d.step_derivation == "state carry: lstm (LSTM), attn (MultiheadAttention)" and d.growing_states
    new = (torch.rand(5, x.shape[1], 8, generator=torch.Generator().manual_seed(4)) < 0.3).float()
    for inputs in (new, torch.cat([new, new.flip(0)], 1)):
        got = nd.cosimulate(bundle, inputs.numpy(), model=model, backend="emulator", schedule="window")
        with torch.no_grad():
            assert np.abs(got.y - model(inputs).numpy()).max() < 1e-4
        windows = inputs.shape[1] // d.window_steps
        assert got.dense_invocations == 5 * windows and got.timeline["dense_calls"] == windows


class LeakyScan(nn.Module):
    """snnTorch ``Linear -> Leaky``, then a hand-written selective scan whose state is a local variable of the
    model's own loop, a head on its last state: causal, but no module holds its state."""

    def __init__(self):
        super().__init__()
        self.fc, self.lif = nn.Linear(6, 10), snn.Leaky(beta=0.85)
        self.gate, self.proj, self.head = nn.Linear(10, 8), nn.Linear(10, 8), nn.Linear(8, 3)

    def forward(self, x):
        return self.scan(leaky_spikes(self, x))

    def scan(self, s):
        a, u = torch.sigmoid(self.gate(s)), self.proj(s)
        h = torch.zeros_like(u[:, 0])
        for t in range(s.shape[1]):
            h = a[:, t] * h + (1 - a[:, t]) * u[:, t]
        return self.head(h)


def test_the_prefix_runner_streams_a_hand_written_scan_exactly(tmp_path):
    """No state carry reproduces a scan kept in a local variable, so without the prefix runner it runs end (and
    says how to stream it); with it, its own code is re-run on the windows so far (one ONNX graph per number of
    windows up to 2L: its Python loop fixes the length), equal to the model on new inputs of T and 2T, priced
    as the sum of those runs; on the event schedule, the scan on the salient windows alone."""
    torch.manual_seed(1)
    model = LeakyScan().eval()
    plain = nd.compile(model, tmp_path / "plain", inputs=_spikes(4, T, 0), dt_s=1e-3)
    why = plain.manifest.dense.no_step_reason
    assert plain.manifest.dense.schedules == ["end"] and "no recurrent module" in why and \
        "it is causal: compile with prefix_runner=True (--prefix-runner)" in why
    bundle = nd.compile(model, tmp_path / "b", inputs=_spikes(4, T, 0), dt_s=1e-3, prefix_runner=True,
                        event_threshold=EVENT, exit_threshold=0.5)
    d = bundle.manifest.dense
    assert d.schedules == ["end", "window", "event"] and not d.prefix_any_length
    assert d.prefix_files[3] == "dense.onnx" and len(d.prefix_files) == 8
    assert d.step_derivation.startswith("prefix runner") and d.step_file is None
    for steps, seed in ((T, 4), (2 * T, 6)):
        new = _spikes(5, steps, seed)
        with torch.no_grad():
            want = model(new).numpy()
        got = nd.cosimulate(bundle, new.numpy(), model=model, backend="emulator", schedule="window")
        assert np.abs(got.y - want).max() < 1e-4 and got.dense_invocations == 5 * steps // (T // 4)
    with pytest.raises(InputShapeError, match=f"at most {2 * T}"):
        nd.cosimulate(bundle, np.concatenate([new.numpy()] * 2, 1), backend="emulator", schedule="window")
    new = _spikes(5, T, 4)
    priced = nd.estimate(bundle, nd.cosimulate(bundle, new.numpy(), backend="emulator", schedule="window")).figures
    end = nd.estimate(bundle, nd.cosimulate(bundle, new.numpy(), backend="emulator", schedule="end")).figures
    assert priced["macs"]["total"] > end["macs"]["total"]  # windows 1..4 re-run: more work than one pass
    assert any("prefix runner" in n for n in priced["notes"])
    x = _spikes(12, 2 * T, 9)
    event = nd.cosimulate(bundle, x.numpy(), backend="emulator", schedule="event")
    with torch.no_grad():
        cut = leaky_spikes(model, x)
    want, ran = on_salient_windows(model.scan, cut, T // 4, EVENT, 3)
    assert 0 < ran < 12 * 8 and event.dense_invocations == ran and np.abs(event.y - want).max() < 1e-4
    exits = nd.cosimulate(bundle, new.numpy(), model=model, backend="emulator", schedule="window", early_exit=True)
    with torch.no_grad():
        prefix = torch.stack([model(new[:, : (w + 1) * (T // 4)]) for w in range(4)], 1)
    assert np.abs(exits.y - prefix[np.arange(5), exits.exit_windows].numpy()).max() < 1e-4


def test_an_output_per_step_is_refused_with_why(tmp_path):
    """A hand-written scan read at every step: its output grows with the length."""
    model, x, dt = make_synaptic_scan()
    bundle = nd.compile(model, tmp_path / "b", inputs=x, dt_s=dt, prefix_runner=True)
    assert bundle.manifest.dense.schedules == ["end"]
    assert "its output grows with the length" in bundle.manifest.dense.no_step_reason


class LeakyEncoder(nn.Module):
    """snnTorch ``Linear -> Leaky`` then a stock nn.TransformerEncoder, with a causal mask or without one (every
    token attends to every other: a bidirectional encoder), a head on its last token."""

    def __init__(self, causal: bool = False, layers: int = 1):
        super().__init__()
        self.fc, self.lif, self.causal = nn.Linear(6, 8), snn.Leaky(beta=0.85), causal
        layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        self.encoder, self.head = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False), nn.Linear(8, 3)

    def forward(self, x):
        return self.dense(leaky_spikes(self, x))

    def dense(self, s):
        if not self.causal:
            return self.head(self.encoder(s)[:, -1])
        mask = nn.Transformer.generate_square_subsequent_mask(s.shape[1])
        return self.head(self.encoder(s, mask=mask, is_causal=True)[:, -1])


def test_a_causal_transformer_encoder_streams_with_a_kv_cache(tmp_path):
    """Two stock encoder layers with a causal mask: each layer's self-attention caches its inputs so far (its
    fused fast path kept off, so the cache is used); equal to the model on T and 2T; on the event schedule, the
    encoder on each sample's salient windows alone (samples whose caches are as long step together); early
    exits at the model's own output on the first windows."""
    torch.manual_seed(3)
    model = LeakyEncoder(causal=True, layers=2).eval()
    bundle = nd.compile(model, tmp_path / "b", inputs=_spikes(4, T, 0), dt_s=1e-3, event_threshold=2,
                        exit_threshold=0.5)  # its cut fires 0-2 spikes per window
    assert bundle.manifest.dense.step_derivation == ("state carry: encoder.layers.0.self_attn (MultiheadAttention), "
                                                     "encoder.layers.1.self_attn (MultiheadAttention)")
    for steps in (T, 2 * T):
        x = _spikes(5, steps, steps)
        got = nd.cosimulate(bundle, x.numpy(), model=model, backend="emulator", schedule="window")
        with torch.no_grad():
            assert np.abs(got.y - model(x).numpy()).max() < 1e-4 and got.dense_invocations == 5 * steps // 2
    x = _spikes(12, 2 * T, 9)
    event = nd.cosimulate(bundle, x.numpy(), backend="emulator", schedule="event")
    with torch.no_grad():
        cut = leaky_spikes(model, x)
    want, ran = on_salient_windows(model.dense, cut, T // 4, 2, 3)
    assert 0 < ran < 12 * 8 and event.dense_invocations == ran and np.abs(event.y - want).max() < 1e-4
    assert nd.estimate(bundle, event).figures["macs"]["total"] < nd.estimate(
        bundle, nd.cosimulate(bundle, x.numpy(), backend="emulator", schedule="window")).figures["macs"]["total"]
    x = _spikes(6, T, 11)
    exits = nd.cosimulate(bundle, x.numpy(), model=model, backend="emulator", schedule="window", early_exit=True)
    with torch.no_grad():
        prefix = torch.stack([model(x[:, : (w + 1) * (T // 4)]) for w in range(4)], 1)
    assert np.abs(exits.y - prefix[np.arange(6), exits.exit_windows].numpy()).max() < 1e-4


def test_a_bidirectional_encoder_is_refused_naming_its_attention(tmp_path):
    """Even with the prefix runner asked for: its first window's outputs change when later windows do."""
    torch.manual_seed(3)
    model = LeakyEncoder(layers=2).eval()  # one layer read at its last token would stream exactly: it sees all
    bundle = nd.compile(model, tmp_path / "b", inputs=_spikes(4, T, 0), dt_s=1e-3, prefix_runner=True)
    assert bundle.manifest.dense.schedules == ["end"] and not bundle.manifest.dense.prefix_files
    assert "encoder.layers.0.self_attn (MultiheadAttention) looks ahead" in bundle.manifest.dense.no_step_reason
    with pytest.raises(ScheduleError, match=r"self_attn \(MultiheadAttention\) looks ahead"):
        nd.cosimulate(bundle, _spikes(2, T, 1).numpy(), backend="emulator", schedule="window")


class JellyGPT2(nn.Module):
    """A SpikingJelly multi-step front-end (``layer.Linear -> neuron.LIFNode``, ``step_mode="m"``, time-major
    (T, B, 6)), a projection into Hugging Face's GPT2Model through inputs_embeds (causal attention), a head on
    its last hidden state."""

    def __init__(self):
        super().__init__()
        from spikingjelly.activation_based import layer, neuron
        from transformers import GPT2Config, GPT2Model

        self.fc, self.lif = layer.Linear(6, 10, step_mode="m"), neuron.LIFNode(tau=2.0, step_mode="m")
        self.proj, self.head = nn.Linear(10, 16), nn.Linear(16, 3)
        self.gpt = GPT2Model(GPT2Config(n_embd=16, n_layer=1, n_head=2, n_positions=64, vocab_size=8, bos_token_id=0,
                                        eos_token_id=0, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))

    def forward(self, x):
        return self.dense(self.lif(self.fc(x)).transpose(0, 1))

    def dense(self, s):
        return self.head(self.gpt(inputs_embeds=self.proj(s)).last_hidden_state[:, -1])


def test_hugging_face_gpt2_behind_spikingjelly_streams_at_any_length(tmp_path):
    """No Python loop over the steps before the cut (SpikingJelly's multi-step neuron is Loihi's): GPT-2 exports
    with its length free, one graph serves every number of windows (T, 3T), equal to the unmodified model;
    the event schedule runs it on each sample's salient windows alone; early exits at its own output on the
    first windows."""
    from spikingjelly.activation_based import functional

    torch.manual_seed(0)
    model = JellyGPT2().eval()
    with torch.no_grad():
        model.fc.weight.mul_(3.0)
    bundle = nd.compile(model, tmp_path / "b", inputs=_spikes(4, T, 0).transpose(0, 1), dt_s=1e-3,
                        prefix_runner=True, event_threshold=EVENT, exit_threshold=0.4)
    d = bundle.manifest.dense
    assert d.step_derivation.startswith("prefix runner") and d.prefix_any_length and d.prefix_files == ["dense_prefix.onnx"]
    for steps, seed in ((T, 3), (3 * T, 5)):
        x = _spikes(5, steps, seed).transpose(0, 1)
        got = nd.cosimulate(bundle, x.numpy(), backend="emulator", schedule="window")
        functional.reset_net(model)
        with torch.no_grad():
            assert np.abs(got.y - model(x).numpy()).max() < 1e-4 and got.dense_invocations == 5 * steps // (T // 4)
    x = _spikes(12, T, 9).transpose(0, 1)
    event = nd.cosimulate(bundle, x.numpy(), backend="emulator", schedule="event")
    functional.reset_net(model)
    with torch.no_grad():
        cut = model.lif(model.fc(x)).transpose(0, 1)
    want, ran = on_salient_windows(model.dense, cut, T // 4, EVENT, 3)
    assert 0 < ran < 12 * 4 and event.dense_invocations == ran and np.abs(event.y - want).max() < 1e-4
    exits = nd.cosimulate(bundle, x.numpy(), backend="emulator", schedule="window", early_exit=True)
    with torch.no_grad():
        prefix = torch.stack([model.dense(cut[:, : (w + 1) * (T // 4)]) for w in range(4)], 1)
    assert np.abs(exits.y - prefix[np.arange(12), exits.exit_windows].numpy()).max() < 1e-4


def test_the_command_line_runs_event_and_early_exits_on_a_captured_bundle(bundles, capsys):
    import json

    from neurodeploy.cli import main

    _, bundle = bundles["gru"]
    assert main(["cosim", str(bundle.path), "--schedule", "event", "--backend", "emulator", "--json"]) == 0
    event = json.loads(capsys.readouterr().out)
    assert event["schedule"] == "event" and 0 < event["dense_invocations"] < 4 * 4  # its 4 example samples
    assert main(["energy", str(bundle.path), "--schedule", "window", "--early-exit", "--json"]) == 0
    exits = json.loads(capsys.readouterr().out)["early_exit"]
    assert 0 < exits["energy_j"]["with_exits"] <= exits["energy_j"]["full"]
