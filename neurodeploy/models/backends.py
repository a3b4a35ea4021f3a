"""Dense back-ends (the GPU half of a hybrid). Each starts with its adapter."""
from __future__ import annotations

import torch
from torch import nn

from neurodeploy.models.adapters import RateAdapter


class TransformerBackend(nn.Module):
    """Rate adapter -> linear projection -> transformer encoder -> mean over tokens -> linear head.

    Input: spikes (B, T, n_in); output: logits (B, n_classes). T must be a multiple of ``window``.
    """

    def __init__(self, n_in: int, n_classes: int, window: int, d_model: int = 32, n_heads: int = 4,
                 n_layers: int = 2, dim_feedforward: int = 64, causal: bool = False) -> None:
        super().__init__()
        self.adapter = RateAdapter(window)
        self.proj = nn.Linear(n_in, d_model)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, n_classes)
        self.causal = causal

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        tokens = self.proj(self.adapter(spikes))
        mask = nn.Transformer.generate_square_subsequent_mask(tokens.shape[1]) if self.causal else None
        h = self.encoder(tokens, mask=mask, is_causal=self.causal)
        return self.head(h.mean(dim=1))


class StreamingBackend(nn.Module):
    """Adapter -> projection -> causal blocks -> norm -> per-token head; whole sequence and streaming.

    ``forward(spikes (B, T, n_in)) -> (B, T // K, n_out)``: one output per token (window).
    ``step(window (B, K, n_in), *state) -> (y (B, n_out), *state)``: the same outputs, one window at a
    time, with every state (adapter, KV cache, SSM state, conv buffer, running sums) explicit, so the
    co-simulation can feed a window as soon as Lava has produced it.

    Event schedule (the SNN-as-attention-filter seed): with ``salience_threshold`` set, a window is
    salient when the cut population fires at least that many spikes in it; :meth:`forward_event` runs
    the step model on salient windows only, carrying the state unchanged and holding the last output
    (zeros before the first salient window) over the others.

    Args:
        blocks: names from :data:`neurodeploy.models.dense_blocks.BLOCKS`, e.g. ``["mamba", "mamba"]``.
        adapter: ``rate``, ``exp`` (exponentially weighted, ``tau`` steps) or ``membrane`` (``decay``).
        salience_threshold: spikes per window that make it salient (None: no event schedule).
        exit_threshold: softmax confidence at which a window's output is an early exit (None: no exits).
    """

    def __init__(self, n_in: int, n_out: int, window: int, blocks: list[str], d_model: int = 64,
                 adapter: str = "rate", heads: int = 4, max_len: int = 256,
                 salience_threshold: float | None = None, exit_threshold: float | None = None,
                 **adapter_args: float) -> None:
        from neurodeploy.models.adapters import ADAPTERS
        from neurodeploy.models.dense_blocks import BLOCKS

        super().__init__()
        unknown = [b for b in blocks if b not in BLOCKS] + ([adapter] if adapter not in ADAPTERS else [])
        if unknown:
            raise ValueError(f"unknown blocks/adapter {unknown}; blocks: {sorted(BLOCKS)}, adapters: {sorted(ADAPTERS)}")
        if adapter == "membrane":
            adapter_args["n"] = n_in
        self.adapter = ADAPTERS[adapter](window, **adapter_args)
        self.proj = nn.Linear(n_in, d_model)
        options = {"attention": dict(heads=heads, max_len=max_len), "ssa": dict(heads=heads),
                   "fusion_cross": dict(heads=heads, max_len=max_len), "fusion_gate": dict(heads=heads)}
        self.blocks = nn.ModuleList(BLOCKS[b](d_model, **options.get(b, {})) for b in blocks)
        self.norm, self.head = nn.LayerNorm(d_model), nn.Linear(d_model, n_out)
        self.block_names, self.adapter_kind = list(blocks), adapter
        self.salience_threshold, self.exit_threshold = salience_threshold, exit_threshold

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        h = self.proj(self.adapter(spikes))
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h))

    def init_state(self, batch: int) -> tuple[torch.Tensor, ...]:
        states = list(self.adapter.init_state(batch))
        for block in self.blocks:
            states += block.init_state(batch)
        return tuple(states)

    def state_sizes(self) -> list[int]:
        """How many state tensors the adapter and each block carry, in order."""
        return [len(self.adapter.init_state(1))] + [len(b.init_state(1)) for b in self.blocks]

    def step(self, window: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        sizes, i = self.state_sizes(), 0
        token, *new_state = self.adapter.step(window, *state[: sizes[0]])
        i = sizes[0]
        h = self.proj(token)
        for block, n in zip(self.blocks, sizes[1:]):
            h, *block_state = block.step(h, *state[i: i + n])
            new_state += block_state
            i += n
        return (self.head(self.norm(h)), *new_state)


    def forward_event(self, spikes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Event schedule: (outputs (B, L, n_out), salient (B, L)); see the class docstring. Each sample
        runs on its own (a KV cache position is per sequence)."""
        if self.salience_threshold is None:
            raise ValueError("this back-end has no salience_threshold: it does not ask for the event schedule")
        k, results = self.adapter.window, []
        for sample in spikes.split(1):
            state = tuple(s.to(sample.dtype) if s.is_floating_point() else s for s in self.init_state(1))
            y, outputs, flags = sample.new_zeros(1, self.head.out_features), [], []
            for start in range(0, sample.shape[1] - k + 1, k):
                window = sample[:, start: start + k]
                salient = bool(salient_windows(window, self.salience_threshold)[0])
                if salient:
                    y, *state = self.step(window, *state)
                outputs.append(y[0])
                flags.append(salient)
            results.append((torch.stack(outputs), torch.tensor(flags)))
        return torch.stack([r[0] for r in results]), torch.stack([r[1] for r in results])


def salient_windows(window, threshold: float):
    """(B, K, n) spikes of one window -> (B,) True where the cut fired at least ``threshold`` spikes."""
    return window.reshape(window.shape[0], -1).sum(-1) >= threshold


class StepModel(nn.Module):
    """``forward(window, *state) = backend.step(...)``: the streaming form as one exportable module."""

    def __init__(self, backend: StreamingBackend) -> None:
        super().__init__()
        self.backend = backend

    def forward(self, window: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.backend.step(window, *state)
