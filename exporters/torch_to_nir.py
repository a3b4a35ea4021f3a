"""PyTorch spiking front-ends (norse, snnTorch, neurodeploy) -> NIR, with neurodeploy's own mappings.

The frameworks' exporters have known bugs (seen with norse 1.1.0 and nirtorch 2.6: norse maps ``nn.Flatten`` to a
None node and writes ``tau = dt/tau_mem_inv``; nirtorch 2.6 leaves random biases in imported Affine
layers), so each module type is mapped here, from its equations, at the graph's ``dt``:

- snnTorch ``Leaky(beta)``: ``v = beta v + x`` -> ``LIF(tau = dt/(1-beta), r = tau/dt)``; beta = 1 ->
  ``IF(r = 1/dt)`` (NIR's ``dv/dt = r I`` adds ``dt r I = I`` per Euler step).
- snnTorch ``Synaptic(alpha, beta)``: ``i = alpha i + x; v = beta v + i`` ->
  ``CubaLIF(tau_syn = dt/(1-alpha), w_in = tau_syn/dt, tau_mem = dt/(1-beta), r = tau_mem/dt)``.
  Their reset goes into the node's metadata (``{"reset": "subtract", "reset_delay": True}``; NIR itself
  resets to v_reset): snnTorch's default ``reset_mechanism="subtract"`` with ``reset_delay=True``
  (``v[t] = beta v[t-1] + x[t] - thr [v[t-1] > thr]``), ``"subtract"`` without the delay, ``"none"``, and
  ``"zero"`` (Leaky: the delay gives the same spikes; Synaptic with the delay also zeroes the next
  step's input, which is refused). :mod:`neurodeploy.spiking.resets` has the equations.
- snnTorch ``RLeaky`` / ``RSynaptic`` (``all_to_all`` with ``linear_features``): the same node, plus its
  recurrent ``nn.Linear`` as a node ``NAME.recurrent`` on an edge from the population back to itself
  (``mem[t] = beta mem[t-1] + x[t] + V spk[t-1]``; RSynaptic adds ``V spk[t-1]`` to the current).
- norse ``LIFBoxCell``: ``v += dt tau_mem_inv (v_leak - v + x)`` -> ``LIF(tau = 1/tau_mem_inv, r = 1,
  v_leak)``; its ``dt`` must equal the graph's.
- norse ``LIFCell`` (norse 1.1.0's ``lif_feed_forward_step``: ``i += x``, ``v += dt tau_mem_inv (v_leak - v
  + i)``, then ``i -= dt tau_syn_inv i``): the current that enters v is this step's, so it is NIR's
  ``CubaLIF(tau_syn = 1/tau_syn_inv, tau_mem = 1/tau_mem_inv, r = 1, w_in = tau_syn/dt)``; its ``dt``
  must equal the graph's, and it must start from rest (``v_leak = 0``: norse starts v at v_leak).
- SpikingJelly ``LIFNode`` (single- or multi-step; ``v += (x - v)/tau``, or ``v += x - v/tau`` with
  ``decay_input=False``) -> ``LIF(tau = tau dt, r = 1 or tau)``; ``IFNode`` (``v += x``) -> ``IF(r = 1/dt)``,
  as SpikingJelly's own exporter writes it.
  SpikingJelly fires at ``v >= v_threshold`` where Loihi fires at ``v > vth``: the threshold is written
  as the next float64 below it, which makes ``>`` and ``>=`` the same test. Hard reset to 0 only.
- neurodeploy ``LIFCell``: see :mod:`neurodeploy.exporters.nir_export`.
- ``nn.Linear``, ``nn.Conv1d``, ``nn.Conv2d``, ``nn.AvgPool2d``, ``nn.Flatten``; ``nn.Dropout`` and
  ``nn.Identity`` are dropped (identity at inference).

Anything else (MaxPool, BatchNorm, a reset to a nonzero v_reset) is listed in one
:class:`SpikingPlanError` with a way out.
"""
from __future__ import annotations

import copy
from collections.abc import Callable

import nir
import numpy as np
import torch
from torch import nn

from neurodeploy.errors import SpikingPlanError
from neurodeploy.exporters.nir_export import lif_to_nir, linear_to_nir
from neurodeploy.spiking.nir_fixes import at_or_above
from neurodeploy.models.neurons import LIFCell


def _full(value, shape: tuple[int, ...]) -> np.ndarray:
    """Per-neuron parameter array (nir.write cannot store 0-d datasets)."""
    value = value.detach().double().numpy() if isinstance(value, torch.Tensor) else np.asarray(value, np.float64)
    return np.broadcast_to(value, shape).astype(np.float64).copy()


