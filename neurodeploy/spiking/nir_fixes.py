"""Known defects of the frameworks' NIR exporters: detected and named, corrected only when asked.

A graph is never corrected silently: a fix runs only when the caller names it (``fixes=("norse",)``,
CLI ``--fix norse``), and the plan and the bundle record which fixes ran.

- ``norse``: norse 1.1.0's ``to_nir`` writes every time constant as ``dt / tau_inv``, i.e. ``dt`` times the
  true one (``tau = 1/tau_inv``), and exports ``LIFCell`` as a ``CubaLIF`` with ``w_in = 1`` although
  ``LIFCell`` adds its input to the current unscaled (``i += x``; NIR's Euler step adds
  ``dt/tau_syn * w_in * x``). The fix divides ``tau``/``tau_mem``/``tau_syn`` of LIF, LI, CubaLIF and CubaLI
  by ``dt`` (the dt given to ``to_nir``, default 0.001 s: pass the same dt here) and sets a CubaLIF's
  ``w_in = 1`` to ``tau_syn/dt``. Its signature: a time constant below dt (dt/tau > 1, an unstable Euler
  step) whose corrected value is not.
- ``sinabs``: sinabs 3.1.3's ``to_nir`` writes ``IAF``/``LIF`` as NIR ``IF``/``LIF`` without their reset and
  spike test: sinabs fires at ``v >= spike_threshold`` and by default subtracts the threshold
  (``MembraneSubtract``), where NIR's nodes reset to ``v_reset``. The fix marks those nodes with the
  subtractive reset (``{"reset": "subtract"}``) and writes the threshold as the next float64 below it, which
  makes ``>`` and ``>=`` the same test. sinabs's default ``MultiSpike`` sends ``floor(v/threshold)``
  spikes in one step where Loihi's LIF sends one: the two agree while v stays below twice the threshold.
  sinabs counts time in steps and integrates exactly: compile its graphs with ``dt=1`` and
  ``discretisation="exact"``.
- ``snntorch``: snnTorch 1.0.0's ``export_to_nir`` writes ``Leaky``/``Synaptic`` as ``LIF``/``CubaLIF``
  without their ``reset_mechanism``; snnTorch's default is ``"subtract"`` with ``reset_delay=True``
  (``v[t] = beta v[t-1] + x[t] - thr [v[t-1] > thr]``). The fix marks those nodes with that reset. Use it
  for nets at snnTorch's default reset only (a net built with ``reset_mechanism="zero"`` exports correctly).
  neurodeploy's own export of snnTorch modules (:mod:`neurodeploy.exporters.torch_to_nir`) writes the reset.
- ``rockpool``: Rockpool 3.1.0's ``to_nir`` writes ``LIFTorch`` as a ``CubaLIF`` with ``w_in = 1`` and
  ``r = tau_mem e^(-dt/tau_mem) / dt``, without its reset and spike test. ``LIFTorch`` computes
  ``i <- beta (i + x)``, ``v <- alpha v + i``, with ``alpha = e^(-dt/tau_mem)``, ``beta = e^(-dt/tau_syn)``,
  fires at ``v >= threshold`` and subtracts the threshold per spike. With ``discretisation="exact"``
  (``du = 1 - beta``, ``dv = 1 - alpha``) that is a CubaLIF whose input scale ``du w_in dv r`` is ``beta``:
  the fix sets ``w_in = beta/(1 - beta)``, ``r = 1/(1 - alpha)`` (at the dt given, Rockpool's default
  0.001 s), the subtractive reset and the ``>=`` test. Rockpool's ``max_spikes_per_dt`` (default 65536)
  sends several spikes in one step where Loihi sends one: they agree while v stays below twice the
  threshold.
"""
from __future__ import annotations

import copy

import nir
import numpy as np

from neurodeploy.errors import SpikingPlanError

FIXES = {"norse": "norse 1.1.0 to_nir: tau written as dt*tau, CubaLIF w_in written as 1 (LIFCell adds input unscaled)",
         "sinabs": "sinabs 3.1.3 to_nir: IF/LIF written without their subtractive reset and v >= threshold test",
         "snntorch": "snnTorch 1.0.0 export_to_nir: Leaky/Synaptic written without their default reset "
                     "(subtract, reset_delay=True)",
         "rockpool": "Rockpool 3.1.0 to_nir: LIFTorch written with r = tau e^(-dt/tau)/dt, w_in = 1, no reset "
                     "(use with discretisation='exact')"}
"""Exporter defects neurodeploy can correct, by the name a caller passes."""

