"""Dense back-end blocks, each in two forms that compute the same thing.

``forward(x)`` takes a whole token sequence ``x`` (B, L, d) and returns (B, L, d). ``step(x_t, *state)``
takes one token (B, d) and the block's state and returns ``(y_t, *new_state)``. ``init_state(batch)``
gives the state before the first token. Every block is causal (token l sees tokens <= l), so running
``step`` over the tokens reproduces ``forward``. All blocks are pre-norm residual: ``x + f(norm(x))``,
followed by ``x + mlp(norm(x))``.

- :class:`AttentionBlock`: softmax attention, causal; the step form keeps a fixed-size KV cache of
  ``max_len`` tokens and the position. (A bidirectional encoder has no streaming form: see
  :class:`neurodeploy.models.backends.TransformerBackend`.)
- :class:`MambaBlock`: Mamba's selective SSM (Gu & Dao 2023): in_proj -> causal depthwise conv (d_conv)
  -> SiLU -> (dt, B, C) = x_proj -> ``h_t = exp(dt A) h_{t-1} + dt B_t x_t``, ``y_t = C_t h_t + D x_t``
  -> gate ``y * SiLU(z)`` -> out_proj. The sequence form uses ``torch._higher_order_ops.scan``, which
  exports to an ONNX ``Scan`` with a dynamic length (torch 2.13's dynamo exporter; measured here: error 2e-7
  at L = 16-64; the TorchScript exporter instead drops mambapy-style in-place scans silently). State: conv buffer and h.
- :class:`CfCBlock`: closed-form continuous-time cell (Hasani et al. 2022, the ncps "default" mode):
  ``h_t = (1 - g) * tanh(W1 [x_t, h]) + g * tanh(W2 [x_t, h])``, ``g = sigmoid(-(Wa [x, h]) * ts - Wb [x, h])``
  with ts = 1. State: h.
- :class:`SSABlock`: Spikformer's spiking self-attention ``SSA = (Q K^T) V * scale`` with spike-valued
  ``Q, K, V = Heaviside(Linear(x))``, no softmax, causal. Written as ``Q (sum_{i<=t} K_i^T V_i)``, the
  step form keeps the running ``K^T V`` per head.
- :class:`FusionBlock`: two branches (default Mamba and CfC) fused by adaptive gating or causal
  cross-attention, as in the Mamba-Liquid-SNN seed.
- :class:`ExchangeBlock`: Mamba and CfC exchanging state every token (CfC state -> Mamba's B and C;
  Mamba's output -> CfC's time constant), the seed's bidirectional mode.
- :class:`SDSABlock`: the Spike-driven Transformer's ``SDSA = Q * SN(sum_{i<=t} K_i * V_i)`` with
  ``SN(x) = x > vth``; state: the running sum.

Q·K^T and K⊙V have two data-dependent operands: they cannot be static synapses and run on the GPU.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch._higher_order_ops.scan import scan

_SURROGATE = {"on": False}


@contextmanager
def surrogate_gradients():
    """Inside the block, :func:`heaviside` passes the fast-sigmoid surrogate gradient ``1 / (1 + |x|)^2``
    (for training); outside, it is the plain step that is exported."""
    _SURROGATE["on"] = True
    try:
        yield
    finally:
        _SURROGATE["on"] = False


def heaviside(x: torch.Tensor) -> torch.Tensor:
    """Spike: 1 where x > 0. Under :func:`surrogate_gradients` the forward value is the same (``s - s`` is 0)."""
    spikes = (x > 0).to(x.dtype)
    if _SURROGATE["on"]:
        soft = x / (1 + x.abs())
        return spikes + (soft - soft.detach())
    return spikes


class FeedForward(nn.Module):
    def __init__(self, d: int, hidden: int) -> None:
        super().__init__()
        self.norm, self.fc1, self.fc2 = nn.LayerNorm(d), nn.Linear(d, hidden), nn.Linear(hidden, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(F.gelu(self.fc1(self.norm(x))))


def cached_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
                     pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One causal attention step: write k, v (B, H, dh) at ``pos`` of the caches (B, H, max_len, dh), attend
    from q over positions <= pos. Returns (attention output (B, H, dh), k_cache, v_cache)."""
    max_len, dh = k_cache.shape[2], k_cache.shape[3]
    slot = F.one_hot(pos, max_len).to(q.dtype).reshape(1, 1, max_len, 1)
    k_cache = k_cache * (1 - slot) + k[:, :, None, :] * slot
    v_cache = v_cache * (1 - slot) + v[:, :, None, :] * slot
    scores = torch.einsum("bhd,bhld->bhl", q, k_cache) / math.sqrt(dh)
    scores = scores.masked_fill(~(torch.arange(max_len, device=q.device) <= pos), float("-inf"))
    return torch.einsum("bhl,bhld->bhd", scores.softmax(dim=-1), v_cache), k_cache, v_cache


