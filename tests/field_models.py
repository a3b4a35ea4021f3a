"""The field's own models, as their authors write them: Conv -> BatchNorm -> LIF blocks over multi-step
tensors (SpikingJelly's own Spikformer, ``SeqToANNContainer``, ``step_mode='m'`` layers), and snnTorch's
tutorial CSNN with BatchNorm and a functional max pool. Nothing here knows neurodeploy.

Each ``make_*`` function is a CLI factory: it returns ``(model, example inputs, dt_s)``. The models are
untrained; their BatchNorms take the statistics of the example data, as training would leave them
(running statistics of the data, then eval mode), so that their neurons spike.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _spikes(*shape: int, seed: int = 0, rate: float = 0.3) -> torch.Tensor:
    return (torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) < rate).float()


def _settle_batchnorms(model: nn.Module, x: torch.Tensor, gain: float = 2.0) -> nn.Module:
    """BatchNorm running statistics from ``x`` (one pass in training mode, cumulative average), a gain
    ``gamma`` that makes the neurons fire, then eval mode: a stand-in for training."""
    from spikingjelly.activation_based import functional

    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.reset_running_stats()
            m.momentum = None
            with torch.no_grad():
                m.weight.fill_(gain)
                m.bias.fill_(0.2)
    model.train()
    with torch.no_grad():
        functional.reset_net(model)
        model(x)
        functional.reset_net(model)
    return model.eval()


def make_spikformer():
    """SpikingJelly 2.0's own ``Spikformer`` (SPS stem of Conv-BN-LIF stages with max pooling, spiking
    self-attention, MLP), as its model zoo builds it, on (T, B, 2, 16, 16) events."""
    from spikingjelly.activation_based.model.spikformer import Spikformer

    torch.manual_seed(0)
    model = Spikformer(T=4, in_channels=2, img_size_h=16, img_size_w=16, patch_size=4, num_classes=5,
                       embed_dims=32, num_heads=2, mlp_ratio=2.0, depths=1)
    x = _spikes(4, 4, 2, 16, 16)
    return _settle_batchnorms(model, x), x, 1e-3


class JellyConvBN(nn.Module):
    """SpikingJelly multi-step layers: ``layer.Conv2d -> layer.BatchNorm2d -> LIFNode``, then a
    ``SeqToANNContainer(Conv2d, BatchNorm2d)`` (time folded into the batch) and a second LIFNode, a max pool and
    a Linear readout averaged over time. (T, B, 2, 8, 8)."""

    def __init__(self) -> None:
        super().__init__()
        from spikingjelly.activation_based import layer, neuron

        self.conv1 = layer.Conv2d(2, 8, 3, padding=1, bias=False, step_mode="m")
        self.bn1 = layer.BatchNorm2d(8, step_mode="m")
        self.lif1 = neuron.LIFNode(tau=2.0, step_mode="m")
        self.block2 = layer.SeqToANNContainer(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8))
        self.lif2 = neuron.LIFNode(tau=2.0, step_mode="m")
        self.pool = layer.MaxPool2d(2, step_mode="m")
        self.fc = layer.Linear(8 * 4 * 4, 5, step_mode="m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.lif2(self.block2(self.lif1(self.bn1(self.conv1(x)))))
        return self.fc(self.pool(s).flatten(2)).mean(0)


def make_jelly_conv_bn():
    torch.manual_seed(0)
    x = _spikes(6, 4, 2, 8, 8)
    return _settle_batchnorms(JellyConvBN(), x), x, 1e-3


class SnnTorchCSNN(nn.Module):
    """The snnTorch tutorial CSNN with BatchNorm: ``Conv2d -> BatchNorm2d -> Leaky``, then ``F.max_pool2d`` on a
    convolution of its spikes, a second Leaky, a Linear and a third Leaky; its own loop over (T, B, 1, 12, 12)."""

    def __init__(self) -> None:
        super().__init__()
        import snntorch as snn

        self.conv1, self.bn1, self.lif1 = nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), snn.Leaky(beta=0.9)
        self.conv2, self.lif2 = nn.Conv2d(8, 8, 3, padding=1), snn.Leaky(beta=0.9)
        self.fc, self.lif3 = nn.Linear(8 * 6 * 6, 4), snn.Leaky(beta=0.9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mem1, mem2, mem3 = self.lif1.init_leaky(), self.lif2.init_leaky(), self.lif3.init_leaky()
        out = []
        for t in range(x.shape[0]):
            spk1, mem1 = self.lif1(self.bn1(self.conv1(x[t])), mem1)
            spk2, mem2 = self.lif2(F.max_pool2d(self.conv2(spk1), 2), mem2)
            spk3, mem3 = self.lif3(self.fc(spk2.flatten(1)), mem3)
            out.append(spk3)
        return torch.stack(out).sum(0)


def make_snntorch_csnn():
    torch.manual_seed(0)
    x = _spikes(8, 4, 1, 12, 12)
    model = _settle_batchnorms(SnnTorchCSNN(), x)
    with torch.no_grad():
        model.conv2.weight.mul_(4.0)
        model.fc.weight.mul_(4.0)
    return model, x, 1e-3


class PoolFirst(nn.Module):
    """snnTorch: a convolution, ``F.max_pool2d`` on its currents, then the first Leaky: Loihi cannot run its first
    population. (B, T, 1, 8, 8)."""

    def __init__(self) -> None:
        super().__init__()
        import snntorch as snn

        self.conv, self.lif, self.head = nn.Conv2d(1, 4, 3, padding=1), snn.Leaky(beta=0.9), nn.Linear(64, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mem, out = self.lif.init_leaky(), []
        for t in range(x.shape[1]):
            spk, mem = self.lif(F.max_pool2d(self.conv(x[:, t]), 2), mem)
            out.append(spk)
        return self.head(torch.stack(out, 1).mean(1).flatten(1))


def make_pool_first():
    torch.manual_seed(0)
    return PoolFirst().eval(), _spikes(2, 6, 1, 8, 8), 1e-3


class ConvBNClassifier(nn.Module):
    """snnTorch ``Conv2d -> BatchNorm2d -> Leaky`` over (B, T, 1, 8, 8), a Linear readout summed over time."""

    def __init__(self) -> None:
        super().__init__()
        import snntorch as snn

        self.conv, self.bn, self.lif = nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), snn.Leaky(beta=0.8)
        self.readout = nn.Linear(6 * 8 * 8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mem, total = self.lif.init_leaky(), 0.0
        for t in range(x.shape[1]):
            spk, mem = self.lif(self.bn(self.conv(x[:, t])), mem)
            total = total + self.readout(spk.flatten(1))
        return total


def quadrant_task(n: int, seed: int, steps: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, T, 1, 8, 8) events: one quadrant of each frame fires at rate 0.6, the rest at 0.15; the label is
    that quadrant."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=g)
    rate = torch.full((n, 1, 1, 8, 8), 0.15)
    for k in range(4):
        r, c = divmod(k, 2)
        rate[labels == k, :, :, 4 * r: 4 * r + 4, 4 * c: 4 * c + 4] = 0.6
    return (torch.rand(n, steps, 1, 8, 8, generator=g) < rate).float(), labels


def make_trained_conv_bn(iterations: int = 60):
    """:class:`ConvBNClassifier` trained on :func:`quadrant_task` (BPTT through snnTorch's surrogate)."""
    torch.manual_seed(0)
    model, (x, y) = ConvBNClassifier(), quadrant_task(256, seed=1)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    model.train()
    for i in range(iterations):
        batch = slice(64 * (i % 4), 64 * (i % 4 + 1))
        loss = F.cross_entropy(model(x[batch]), y[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), x[:64], 1e-3


class BranchOnValues(nn.Module):
    """snnTorch Linear -> Leaky, then a Python branch on a tensor's value after the cut: torch.export refuses it."""

    def __init__(self) -> None:
        super().__init__()
        import snntorch as snn

        self.fc, self.lif, self.head = nn.Linear(4, 4), snn.Leaky(beta=0.9), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mem, out = self.lif.init_leaky(), []
        for t in range(x.shape[1]):
            spk, mem = self.lif(self.fc(x[:, t]), mem)
            out.append(spk)
        rate = torch.stack(out, 1).mean(1)
        if rate.sum().item() > 0.5:  # data-dependent Python control flow
            rate = rate * 2
        return self.head(rate)


def make_branch_on_values():
    torch.manual_seed(0)
    return BranchOnValues().eval(), _spikes(3, 6, 4, rate=0.5) * 3, 1e-3


def make_spike_driven_transformer():
    """SpikingJelly 2.0's own ``SpikeDrivenTransformer`` (Spike-driven Transformer v1: Conv-BN-LIF patch
    embedding, membrane shortcuts, spike-driven self-attention ``Q * (K * V)``), as its model zoo builds it, on
    (T, B, 2, 16, 16) events; max pooling after the third and fourth stages."""
    from spikingjelly.activation_based.model.spike_driven_transformer import SpikeDrivenTransformer

    torch.manual_seed(0)
    model = SpikeDrivenTransformer(T=4, in_channels=2, num_classes=5, embed_dims=32, num_heads=2, depths=1,
                                   mlp_ratio=2.0, pooling_stat="0011")
    x = _spikes(4, 4, 2, 16, 16)
    return _settle_batchnorms(model, x), x, 1e-3


class ConvIntoMamba(nn.Module):
    """An snnTorch conv front-end (Conv2d + Leaky on (B, T, 2, 8, 8) events, its own time loop) feeding Hugging
    Face ``MambaModel`` through ``inputs_embeds``, the last step's hidden state to a head."""

    def __init__(self) -> None:
        super().__init__()
        import snntorch as snn
        from transformers import MambaConfig, MambaModel

        self.conv, self.lif = nn.Conv2d(2, 4, 3, padding=1), snn.Leaky(beta=0.9)
        self.proj, self.head = nn.Linear(4 * 8 * 8, 16), nn.Linear(16, 3)
        self.mamba = MambaModel(MambaConfig(hidden_size=16, state_size=4, num_hidden_layers=1, vocab_size=8,
                                            expand=2, conv_kernel=3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(self.spikes(x))

    def spikes(self, x: torch.Tensor) -> torch.Tensor:
        mem, out = self.lif.init_leaky(), []
        for t in range(x.shape[1]):
            spk, mem = self.lif(self.conv(x[:, t]), mem)
            out.append(spk)
        return torch.stack(out, 1)  # (B, T, 4, 8, 8)

    def dense(self, s: torch.Tensor) -> torch.Tensor:
        tokens = self.proj(s.flatten(2))  # (B, T, 16)
        return self.head(self.mamba(inputs_embeds=tokens).last_hidden_state[:, -1])


def make_conv_into_mamba():
    torch.manual_seed(0)
    model = ConvIntoMamba().eval()
    with torch.no_grad():
        model.conv.weight.mul_(3.0)
    return model, _spikes(3, 8, 2, 8, 8), 1e-3


class SEWBlocks(nn.Module):
    """SEW-ResNet-style (spike-element-wise residual ``ADD``, SpikingJelly's ``sew_function``) with
    SpikingJelly multi-step layers: a Conv-BN-IF stem, then a block ``IF(BN(conv(IF(BN(conv(s)))))) + s``,
    global average pooling and a Linear head. (T, B, 2, 8, 8)."""

    def __init__(self) -> None:
        super().__init__()
        from spikingjelly.activation_based import layer, neuron

        def conv_bn(c_in: int, c_out: int) -> list[nn.Module]:
            return [layer.Conv2d(c_in, c_out, 3, padding=1, bias=False, step_mode="m"),
                    layer.BatchNorm2d(c_out, step_mode="m")]

        self.stem = nn.Sequential(*conv_bn(2, 8), neuron.IFNode(step_mode="m"))
        self.block = nn.Sequential(*conv_bn(8, 8), neuron.IFNode(step_mode="m"), *conv_bn(8, 8),
                                   neuron.IFNode(step_mode="m"))
        self.fc = layer.Linear(8, 5, step_mode="m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem(x)
        s = self.block(s) + s  # sew_function(out, identity, "ADD") (its module imports torchvision)
        return self.fc(s.mean((3, 4))).mean(0)


def make_sew_blocks():
    torch.manual_seed(0)
    x = _spikes(4, 4, 2, 8, 8)
    return _settle_batchnorms(SEWBlocks(), x), x, 1e-3


class FunctionalPooling(nn.Module):
    """snnTorch ``Conv2d -> Leaky``, then ``F.avg_pool2d`` on its spikes (a function, not a module),
    ``flatten(1)``, ``Linear -> Leaky`` and a head on the spike counts. (B, T, 2, 8, 8)."""

    def __init__(self) -> None:
        super().__init__()
        import snntorch as snn

        self.conv, self.lif1 = nn.Conv2d(2, 4, 3, padding=1), snn.Leaky(beta=0.9)
        self.fc, self.lif2, self.head = nn.Linear(4 * 4 * 4, 8), snn.Leaky(beta=0.9), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m1, m2, out = self.lif1.init_leaky(), self.lif2.init_leaky(), []
        for t in range(x.shape[1]):
            s1, m1 = self.lif1(self.conv(x[:, t]), m1)
            s2, m2 = self.lif2(self.fc(F.avg_pool2d(s1, 2).flatten(1)), m2)
            out.append(s2)
        return self.head(torch.stack(out, 1).sum(1))


def _with_gains(model: nn.Module, **gains: float) -> nn.Module:
    """``model`` in eval mode with the weights of the named layers multiplied (so that its neurons fire)."""
    with torch.no_grad():
        for name, gain in gains.items():
            model.get_submodule(name).weight.mul_(gain)
    return model.eval()


def make_functional_pooling():
    torch.manual_seed(0)
    return _with_gains(FunctionalPooling(), conv=3.0, fc=6.0), _spikes(2, 8, 2, 8, 8), 1e-3


class InPlaceGain(nn.Module):
    """snnTorch Linear -> Leaky, its spikes doubled in place (``z.mul_(2)``), Linear -> Leaky, a head."""

    def __init__(self) -> None:
        super().__init__()
        import snntorch as snn

        self.fc1, self.lif1, self.fc2, self.lif2 = nn.Linear(4, 6), snn.Leaky(beta=0.9), nn.Linear(6, 4), \
            snn.Leaky(beta=0.9)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m1, m2, out = self.lif1.init_leaky(), self.lif2.init_leaky(), []
        for t in range(x.shape[1]):
            z, m1 = self.lif1(self.fc1(x[:, t]), m1)
            z.mul_(2)  # graded values Loihi's synapses would not see
            z2, m2 = self.lif2(self.fc2(z), m2)
            out.append(z2)
        return self.head(torch.stack(out, 1).mean(1))


class MembraneReadout(nn.Module):
    """snnTorch: ``Linear -> Leaky -> Linear -> Leaky`` over (B, T, 16), and a GRU over the second Leaky's
    membrane ``mem`` (not its spikes), its last state into a Linear head: a membrane readout at the cut."""

    def __init__(self) -> None:
        super().__init__()
        import snntorch as snn

        self.fc1, self.lif1 = nn.Linear(16, 24), snn.Leaky(beta=0.9)
        self.fc2, self.lif2 = nn.Linear(24, 12), snn.Leaky(beta=0.8)
        self.gru, self.head = nn.GRU(12, 10, batch_first=True), nn.Linear(10, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mem1, mem2, mems = self.lif1.init_leaky(), self.lif2.init_leaky(), []
        for t in range(x.shape[1]):
            spk1, mem1 = self.lif1(self.fc1(x[:, t]), mem1)
            _, mem2 = self.lif2(self.fc2(spk1), mem2)
            mems.append(mem2)
        out, _ = self.gru(torch.stack(mems, 1))
        return self.head(out[:, -1])


def make_membrane_readout():
    torch.manual_seed(0)
    return _with_gains(MembraneReadout(), fc1=3.0, fc2=3.0), _spikes(6, 10, 16), 1e-3


class NorseMembraneReadout(nn.Module):
    """norse: ``Linear -> LIFBoxCell`` twice over (B, T, 16); the head reads the second cell's state ``v``."""

    def __init__(self) -> None:
        super().__init__()
        import norse.torch as norse

        p = norse.LIFBoxParameters(tau_mem_inv=torch.tensor(100.0), v_th=torch.tensor(0.5))
        self.fc1, self.lif1 = nn.Linear(16, 24), norse.LIFBoxCell(p)
        self.fc2, self.lif2 = nn.Linear(24, 12), norse.LIFBoxCell(p)
        self.head = nn.Linear(12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = s2 = None
        vs = []
        for t in range(x.shape[1]):
            z1, s1 = self.lif1(self.fc1(x[:, t]), s1)
            _, s2 = self.lif2(self.fc2(z1), s2)
            vs.append(s2.v)
        return self.head(torch.stack(vs, 1).mean(1))


def make_norse_membrane_readout():
    torch.manual_seed(0)
    return _with_gains(NorseMembraneReadout(), fc1=4.0, fc2=4.0), _spikes(6, 10, 16), 1e-3


def _lif_m(**kwargs):
    from spikingjelly.activation_based import neuron

    return neuron.LIFNode(tau=2.0, detach_reset=True, step_mode="m", **kwargs)


class _ConvBNLIF(nn.Module):
    """``lif(bn(conv(x.flatten(0, 1))).reshape(T, B, ...))``: the original Spikformer's unit, over (T, B, C, ...)."""

    def __init__(self, conv: nn.Module, bn: nn.Module, **lif) -> None:
        super().__init__()
        self.conv, self.bn, self.lif = conv, bn, _lif_m(**lif)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        y = self.bn(self.conv(x.flatten(0, 1)))
        return self.lif(y.reshape(T, B, *y.shape[1:]).contiguous())


class OriginalStyleSpikformer(nn.Module):
    """A small Spikformer written in the idiom of the original repository (ZK-Zhou/spikformer,
    ``cifar10dvs/model.py``), on SpikingJelly 2.0's multi-step ``LIFNode``: it takes (B, T, 2, 16, 16) and
    permutes it to time-major itself; the stem folds time into the batch for each Conv -> BatchNorm, reshapes
    back for the LIF, max-pools, and adds a relative-position Conv-BN-LIF branch; one block of spiking
    self-attention (Conv1d q/k/v, ``q @ k^T @ v``) and a Conv1d MLP, residual; the head reads the time mean."""

    def __init__(self, dim: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.stem0 = _ConvBNLIF(nn.Conv2d(2, dim // 2, 3, padding=1, bias=False), nn.BatchNorm2d(dim // 2))
        self.stem1 = _ConvBNLIF(nn.Conv2d(dim // 2, dim, 3, padding=1, bias=False), nn.BatchNorm2d(dim))
        self.rpe = _ConvBNLIF(nn.Conv2d(dim, dim, 3, padding=1, bias=False), nn.BatchNorm2d(dim))
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.q, self.k, self.v = (_ConvBNLIF(nn.Conv1d(dim, dim, 1, bias=False), nn.BatchNorm1d(dim)) for _ in range(3))
        self.attn_lif = _lif_m(v_threshold=0.5)
        self.proj = _ConvBNLIF(nn.Conv1d(dim, dim, 1), nn.BatchNorm1d(dim))
        self.mlp1 = _ConvBNLIF(nn.Conv1d(dim, 2 * dim, 1), nn.BatchNorm1d(2 * dim))
        self.mlp2 = _ConvBNLIF(nn.Conv1d(2 * dim, dim, 1), nn.BatchNorm1d(dim))
        self.heads, self.head = heads, nn.Linear(dim, 5)

    def _attention(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, N = x.shape
        q, k, v = (f(x).transpose(-1, -2).reshape(T, B, N, self.heads, C // self.heads).permute(0, 1, 3, 2, 4)
                   for f in (self.q, self.k, self.v))
        y = (q @ k.transpose(-2, -1) @ v) * 0.25
        return self.proj(self.attn_lif(y.transpose(3, 4).reshape(T, B, C, N)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(1, 0, 2, 3, 4).contiguous()  # (T, B, C, H, W)
        T, B = x.shape[:2]
        x = self.pool(self.stem0(x).flatten(0, 1)).reshape(T, B, -1, 8, 8)
        x = self.pool(self.stem1(x).flatten(0, 1)).reshape(T, B, -1, 4, 4)
        x = (x + self.rpe(x)).flatten(3)  # (T, B, C, N)
        x = x + self._attention(x)
        x = x + self.mlp2(self.mlp1(x))
        return self.head(x.mean(3).mean(0))


def make_original_style_spikformer():
    torch.manual_seed(0)
    x = _spikes(4, 4, 2, 16, 16)
    return _settle_batchnorms(OriginalStyleSpikformer(), x), x, 1e-3


class SpikesAndMembrane(nn.Module):
    """snnTorch: ``Linear -> Leaky``, and a head over both its spike count and its mean ``mem`` (refused: the cut
    carries the spikes or the voltage, not both)."""

    def __init__(self) -> None:
        super().__init__()
        import snntorch as snn

        self.fc, self.lif, self.head = nn.Linear(16, 12), snn.Leaky(beta=0.9), nn.Linear(24, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mem, spikes, mems = self.lif.init_leaky(), [], []
        for t in range(x.shape[1]):
            spk, mem = self.lif(self.fc(x[:, t]), mem)
            spikes.append(spk)
            mems.append(mem)
        return self.head(torch.cat([torch.stack(spikes, 1).sum(1), torch.stack(mems, 1).mean(1)], 1))


def make_spikes_and_membrane():
    torch.manual_seed(0)
    return _with_gains(SpikesAndMembrane(), fc=3.0), _spikes(2, 10, 16), 1e-3


def make_spikformer_on_one_channel():
    """SpikingJelly's Spikformer with example inputs of 1 channel where its stem takes 2 (refused by name)."""
    model, x, dt_s = make_spikformer()
    return model, x[:, :, :1], dt_s