_TAU_FIELDS = ("tau", "tau_mem", "tau_syn")


def at_or_above(threshold) -> np.ndarray:
    """A ``v >= threshold`` test as Loihi's ``v > vth``: vth the next float64 below the threshold."""
    return np.nextafter(np.asarray(threshold, dtype=np.float64), -np.inf)


def _fires_at_or_above_and_subtracts(node: nir.NIRNode) -> None:
    """Mark ``node`` with the subtractive reset and its threshold test ``>=`` (sinabs, Rockpool)."""
    node.metadata = {**(getattr(node, "metadata", None) or {}), "reset": "subtract"}
    node.v_threshold = at_or_above(node.v_threshold)


def _taus(node: nir.NIRNode) -> dict[str, np.ndarray]:
    return {f: np.asarray(getattr(node, f), dtype=np.float64) for f in _TAU_FIELDS if hasattr(node, f)}


def _norse(graph: nir.NIRGraph, dt: float) -> nir.NIRGraph:
    fixed = copy.deepcopy(graph)
    for node in fixed.nodes.values():
        if not isinstance(node, (nir.LIF, nir.LI, nir.CubaLIF, nir.CubaLI)):
            continue
        for field, tau in _taus(node).items():
            setattr(node, field, tau / dt)
        if isinstance(node, nir.CubaLIF) and np.all(np.asarray(node.w_in, dtype=np.float64) == 1.0):
            node.w_in = np.asarray(node.tau_syn, dtype=np.float64) / dt
    return fixed


def _sinabs(graph: nir.NIRGraph, dt: float) -> nir.NIRGraph:
    fixed = copy.deepcopy(graph)
    for node in fixed.nodes.values():
        if isinstance(node, (nir.IF, nir.LIF)):
            _fires_at_or_above_and_subtracts(node)
    return fixed


def _snntorch(graph: nir.NIRGraph, dt: float) -> nir.NIRGraph:
    fixed = copy.deepcopy(graph)
    for node in fixed.nodes.values():
        if isinstance(node, (nir.LIF, nir.CubaLIF)):
            node.metadata = {**(getattr(node, "metadata", None) or {}), "reset": "subtract", "reset_delay": True}
    return fixed


def _rockpool(graph: nir.NIRGraph, dt: float) -> nir.NIRGraph:
    fixed = copy.deepcopy(graph)
    for node in fixed.nodes.values():
        if isinstance(node, nir.CubaLIF):
            alpha = np.exp(-dt / np.asarray(node.tau_mem, dtype=np.float64))
            beta = np.exp(-dt / np.asarray(node.tau_syn, dtype=np.float64))
            node.w_in, node.r = beta / (1.0 - beta), 1.0 / (1.0 - alpha)
            _fires_at_or_above_and_subtracts(node)
    return fixed


_APPLY = {"norse": _norse, "sinabs": _sinabs, "snntorch": _snntorch, "rockpool": _rockpool}


def apply_fixes(graph: nir.NIRGraph, fixes, dt: float) -> tuple[nir.NIRGraph, list[str]]:
    """The graph with the named fixes applied (a copy when any), and the fixes' names in order."""
    fixes = list(fixes or ())
    unknown = [f for f in fixes if f not in FIXES]
    if unknown:
        raise SpikingPlanError([f"exporter fix {f!r} is unknown; known: {sorted(FIXES)}" for f in unknown],
                               "cannot apply the exporter fixes")
    for name in fixes:
        graph = _APPLY[name](graph, dt)
    return graph, fixes


def defect_hints(graph: nir.NIRGraph, dt: float) -> list[str]:
    """One line per known defect the graph's values look like, with the fix (empty when none)."""
    suspects = []
    for name, node in graph.nodes.items():
        for field, tau in _taus(node).items():
            if not (tau.size and np.all(tau > 0)):
                continue
            ratio = dt / tau.ravel()  # above 1: unstable; corrected (tau / dt): ratio * dt
            if np.any(ratio > 1.0) and np.all(ratio * dt <= 1.0):
                suspects.append(f"{name}.{field}={float(tau.ravel()[0]):g} s")
    if not suspects:
        return []
    return [f"{', '.join(suspects[:4])}{' ...' if len(suspects) > 4 else ''} below dt={dt:g} s looks like norse "
            "1.1.0's to_nir, which writes dt*tau instead of tau: if the graph came from norse, pass fixes=['norse'] "
            "(CLI --fix norse) with the dt given to to_nir (default 0.001 s)"]