def snntorch_reset(module: nn.Module) -> tuple[dict, list[str]]:
    """The NIR node metadata for an snnTorch neuron's reset, and why it cannot run (empty when it can)."""
    mechanism = getattr(module, "reset_mechanism", "zero")
    delay = bool(getattr(module, "reset_delay", False))
    if mechanism not in ("zero", "subtract", "none"):
        return {}, [f"snnTorch reset_mechanism={mechanism!r} is unknown; use 'subtract', 'zero' or 'none'"]
    kind = type(module).__name__
    if mechanism == "zero" and delay and kind in ("Synaptic", "RLeaky", "RSynaptic"):
        return {}, [f"snnTorch {kind} with reset_mechanism='zero' and reset_delay=True zeroes the step after a "
                    "spike, input included, which Loihi's neurons do not; construct it with reset_delay=False or "
                    "reset_mechanism='subtract'"]
    if kind in ("RLeaky", "RSynaptic") and not isinstance(getattr(module, "recurrent", None), nn.Linear):
        return {}, [f"snnTorch {kind} maps with all_to_all=True and linear_features (a dense recurrent nn.Linear); "
                    "its one-to-one and conv2d recurrences are not mapped yet"]
    if mechanism == "zero":
        return {}, []
    return {"reset": mechanism, "reset_delay": delay and mechanism == "subtract"}, []


def _leaky(module: nn.Module, dt: float, shape: tuple[int, ...]) -> nir.NIRNode:
    beta = _full(module.beta, shape)
    vth = _full(module.threshold, shape)
    meta = snntorch_reset(module)[0]
    if np.all(beta == 1.0):
        return nir.IF(r=np.full(shape, 1.0 / dt), v_threshold=vth, v_reset=np.zeros(shape), metadata=meta)
    tau = dt / (1.0 - beta)
    return nir.LIF(tau=tau, r=tau / dt, v_leak=np.zeros(shape), v_threshold=vth, v_reset=np.zeros(shape),
                   metadata=meta)


def _synaptic(module: nn.Module, dt: float, shape: tuple[int, ...]) -> nir.NIRNode:
    alpha, beta = _full(module.alpha, shape), _full(module.beta, shape)
    tau_syn, tau_mem = dt / (1.0 - alpha), dt / (1.0 - beta)
    return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt, w_in=tau_syn / dt, v_leak=np.zeros(shape),
                       v_threshold=_full(module.threshold, shape), v_reset=np.zeros(shape),
                       metadata=snntorch_reset(module)[0])


def _lif_box(module: nn.Module, dt: float, shape: tuple[int, ...]) -> nir.NIRNode:
    p = module.p
    return nir.LIF(tau=1.0 / _full(p.tau_mem_inv, shape), r=np.ones(shape), v_leak=_full(p.v_leak, shape),
                   v_threshold=_full(p.v_th, shape), v_reset=_full(p.v_reset, shape))


def _norse_lif(module: nn.Module, dt: float, shape: tuple[int, ...]) -> nir.NIRNode:
    p = module.p
    tau_syn, tau_mem = 1.0 / _full(p.tau_syn_inv, shape), 1.0 / _full(p.tau_mem_inv, shape)
    return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=np.ones(shape), w_in=tau_syn / dt,
                       v_leak=_full(p.v_leak, shape), v_threshold=_full(p.v_th, shape), v_reset=_full(p.v_reset, shape))


def _at_or_above(threshold, shape: tuple[int, ...]) -> np.ndarray:
    """SpikingJelly's ``v >= vth`` as Loihi's ``v > vth'``: vth' the next float64 below vth."""
    return at_or_above(_full(threshold, shape))


def _sj_lif(module: nn.Module, dt: float, shape: tuple[int, ...]) -> nir.NIRNode:
    tau = float(module.tau)
    return nir.LIF(tau=np.full(shape, tau * dt), r=np.full(shape, 1.0 if module.decay_input else tau),
                   v_leak=np.zeros(shape), v_threshold=_at_or_above(module.v_threshold, shape), v_reset=np.zeros(shape))


def _sj_if(module: nn.Module, dt: float, shape: tuple[int, ...]) -> nir.NIRNode:
    return nir.IF(r=np.full(shape, 1.0 / dt), v_threshold=_at_or_above(module.v_threshold, shape),
                  v_reset=np.zeros(shape))


def _conv(module: nn.Module, shape: tuple[int, ...]) -> nir.NIRNode:
    weight = module.weight.detach().double().numpy()
    bias = np.zeros(weight.shape[0]) if module.bias is None else module.bias.detach().double().numpy()
    cls = nir.Conv2d if isinstance(module, nn.Conv2d) else nir.Conv1d
    return cls(input_shape=np.array(shape[1:]), weight=weight, stride=np.array(module.stride),
               padding=np.array(module.padding), dilation=np.array(module.dilation), groups=module.groups, bias=bias)


def _neuron_mappers() -> dict[str, Callable]:
    return {"Leaky": _leaky, "Synaptic": _synaptic, "RLeaky": _leaky, "RSynaptic": _synaptic, "LIFBoxCell": _lif_box,
            "LIFCell": _norse_lif, "LIFNode": _sj_lif, "IFNode": _sj_if}