class AttentionBlock(nn.Module):
    """Causal multi-head softmax attention + MLP; step form with a KV cache of ``max_len`` tokens."""

    def __init__(self, d: int, heads: int, max_len: int = 256, mlp_ratio: int = 2) -> None:
        super().__init__()
        if d % heads:
            raise ValueError(f"d={d} is not divisible by heads={heads}")
        self.d, self.heads, self.dh, self.max_len = d, heads, d // heads, max_len
        self.norm, self.qkv, self.out = nn.LayerNorm(d), nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = FeedForward(d, mlp_ratio * d)

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        q, k, v = self.qkv(self.norm(x)).chunk(3, dim=-1)  # (..., d) each
        return tuple(t.reshape(*t.shape[:-1], self.heads, self.dh) for t in (q, k, v))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (t.transpose(1, 2) for t in self._split(x))  # (B, H, L, dh)
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.mlp(x + self.out(att.transpose(1, 2).reshape(x.shape)))

    def init_state(self, batch: int) -> tuple[torch.Tensor, ...]:
        cache = torch.zeros(batch, self.heads, self.max_len, self.dh)
        return cache, cache.clone(), torch.zeros(1, dtype=torch.int64)

    def step(self, x: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, pos: torch.Tensor):
        att, k_cache, v_cache = cached_attention(*self._split(x), k_cache, v_cache, pos)
        return self.mlp(x + self.out(att.reshape(x.shape))), k_cache, v_cache, pos + 1


