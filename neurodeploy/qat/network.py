"""A bundle's spiking part as a trainable PyTorch module that computes what Loihi computes.

:class:`FixedPointNetwork` holds the model's float weights as parameters and runs, per step and in
aligned time (the order of :func:`neurodeploy.spiking.float_simulation.simulate_batch`), the integer arithmetic
of the deployed network on the grid the bundle was compiled on (its pinned scales ``S`` and exponents,
:mod:`neurodeploy.spiking.quantize`), exactly as :mod:`neurodeploy.runtime.emulator` and Lava ``fixed_pt``::

    m      = the synapse's mantissas of W S (8-bit grid at exponent e; precision double: the two layers'
             combined mantissas at the fine exponent), straight-through in W
    a[t]   = sum_syn shift(m s_src, e)                          (recurrent sources: their spikes at t - 1)
    u[t]   = decay(u, 4096 - du - 1) + (a << 6)                 wrapped to 24 bits
    v[t]   = clip(decay(v, 4096 - dv) + u + bias, +-(2**23 - 1)), then the population's reset rule
    s[t]   = v[t] > vth << 6                                    (a surrogate gradient backwards)

The thresholds, decays and the scales are fixed (the grid); the weights (and bias lines) are trained.
:meth:`FixedPointNetwork.to_bundle` writes the trained weights on that grid (``spiking_weights.npz``, the
grid unchanged), so the deployed network's spikes are the module's. Not modelled: sums beyond int32
(the emulator refuses plans that could reach them on a GPU path; calibrated grids stay far below).
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from neurodeploy.errors import UsageError
from neurodeploy.qat.arith import StraightThroughArithmetic, shift, straight_through
from neurodeploy.runtime.bundle_plan import load_plan
from neurodeploy.spiking.loihi import LAVA, LoihiNumerics, fixed_lif_constants, is_mixed, lif_fixed_step
from neurodeploy.spiking.quantize import FINE_SUFFIX, Quantized, double_mantissas, effective_weights, quantize_weights

WEIGHTS_FILE = "spiking_weights.npz"


@dataclass
class _Grid:
    """One synapse's pinned grid: its target's scale, exponent(s) and sign mode."""

    scale: float
    exp: int
    fine_exp: int | None  # precision double
    mixed: bool
    sign: int  # +1 or -1 for a one-signed layer (kept one-signed while training)


class FixedPointNetwork(nn.Module):
    """``FixedPointNetwork.from_bundle(bundle)``; ``net(x)`` with x (B, T, n_in) 0/1 spikes -> spikes per
    population (B, T, n), differentiable; ``net.to_bundle(out)`` deploys the trained weights."""

    def __init__(self, quantized: Quantized, float_weights: dict[str, np.ndarray], numerics: LoihiNumerics = LAVA,
                 source=None) -> None:
        super().__init__()
        plan, self.nx, self.source = quantized.plan, numerics, source
        self.plan, self.options = plan, quantized.options  # the grid, pinned in the bundle it writes
        bad = [f"{p.name}: {p.model}" for p in plan.neurons if p.model != "lif"]
        if bad:
            raise UsageError(f"fixed-point fine-tuning runs LIF populations; not {', '.join(bad)}")
        scales = {r.name: r.scale for r in quantized.report}
        self.synapses = [s for s in plan.synapses if s.refines is None]
        if any(s.kind != "dense" for s in self.synapses):
            raise UsageError("fixed-point fine-tuning runs dense synapses (no conv yet)")
        self.weights = nn.ParameterDict({_key(s.name): nn.Parameter(torch.tensor(np.array(float_weights[s.name])))
                                         for s in self.synapses})  # copies: training leaves the plan alone
        self.grids = {s.name: self._grid(s, scales[s.target], float_weights[s.name]) for s in self.synapses}

    def _grid(self, syn, scale: float, w: np.ndarray) -> _Grid:
        fine = self.plan.fixed.get(syn.name + FINE_SUFFIX)
        mixed = is_mixed(w)
        return _Grid(scale, int(self.plan.fixed[syn.name].weight_exp), None if fine is None else int(fine.weight_exp),
                     mixed, -1 if (not mixed and w.size and w.min() < 0) else 1)

    @classmethod
    def from_bundle(cls, bundle) -> "FixedPointNetwork":
        """The spiking part of a spiking-only bundle, on the grid it was compiled on."""
        from neurodeploy.bundle import Bundle, read_bundle
        from neurodeploy.spiking.quantize import quantize_for

        bundle = bundle if isinstance(bundle, Bundle) else read_bundle(bundle)
        if not bundle.manifest.spiking_only:
            raise UsageError(f"bundle '{bundle.manifest.name}': fixed-point fine-tuning takes a spiking-only bundle "
                             "for now (compile the spiking front-end's NIR graph on its own)")
        plan = load_plan(bundle, "float")
        m = bundle.manifest.spiking
        quantized = quantize_for(plan, m.profile, **m.quantizer)
        return cls(quantized, {s.name: s.weights for s in plan.synapses}, source=bundle)

    # -- the integer arithmetic -------------------------------------------------------------------------
    def mantissas(self, name: str) -> tuple[torch.Tensor, int]:
        """(M, E): the synapse's integer weights with ``a = shift(M s, E)``, straight-through in W. The
        integers are the quantizer's own (:func:`~neurodeploy.spiking.quantize.quantize_weights`,
        :func:`~neurodeploy.spiking.quantize.double_mantissas`) on the pinned exponents: what deployment makes."""
        g, w = self.grids[name], self.weights[_key(name)]
        w = w.clamp(min=0) if (not g.mixed and g.sign > 0) else (w.clamp(max=0) if not g.mixed else w)
        ws = w * g.scale
        exact, exp = ws.detach().numpy(), g.exp
        if g.fine_exp is None:
            m = quantize_weights(exact, exp, self.nx)[0]
        else:
            parts = double_mantissas(exact, exp, self.nx)
            if parts is None:
                raise UsageError(f"{name}: its weights left the two-synapse grid it was compiled on (a layer's "
                                 "sign mode changed while training?); fine-tune with the layer's signs kept")
            coarse, fine, exp = parts
            m = coarse * 2.0 ** (g.exp - exp) + fine
        return straight_through(torch.as_tensor(m, dtype=torch.float64), ws / 2.0 ** exp), exp

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = torch.as_tensor(x, dtype=torch.float64)
        batch, steps = x.shape[:2]
        nx, pops = self.nx, self.plan.neurons
        grids = {s.name: self.mantissas(s.name) for s in self.synapses}
        constants = {p.name: self._constants(p) for p in pops}
        arith = StraightThroughArithmetic(nx)
        state = {p.name: [torch.zeros(batch, p.n, dtype=torch.float64) for _ in range(2)] for p in pops}
        spikes = {p.name: [] for p in pops}
        last = {p.name: torch.zeros(batch, p.n, dtype=torch.float64) for p in pops}
        for t in range(steps):
            now = {}
            for p in pops:
                a = torch.zeros(batch, p.n, dtype=torch.float64)
                for syn in self.plan.incoming(p.name):
                    if syn.refines is not None:
                        continue
                    m, e = grids[syn.name]
                    src = torch.ones(batch, 1, dtype=torch.float64) if syn.source == "bias" else \
                        x[:, t].reshape(batch, -1) if syn.source == "input" else \
                        (last[syn.source] if syn.recurrent else now[syn.source])
                    a = a + shift(src @ m.T, e)
                u, v = state[p.name]
                u, v, now[p.name] = lif_fixed_step(u, v, a, constants[p.name], p.reset, arith)
                state[p.name] = [u, v]
                spikes[p.name].append(now[p.name])
            last = now
        return {name: torch.stack(s, 1).reshape(batch, steps, *self.plan.layer(name).shape) for name, s in spikes.items()}

    def _constants(self, p) -> dict:
        """Population p's constants (:func:`~neurodeploy.spiking.loihi.fixed_lif_constants`), its bias as a
        flat float64 row (the module's populations are (B, n))."""
        c = fixed_lif_constants(p, self.plan.fixed[p.name])
        return {**c, "bias": c["bias"].reshape(-1).to(torch.float64)}

    # -- deployment ---------------------------------------------------------------------------------------
    def deployed_weights(self) -> dict[str, np.ndarray]:
        """Float weights that land exactly on the grid: mantissas 2**E / S, per synapse of the model."""
        out = {}
        with torch.no_grad():
            for syn in self.synapses:
                m, e = self.mantissas(syn.name)
                out[syn.name] = (m * 2.0 ** e / self.grids[syn.name].scale).numpy().copy()
        return out

    def to_bundle(self, out: str | Path):
        """A copy of the source bundle with the trained weights (``spiking_weights.npz``) and its grid pinned
        (``spiking.quantizer``); raises UsageError if the deployed integers would differ from the module's."""
        from neurodeploy.bundle import write_bundle

        bundle = self.source
        if bundle is None:
            raise UsageError("to_bundle needs the bundle this network was built from (FixedPointNetwork.from_bundle)")
        files = {name: bundle.path / name for name in bundle.manifest.checksums if name != WEIGHTS_FILE}
        with tempfile.TemporaryDirectory() as tmp:
            weights = Path(tmp) / WEIGHTS_FILE
            np.savez(weights, **self.deployed_weights())
            spiking = bundle.manifest.spiking.model_copy(update={"weights_file": WEIGHTS_FILE, "quantizer": self.options})
            manifest = bundle.manifest.model_copy(update={"spiking": spiking})
            write_bundle(Path(out), manifest, {**files, WEIGHTS_FILE: weights})
        from neurodeploy.bundle import read_bundle

        deployed = read_bundle(out)
        _check_grid(load_plan(deployed, "fixed"), self)
        return deployed


def _key(name: str) -> str:
    """A ParameterDict key for a synapse name (no dots)."""
    return name.replace(".", "__")


def _check_grid(plan, net: FixedPointNetwork) -> None:
    """The deployed integers equal the module's (a recompile may not re-round them)."""
    for syn in net.synapses:
        m, e = net.mantissas(syn.name)
        if not np.array_equal(effective_weights(plan, syn.name), m.detach().numpy() * 2.0 ** e):
            raise UsageError(f"{syn.name}: the deployed integer weights differ from the fine-tuned module's (a sign "
                             "mode changed while training?); fine-tune with the layer's signs kept")
