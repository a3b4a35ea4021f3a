"""Models written the ordinary way, as researchers write them: their own time loop, the frameworks' neurons
at their defaults, their own binning, stock or hand-written dense blocks. Nothing here knows neurodeploy.

Each ``make_*`` function is a CLI factory: it returns ``(model, example inputs, dt_s)``.
"""
from __future__ import annotations

import torch
from torch import nn


def _scale_synapses(model: nn.Module, factor: float, skip: tuple[str, ...] = ("head",)) -> nn.Module:
    """Stronger synaptic weights, so the small untrained networks spike (a stand-in for training)."""
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)) and not name.startswith(skip):
                module.weight.mul_(factor)
    return model.eval()


class LoopTransformer(nn.Module):
    """(B, T, 8): a Python loop over snnTorch Leaky at its defaults, ``view(B, L, K, N).mean(2)``, a stock
    nn.TransformerEncoder and a head."""

    def __init__(self, n_in: int = 8, hidden: int = 16, k: int = 4, classes: int = 3) -> None:
        super().__init__()
        import snntorch as snn

        self.fc1, self.lif1 = nn.Linear(n_in, hidden), snn.Leaky(beta=0.9)
        self.fc2, self.lif2 = nn.Linear(hidden, hidden), snn.Leaky(beta=0.8)
        layer = nn.TransformerEncoderLayer(d_model=hidden, nhead=2, dim_feedforward=32, batch_first=True, dropout=0.0)
        self.encoder = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)
        self.head, self.k = nn.Linear(hidden, classes), k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        spikes = []
        for t in range(x.shape[1]):
            s1, mem1 = self.lif1(self.fc1(x[:, t]), mem1)
            s2, mem2 = self.lif2(self.fc2(s1), mem2)
            spikes.append(s2)
        s = torch.stack(spikes, dim=1)
        b, steps, n = s.shape
        return self.head(self.encoder(s.view(b, steps // self.k, self.k, n).mean(2)))


class ConvGRU(nn.Module):
    """(T, B, 2, 8, 8) events, time-major: a norse LIFCell conv front-end and an nn.GRU after the cut."""

    def __init__(self) -> None:
        super().__init__()
        import norse.torch as norse

        p = norse.LIFParameters(v_th=torch.tensor(0.2))
        self.conv, self.pool, self.lif1 = nn.Conv2d(2, 4, 3, padding=1), nn.AvgPool2d(2), norse.LIFCell(p)
        self.flat, self.fc, self.lif2 = nn.Flatten(), nn.Linear(4 * 4 * 4, 12), norse.LIFCell(p)
        self.gru, self.head = nn.GRU(12, 16), nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = s2 = None
        out = []
        for t in range(x.shape[0]):
            z1, s1 = self.lif1(self.pool(self.conv(x[t])), s1)
            z2, s2 = self.lif2(self.fc(self.flat(z1)), s2)
            out.append(z2)
        h, _ = self.gru(torch.stack(out))
        return self.head(h[-1])


class SynapticScan(nn.Module):
    """(B, T, 8): snnTorch Synaptic at its defaults, then a hand-written selective scan (input-dependent decay)."""

    def __init__(self, n: int = 8, d: int = 12) -> None:
        super().__init__()
        import snntorch as snn

        self.fc1, self.syn1 = nn.Linear(n, d), snn.Synaptic(alpha=0.7, beta=0.85)
        self.proj, self.gate, self.head = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        syn, mem = self.syn1.init_synaptic()
        spikes = []
        for t in range(x.shape[1]):
            s, syn, mem = self.syn1(self.fc1(x[:, t]), syn, mem)
            spikes.append(s)
        s = torch.stack(spikes, 1)
        a, u = torch.sigmoid(self.gate(s)), self.proj(s)
        h, hs = torch.zeros_like(u[:, 0]), []
        for t in range(s.shape[1]):
            h = a[:, t] * h + (1 - a[:, t]) * u[:, t]
            hs.append(h)
        return self.head(torch.stack(hs, 1))


class WithMaxPool(nn.Module):
    """A conv front-end with max pooling between two spiking layers: Loihi cannot run it."""

    def __init__(self) -> None:
        super().__init__()
        import snntorch as snn

        self.conv, self.lif1, self.pool = nn.Conv2d(2, 4, 3, padding=1), snn.Leaky(beta=0.9), nn.MaxPool2d(2)
        self.fc, self.lif2, self.head = nn.Linear(64, 8), snn.Leaky(beta=0.9), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m1, m2, out = self.lif1.init_leaky(), self.lif2.init_leaky(), []
        for t in range(x.shape[1]):
            s1, m1 = self.lif1(self.conv(x[:, t]), m1)
            s2, m2 = self.lif2(self.fc(self.pool(s1).flatten(1)), m2)
            out.append(s2)
        return self.head(torch.stack(out, 1).mean(1))


def _spikes(*shape: int, seed: int = 0) -> torch.Tensor:
    return (torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) < 0.4).float()


def make_loop_transformer():
    torch.manual_seed(0)
    return _scale_synapses(LoopTransformer(), 3.0), _spikes(2, 16, 8), 1e-3


def make_conv_gru():
    torch.manual_seed(0)
    return _scale_synapses(ConvGRU(), 3.0), _spikes(16, 2, 2, 8, 8), 1e-3


def make_synaptic_scan():
    torch.manual_seed(0)
    return _scale_synapses(SynapticScan(), 3.0, skip=("head", "proj", "gate")), _spikes(2, 16, 8), 1e-3


def make_maxpool():
    torch.manual_seed(0)
    return WithMaxPool().eval(), _spikes(2, 8, 2, 8, 8), 1e-3


class MultiStepJelly(nn.Module):
    """(T, B, 8) in one call: SpikingJelly multi-step LIFNode and IFNode at their defaults (hard reset, tau 2),
    nn.Linear over whole sequences, the time mean as readout, an MLP head."""

    def __init__(self) -> None:
        super().__init__()
        from spikingjelly.activation_based import neuron

        self.fc1, self.lif1 = nn.Linear(8, 16), neuron.LIFNode(step_mode="m")
        self.fc2, self.if2 = nn.Linear(16, 12), neuron.IFNode(step_mode="m")
        self.head = nn.Sequential(nn.Linear(12, 12), nn.ReLU(), nn.Linear(12, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from spikingjelly.activation_based import functional

        functional.reset_net(self)
        s = self.if2(self.fc2(self.lif1(self.fc1(x))))  # (T, B, 12)
        return self.head(s.mean(0))


def make_multistep_jelly():
    torch.manual_seed(0)
    return _scale_synapses(MultiStepJelly(), 2.0), _spikes(16, 2, 8), 1e-3


class LstmAttention(nn.Module):
    """(B, T, 8): snnTorch Leaky at its defaults in a loop, then a stock nn.LSTM and a stock
    nn.MultiheadAttention with a causal mask, read at the last step."""

    def __init__(self) -> None:
        super().__init__()
        import snntorch as snn

        self.fc, self.lif = nn.Linear(8, 12), snn.Leaky(beta=0.9)
        self.lstm = nn.LSTM(12, 16, batch_first=True)
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mem, out = self.lif.init_leaky(), []
        for t in range(x.shape[1]):
            s, mem = self.lif(self.fc(x[:, t]), mem)
            out.append(s)
        h, _ = self.lstm(torch.stack(out, 1))
        mask = torch.triu(torch.ones(h.shape[1], h.shape[1], dtype=torch.bool), 1)
        a, _ = self.attn(h, h, h, attn_mask=mask)
        return self.head(a[:, -1])


def make_lstm_attention():
    torch.manual_seed(0)
    return _scale_synapses(LstmAttention(), 3.0, skip=("head", "lstm", "attn")), _spikes(2, 16, 8), 1e-3