class MambaBlock(nn.Module):
    """Selective SSM (Mamba) + MLP; ``d_state``, ``d_conv``, ``expand`` as in the Mamba paper."""

    def __init__(self, d: int, d_state: int = 16, d_conv: int = 4, expand: int = 2) -> None:
        super().__init__()
        self.d_inner, self.d_state, self.d_conv = expand * d, d_state, d_conv
        self.dt_rank = math.ceil(d / 16)
        self.norm = nn.LayerNorm(d)
        self.in_proj = nn.Linear(d, 2 * self.d_inner)
        self.conv = nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1).float()).repeat(self.d_inner, 1))
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d)
        self.mlp = FeedForward(d, 2 * d)

    def _projections(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """u (..., d_inner) -> (dt (..., d_inner), B (..., N), C (..., N))."""
        dt, b, c = self.x_proj(u).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        return F.softplus(self.dt_proj(dt)), b, c

    def _ssm_step(self, h: torch.Tensor, dt: torch.Tensor, u: torch.Tensor, b: torch.Tensor, c: torch.Tensor):
        """One step of the selective SSM for (B, d_inner, N) state h; returns (h, y (B, d_inner))."""
        h = torch.exp(dt[..., None] * -torch.exp(self.A_log)) * h + (dt * u)[..., None] * b[:, None, :]
        return h, (h * c[:, None, :]).sum(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xi, z = self.in_proj(self.norm(x)).chunk(2, dim=-1)
        u = F.silu(self.conv(F.pad(xi.transpose(1, 2), (self.d_conv - 1, 0))).transpose(1, 2))  # causal conv
        dt, b, c = self._projections(u)

        def combine(h: torch.Tensor, inputs: tuple[torch.Tensor, ...]):
            return self._ssm_step(h, *inputs)

        h0 = torch.zeros(x.shape[0], self.d_inner, self.d_state, dtype=x.dtype, device=x.device)
        _, y = scan(combine, h0, tuple(t.transpose(0, 1) for t in (dt, u, b, c)))
        y = (y.transpose(0, 1) + u * self.D) * F.silu(z)
        return self.mlp(x + self.out_proj(y))

    def init_state(self, batch: int) -> tuple[torch.Tensor, ...]:
        return torch.zeros(batch, self.d_inner, self.d_conv - 1), torch.zeros(batch, self.d_inner, self.d_state)

    def step(self, x: torch.Tensor, conv_buf: torch.Tensor, h: torch.Tensor):
        xi, z = self.in_proj(self.norm(x)).chunk(2, dim=-1)
        window = torch.cat([conv_buf, xi[..., None]], dim=-1)  # (B, d_inner, d_conv)
        u = F.silu((window * self.conv.weight[:, 0, :]).sum(-1) + self.conv.bias)
        dt, b, c = self._projections(u)
        h, y = self._ssm_step(h, dt, u, b, c)
        y = (y + u * self.D) * F.silu(z)
        return self.mlp(x + self.out_proj(y)), window[..., 1:], h


class CfCBlock(nn.Module):
    """Closed-form continuous-time (CfC) recurrent cell over the tokens + MLP."""

    def __init__(self, d: int, hidden: int | None = None) -> None:
        super().__init__()
        self.hidden = hidden or d
        self.norm = nn.LayerNorm(d)
        self.gates = nn.Linear(d + self.hidden, 4 * self.hidden)  # ff1, ff2, time_a, time_b
        self.out = nn.Linear(self.hidden, d)
        self.mlp = FeedForward(d, 2 * d)

    def _cell(self, x_t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        ff1, ff2, t_a, t_b = self.gates(torch.cat([x_t, h], dim=-1)).chunk(4, dim=-1)
        g = torch.sigmoid(-t_a - t_b)  # time step ts = 1
        return torch.tanh(ff1) * (1 - g) + g * torch.tanh(ff2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def combine(h: torch.Tensor, x_t: torch.Tensor):
            h = self._cell(x_t, h)
            return h, h.clone()

        h0 = torch.zeros(x.shape[0], self.hidden, dtype=x.dtype, device=x.device)
        _, hs = scan(combine, h0, self.norm(x).transpose(0, 1))
        return self.mlp(x + self.out(hs.transpose(0, 1)))

    def init_state(self, batch: int) -> tuple[torch.Tensor, ...]:
        return (torch.zeros(batch, self.hidden),)

    def step(self, x: torch.Tensor, h: torch.Tensor):
        h = self._cell(self.norm(x), h)
        return self.mlp(x + self.out(h)), h


class SSABlock(nn.Module):
    """Spikformer spiking self-attention, causal: ``Q (sum_{i<=t} K_i^T V_i) * scale`` per head."""

    def __init__(self, d: int, heads: int, scale: float = 0.125) -> None:
        super().__init__()
        self.heads, self.dh, self.scale = heads, d // heads, scale
        self.norm, self.qkv, self.out = nn.LayerNorm(d), nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = FeedForward(d, 2 * d)

    def _spikes(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        q, k, v = heaviside(self.qkv(self.norm(x))).chunk(3, dim=-1)
        return tuple(t.reshape(*t.shape[:-1], self.heads, self.dh) for t in (q, k, v))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (t.transpose(1, 2) for t in self._spikes(x))  # (B, H, L, dh)
        length = x.shape[1]
        causal = torch.ones(length, length, dtype=x.dtype, device=x.device).tril()
        att = ((q @ k.transpose(-1, -2)) * causal) @ v * self.scale
        return self.mlp(x + self.out(att.transpose(1, 2).reshape(x.shape)))

    def init_state(self, batch: int) -> tuple[torch.Tensor, ...]:
        return (torch.zeros(batch, self.heads, self.dh, self.dh),)

    def step(self, x: torch.Tensor, kv: torch.Tensor):
        q, k, v = self._spikes(x)  # (B, H, dh)
        kv = kv + k[..., :, None] * v[..., None, :]
        att = torch.einsum("bhd,bhde->bhe", q, kv) * self.scale
        return self.mlp(x + self.out(att.reshape(x.shape))), kv


class SDSABlock(nn.Module):
    """Spike-driven self-attention, causal: ``Q * (sum_{i<=t} K_i * V_i > vth)``."""

    def __init__(self, d: int, vth: float = 1.0) -> None:
        super().__init__()
        self.vth = vth
        self.norm, self.qkv, self.out = nn.LayerNorm(d), nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = FeedForward(d, 2 * d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = heaviside(self.qkv(self.norm(x))).chunk(3, dim=-1)
        att = q * heaviside(torch.cumsum(k * v, dim=1) - self.vth)
        return self.mlp(x + self.out(att))

    def init_state(self, batch: int) -> tuple[torch.Tensor, ...]:
        return (torch.zeros(batch, self.out.in_features),)

    def step(self, x: torch.Tensor, kv_sum: torch.Tensor):
        q, k, v = heaviside(self.qkv(self.norm(x))).chunk(3, dim=-1)
        kv_sum = kv_sum + k * v
        return self.mlp(x + self.out(q * heaviside(kv_sum - self.vth))), kv_sum


class FusionBlock(nn.Module):
    """Two branches over the same tokens, fused (the Mamba-Liquid-SNN seed's parallel mode).

    ``a = branch_a(x)``, ``b = branch_b(x)`` (each a block above, e.g. Mamba and CfC), then

    - ``fusion="gate"``: ``g = sigmoid(W [a, b])``, ``y = g * a + (1 - g) * b`` (adaptive gating);
    - ``fusion="cross"``: ``y = a + CrossAttn(q = a, k = v = b)``, causal: token t of ``a`` attends to
      tokens <= t of ``b`` (the step form keeps a KV cache of ``b`` of ``max_len`` tokens).
    """

    def __init__(self, d: int, branches: tuple[str, str] = ("mamba", "cfc"), fusion: str = "gate",
                 heads: int = 2, max_len: int = 256) -> None:
        super().__init__()
        if fusion not in ("gate", "cross"):
            raise ValueError(f"fusion must be 'gate' or 'cross', got {fusion!r}")
        options = {"attention": dict(heads=heads, max_len=max_len), "ssa": dict(heads=heads)}
        self.a, self.b = (BLOCKS[name](d, **options.get(name, {})) for name in branches)
        self.fusion, self.heads, self.dh, self.max_len = fusion, heads, d // heads, max_len
        self.gate = nn.Linear(2 * d, d)
        self.q, self.kv, self.out = nn.Linear(d, d), nn.Linear(d, 2 * d), nn.Linear(d, d)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        return t.reshape(*t.shape[:-1], self.heads, self.dh)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.a(x), self.b(x)
        if self.fusion == "gate":
            g = torch.sigmoid(self.gate(torch.cat([a, b], dim=-1)))
            return g * a + (1 - g) * b
        k, v = self.kv(b).chunk(2, dim=-1)
        q, k, v = (self._heads(t).transpose(1, 2) for t in (self.q(a), k, v))
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(a.shape)
        return a + self.out(att)

    def _sizes(self) -> tuple[int, int]:
        return len(self.a.init_state(1)), len(self.b.init_state(1))

    def init_state(self, batch: int) -> tuple[torch.Tensor, ...]:
        state = self.a.init_state(batch) + self.b.init_state(batch)
        if self.fusion == "cross":
            cache = torch.zeros(batch, self.heads, self.max_len, self.dh)
            state += (cache, cache.clone(), torch.zeros(1, dtype=torch.int64))
        return state

    def step(self, x: torch.Tensor, *state: torch.Tensor):
        na, nb = self._sizes()
        a, *sa = self.a.step(x, *state[:na])
        b, *sb = self.b.step(x, *state[na: na + nb])
        if self.fusion == "gate":
            g = torch.sigmoid(self.gate(torch.cat([a, b], dim=-1)))
            return (g * a + (1 - g) * b, *sa, *sb)
        k_cache, v_cache, pos = state[na + nb:]
        k, v = self.kv(b).chunk(2, dim=-1)
        att, k_cache, v_cache = cached_attention(*(self._heads(t) for t in (self.q(a), k, v)), k_cache, v_cache, pos)
        return (a + self.out(att.reshape(a.shape)), *sa, *sb, k_cache, v_cache, pos + 1)


class ExchangeBlock(nn.Module):
    """Mamba and a liquid (CfC) cell exchanging state token by token (the Mamba-Liquid-SNN seed's
    bidirectional state exchange), causal:

    - Liquid -> Mamba: the CfC state modulates Mamba's selective matrices,
      ``B_t <- B_t (1 + tanh(W_B h_t))``, ``C_t <- C_t (1 + tanh(W_C h_t))``;
    - Mamba -> Liquid: Mamba's previous output sets the CfC time step (its time constant),
      ``ts_t = softplus(W_tau m_{t-1})`` in ``g = sigmoid(-t_a ts - t_b)``.

    Output ``x + out(m_t) + out_h(h_t)``, then the MLP. State: Mamba's conv buffer and SSM state, the CfC
    state h and the last Mamba output m.
    """

    def __init__(self, d: int) -> None:
        super().__init__()
        self.mamba, self.liquid = MambaBlock(d), CfCBlock(d)
        self.to_b, self.to_c = nn.Linear(d, self.mamba.d_state), nn.Linear(d, self.mamba.d_state)
        self.to_ts = nn.Linear(d, d)
        self.out_h = nn.Linear(d, d)
        self.mlp = FeedForward(d, 2 * d)

    def _liquid(self, x_t: torch.Tensor, h: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        ff1, ff2, t_a, t_b = self.liquid.gates(torch.cat([x_t, h], dim=-1)).chunk(4, dim=-1)
        g = torch.sigmoid(-t_a * F.softplus(self.to_ts(m)) - t_b)
        return torch.tanh(ff1) * (1 - g) + g * torch.tanh(ff2)

    def _token(self, x_t, u, z, dt, b, c, h_ssm, h, m):
        """One token, given Mamba's per-token inputs (after its causal conv); returns (y, h_ssm, h, m)."""
        h = self._liquid(self.liquid.norm(x_t), h, m)
        b, c = b * (1 + torch.tanh(self.to_b(h))), c * (1 + torch.tanh(self.to_c(h)))
        h_ssm, y = self.mamba._ssm_step(h_ssm, dt, u, b, c)
        m = self.mamba.out_proj((y + u * self.mamba.D) * F.silu(z))
        return x_t + m + self.out_h(self.liquid.out(h)), h_ssm, h, m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mb = self.mamba
        xi, z = mb.in_proj(mb.norm(x)).chunk(2, dim=-1)
        u = F.silu(mb.conv(F.pad(xi.transpose(1, 2), (mb.d_conv - 1, 0))).transpose(1, 2))  # causal conv
        dt, b, c = mb._projections(u)

        def combine(carry: tuple[torch.Tensor, ...], inputs: tuple[torch.Tensor, ...]):
            y, *carry = self._token(*inputs, *carry)
            return tuple(carry), y

        batch = x.shape[0]
        init = (x.new_zeros(batch, mb.d_inner, mb.d_state), x.new_zeros(batch, self.liquid.hidden),
                x.new_zeros(batch, x.shape[-1]))
        _, ys = scan(combine, init, tuple(t.transpose(0, 1) for t in (x, u, z, dt, b, c)))
        return self.mlp(ys.transpose(0, 1))

    def init_state(self, batch: int) -> tuple[torch.Tensor, ...]:
        d = self.to_ts.in_features
        return (*self.mamba.init_state(batch), torch.zeros(batch, self.liquid.hidden), torch.zeros(batch, d))

    def step(self, x: torch.Tensor, conv_buf: torch.Tensor, h_ssm: torch.Tensor, h: torch.Tensor, m: torch.Tensor):
        mb = self.mamba
        xi, z = mb.in_proj(mb.norm(x)).chunk(2, dim=-1)
        window = torch.cat([conv_buf, xi[..., None]], dim=-1)  # (B, d_inner, d_conv)
        u = F.silu((window * mb.conv.weight[:, 0, :]).sum(-1) + mb.conv.bias)
        dt, b, c = mb._projections(u)
        y, h_ssm, h, m = self._token(x, u, z, dt, b, c, h_ssm, h, m)
        return self.mlp(y), window[..., 1:], h_ssm, h, m


BLOCKS = {"attention": AttentionBlock, "mamba": MambaBlock, "cfc": CfCBlock, "ssa": SSABlock, "sdsa": SDSABlock,
          "fusion_gate": lambda d, **kw: FusionBlock(d, fusion="gate", **kw),
          "fusion_cross": lambda d, **kw: FusionBlock(d, fusion="cross", **kw), "exchange": ExchangeBlock}