def _norse_problems(name: str, module: nn.Module, dt: float | None) -> list[str]:
    kind, problems = type(module).__name__, []
    if dt is not None and abs(float(module.dt) - dt) > 1e-12 * dt:
        problems.append(f"{name}: norse {kind} dt={module.dt:g} s differs from the graph's dt={dt:g} s; "
                        f"compile with dt_s={module.dt:g} (--dt {module.dt:g}), the time step it was trained at")
    if np.any(_full(module.p.v_reset, (1,)) != 0):
        problems.append(f"{name}: norse {kind} v_reset != 0; Loihi resets to zero")
    if kind == "LIFCell" and np.any(_full(module.p.v_leak, (1,)) != 0):
        problems.append(f"{name}: norse LIFCell v_leak != 0 starts v at v_leak, Loihi at 0; use v_leak=0 (a "
                        "bias through the preceding layer) or LIFBoxCell")
    return problems


def conversion_problems(name: str, module: nn.Module, dt: float | None) -> list[str]:
    """Why ``module`` (named ``name``) cannot be converted to NIR at ``dt`` (None: any dt): [] when it can."""
    kind = type(module).__name__
    if kind in ("Leaky", "Synaptic", "RLeaky", "RSynaptic"):
        return [f"{name}: {p}" for p in snntorch_reset(module)[1]]
    if kind in ("LIFBoxCell", "LIFCell") and not isinstance(module, LIFCell):
        return _norse_problems(name, module, dt)
    if kind in ("LIFNode", "IFNode") and getattr(module, "v_reset", 0.0) != 0.0:
        return [f"{name}: SpikingJelly {kind} with v_reset={module.v_reset} ({'soft reset' if module.v_reset is None else 'reset to a nonzero value'}) "
                "is not mapped; construct it with v_reset=0.0 (its default, a hard reset to zero)"]
    if isinstance(module, (nn.MaxPool1d, nn.MaxPool2d)):
        return [f"{name}: MaxPool has no Loihi or NIR equivalent; use AvgPool2d (sum pooling) and retrain"]
    if isinstance(module, nn.AvgPool2d) and (module.ceil_mode or module.divisor_override or
                                             (not module.count_include_pad and module.padding)):
        return [f"{name}: AvgPool2d with ceil_mode, divisor_override or count_include_pad=False is not a sum "
                "pooling Loihi can fold; use the defaults"]
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return [f"{name}: BatchNorm must be folded into the preceding Linear/Conv before export"]
    if not isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.AvgPool2d, nn.Flatten, nn.Dropout, nn.Identity,
                               LIFCell)) and kind not in _neuron_mappers():
        return [f"{name}: {kind} has no NIR mapping in neurodeploy"]
    return []


def sequential_to_nir(layers: nn.Sequential | list[nn.Module], input_shape: tuple[int, ...], dt: float,
                      producer: str = "torch") -> nir.NIRGraph:
    """A chain ``input -> 0 -> 1 -> ... -> output`` for per-timestep modules applied in order."""
    modules = list(layers.named_children()) if isinstance(layers, nn.Sequential) else \
        [(str(i), m) for i, m in enumerate(layers)]
    problems = [p for name, m in modules for p in conversion_problems(name, m, dt)]
    if problems:
        raise SpikingPlanError(problems, "cannot export the front-end to NIR")
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array(input_shape)})}
    edges, previous, shape = [], "input", tuple(input_shape)
    probe = torch.zeros((1, *input_shape), dtype=torch.float64)
    for name, module in modules:
        kind = type(module).__name__
        if isinstance(module, (nn.Dropout, nn.Identity)):
            continue
        if isinstance(module, LIFCell):
            node = lif_to_nir(module, dt)
        elif kind in _neuron_mappers():
            node = _neuron_mappers()[kind](module, dt, shape)
        elif isinstance(module, nn.Linear):
            node = linear_to_nir(module)
        elif isinstance(module, (nn.Conv1d, nn.Conv2d)):
            node = _conv(module, shape)
        elif isinstance(module, nn.AvgPool2d):
            node = nir.AvgPool2d(kernel_size=np.array(_two(module.kernel_size)),
                                 stride=np.array(_two(module.stride or module.kernel_size)),
                                 padding=np.array(_two(module.padding)))
        else:  # nn.Flatten over the sample dimensions
            node = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=module.start_dim - 1,
                               end_dim=module.end_dim if module.end_dim < 0 else module.end_dim - 1)
        if kind not in _neuron_mappers() and not isinstance(module, LIFCell):
            with torch.no_grad():
                probe = copy.deepcopy(module).double()(probe)
            shape = tuple(probe.shape[1:])
        nodes[name] = node
        edges.append((previous, name))
        if kind in ("RLeaky", "RSynaptic"):  # the recurrent weights: population -> NAME.recurrent -> population
            nodes[f"{name}.recurrent"] = linear_to_nir(module.recurrent)
            edges += [(name, f"{name}.recurrent"), (f"{name}.recurrent", name)]
        previous = name
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    edges.append((previous, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": dt, "producer": producer})


def _two(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)
