"""lava-dl netx ``.net`` (HDF5) <-> :class:`~neurodeploy.spiking.plan.SpikingPlan`, with h5py only.

The format (lava-dl ``netx/hdf5.py``): groups ``layer/0``, ``layer/1``, ... each with ``type``
(``input``, ``conv``, ``flatten``, ``dense``), ``shape`` (C, H, W or n), and for synaptic layers
``weight`` (integers; conv in PyTorch layout), conv geometry in (H, W) order, an optional ``bias``
(per channel or per neuron) and a ``neuron`` group:

- ``CUBA``/``LOIHI``: Lava LIF with ``du = iDecay - 1``, ``dv = vDecay``, ``vth = vThMant`` and
  ``bias_mant = bias`` at ``bias_exp = 6``;
  An input layer with a neuron takes values, not only 0/1 (``graded_input``): its current is the input (a
  frame held as its bias, :func:`neurodeploy.runtime.inputs.frames_as_bias`);
- ``SDNN``: sigma-delta (ReLU) with ``vth = vThMant``, ``spike_exp = state_exp = 6``, graded 16-bit
  messages; the input layer is a Delta population, a layer with ``sigma_output`` a Sigma population.

Dense weights are effective integers; they are split into an 8-bit mantissa and an exponent so that
Lava's Dense fixed model (which drops the low bit of mixed-sign mantissas) computes them exactly.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from neurodeploy.errors import NetxFormatError
from neurodeploy.exporters.hdf5_guard import check_hdf5
from neurodeploy.spiking.plan import FixedNeuron, FixedSynapse, NeuronLayer, SpikingPlan, SynapseLayer

NETX_BIAS_EXP = 6
SDNN_EXP = 6
SDNN_MESSAGE_BITS = 16


def split_weights(weights: np.ndarray) -> tuple[np.ndarray, int]:
    """Effective integer weights -> (8-bit mantissas, exponent) with ``mantissas * 2**exp == weights``.

    Mixed-sign mantissas must be even (Lava truncates their low bit), so small mixed-sign weights are
    doubled and given exponent -1 (Lava's right shift of the even sum is exact).
    """
    w = np.asarray(np.rint(weights), dtype=np.int64)
    mixed = w.min(initial=0) < 0 < w.max(initial=0)
    if mixed and w.max() <= 127 and w.min() >= -128:
        return w * 2, -1
    limit = 254 if mixed else 255
    exp = 0
    while np.abs(w).max(initial=0) > limit * 2 ** exp or np.any(w % (2 ** exp)) or (mixed and np.any((w >> exp) % 2)):
        exp += 1
        if exp > 7:
            raise NetxFormatError(f"weights up to {np.abs(w).max()} have no 8-bit mantissa with an exponent <= 7")
    return w >> exp, exp


def _str(value) -> str:
    value = value[()]
    if isinstance(value, np.ndarray):
        value = value.ravel()[0]
    return value.decode("ascii") if isinstance(value, bytes) else str(value)


def _neuron(name: str, cfg: h5py.Group, shape: tuple[int, ...], bias, is_input: bool,
            problems: list[str]) -> tuple[NeuronLayer, FixedNeuron, bool]:
    """(population, its integers, whether it sends graded spikes)."""
    kind = _str(cfg["type"])
    n_bias = np.zeros(shape, dtype=np.int64) if bias is None else np.broadcast_to(
        np.asarray(bias, np.int64).reshape((-1,) + (1,) * (len(shape) - 1)), shape).copy()
    if kind in ("CUBA", "LOIHI"):
        du, dv, vth = int(cfg["iDecay"][()]) - 1, int(cfg["vDecay"][()]), int(cfg["vThMant"][()])
        fixed = FixedNeuron(du=du, dv=dv, vth=vth, bias_mant=n_bias, bias_exp=NETX_BIAS_EXP)
        layer = NeuronLayer(name=name, shape=shape, du=(du + 1) / 4096, dv=dv / 4096, vth=float(vth),
                            bias=n_bias * 2.0 ** NETX_BIAS_EXP / 64, model="lif", driven_by_input=is_input)
        return layer, fixed, False
    if kind == "SDNN":
        if "activation" in cfg and _str(cfg["activation"]) != "relu":
            problems.append(f"{name}: SDNN activation {_str(cfg['activation'])!r}; only relu runs in Lava")
        vth = int(cfg["vThMant"][()]) if "vThMant" in cfg else 0
        model = "delta" if is_input else ("sigma" if "sigma_output" in cfg else "sigma_delta")
        fixed = FixedNeuron(vth=vth, bias_mant=n_bias, spike_exp=SDNN_EXP, state_exp=SDNN_EXP)
        layer = NeuronLayer(name=name, shape=shape, du=1.0, dv=0.0, vth=float(vth), bias=n_bias.astype(float),
                            model=model, driven_by_input=is_input)
        return layer, fixed, True
    problems.append(f"{name}: neuron type {kind!r} is not supported (CUBA, LOIHI and SDNN are)")
    return NeuronLayer(name=name, shape=shape, du=1, dv=0, vth=1, bias=np.zeros(shape)), FixedNeuron(), False


def read_netx(path: str | Path, dt: float = 1e-3) -> SpikingPlan:
    """Read a netx ``.net`` file into a plan whose fixed-point parameters are the file's integers (checked first:
    :func:`~neurodeploy.exporters.hdf5_guard.check_hdf5`)."""
    check_hdf5(path)
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise NetxFormatError(f"{path}: not a readable HDF5 file ({exc})", "cannot read the netx file") from exc
    with handle as f:
        try:
            return _read(f, dt)
        except NetxFormatError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, OSError, AttributeError, RuntimeError) as exc:
            raise NetxFormatError(f"{path}: malformed netx content ({type(exc).__name__}: {exc})",
                                  "cannot read the netx file") from exc


def _read(f: h5py.File, dt: float) -> SpikingPlan:
    problems: list[str] = []
    if "layer" not in f:
        raise NetxFormatError("no 'layer' group", "cannot read the netx file")
    groups = f["layer"]
    keys = sorted(groups, key=lambda k: int(k) if k.isdigit() else -1)
    layers, fixed = [], {}
    input_shape, previous, prev_graded, delay = None, "input", False, 0
    for key in keys:
        g = groups[key]
        try:
            kind = _str(g["type"])
            shape = tuple(int(d) for d in np.atleast_1d(g["shape"][()]))
        except KeyError as exc:
            problems.append(f"layer/{key}: missing {exc}")
            continue
        name = f"layer{key}"
        if kind == "input":
            input_shape = shape
            if "neuron" in g:
                pop, q, prev_graded = _neuron(name, g["neuron"], shape, None, True, problems)
                layers.append(pop)
                fixed[name], previous = q, name
            continue
        if kind == "flatten":
            continue
        if kind not in ("conv", "dense"):
            problems.append(f"layer/{key}: layer type {kind!r} is not supported (input, conv, flatten, dense are)")
            continue
        if input_shape is None:
            problems.append(f"layer/{key}: no input layer before it")
            continue
        if "neuron" not in g or "weight" not in g:
            problems.append(f"layer/{key}: a {kind} layer needs 'weight' and 'neuron'")
            continue
        weight = np.asarray(g["weight"][()], dtype=np.float64)
        if not np.all(np.isfinite(weight)) or np.any(weight != np.rint(weight)):
            problems.append(f"layer/{key}: weights must be finite integers")
            continue
        in_shape = input_shape if previous == "input" else fixed_shape(layers, previous)
        bias = g["bias"][()] if "bias" in g else None
        pop, q, graded = _neuron(name, g["neuron"], shape, bias, False, problems)
        msg_bits = SDNN_MESSAGE_BITS if prev_graded else 0
        syn_name = f"{name}.synapse"
        if kind == "conv":
            w = weight.reshape(weight.shape[:4])
            syn = SynapseLayer(name=syn_name, source=previous, target=name, weights=w, kind="conv", in_shape=in_shape,
                               out_shape=shape, stride=_hw(g, "stride"), padding=_hw(g, "padding"),
                               dilation=_hw(g, "dilation"), groups=int(g["groups"][()]) if "groups" in g else 1,
                               graded=prev_graded)
            fixed[syn_name] = FixedSynapse(weights=w.astype(np.int64), num_message_bits=msg_bits)
        else:
            w = weight.reshape(int(np.prod(shape)), -1)
            try:
                mant, exp = split_weights(w)
            except NetxFormatError as exc:
                problems.append(f"layer/{key}: {exc.problems[0]}")
                continue
            syn = SynapseLayer(name=syn_name, source=previous, target=name, weights=w, kind="dense",
                               in_shape=in_shape, out_shape=shape, graded=prev_graded)
            fixed[syn_name] = FixedSynapse(weights=mant, weight_exp=exp, num_message_bits=msg_bits)
        delay += 1
        pop.delay_steps = delay
        layers += [syn, pop]
        fixed[name], previous, prev_graded = q, name, graded
    if problems or input_shape is None:
        raise NetxFormatError(problems or ["no input layer"], "cannot read the netx file")
    return SpikingPlan(input_shape=input_shape, layers=layers, outputs={"output": previous}, dt=dt, fixed=fixed,
                       graded_input=any(p.driven_by_input for p in layers if isinstance(p, NeuronLayer)))


def fixed_shape(layers: list, name: str) -> tuple[int, ...]:
    return next(layer.shape for layer in layers if isinstance(layer, NeuronLayer) and layer.name == name)


def _hw(g: h5py.Group, key: str) -> tuple[int, int]:
    if key not in g:
        return (0, 0) if key == "padding" else (1, 1)
    v = np.atleast_1d(g[key][()]).astype(int)
    return (int(v[0]), int(v[-1]))


def write_netx(plan: SpikingPlan, path: str | Path) -> None:
    """Write a quantized feed-forward chain plan as a netx ``.net`` file; refuse what netx cannot hold."""
    problems = _export_problems(plan)
    if problems:
        raise NetxFormatError(problems, "cannot express the plan as a netx file")
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        index = 0
        g = layer.create_group(str(index))
        g["type"] = np.array([b"input"])
        g["shape"] = np.array(plan.input_shape, dtype=np.int64)
        first = plan.neurons[0]
        if first.driven_by_input:
            _write_neuron(g, first, plan.fixed[first.name])
        previous_shape = plan.input_shape
        for pop in plan.neurons[1:] if first.driven_by_input else plan.neurons:
            syn = plan.incoming(pop.name)[0]
            q_syn = plan.fixed[syn.name]
            if syn.kind == "dense" and len(previous_shape) > 1:
                index += 1
                fl = layer.create_group(str(index))
                fl["type"] = np.array([b"flatten"])
                fl["shape"] = np.array([int(np.prod(previous_shape)), 1, 1], dtype=np.int64)
            index += 1
            g = layer.create_group(str(index))
            g["shape"] = np.array(pop.shape, dtype=np.int64)
            effective = q_syn.weights.astype(np.int64) * 2 ** q_syn.weight_exp if q_syn.weight_exp >= 0 else \
                q_syn.weights.astype(np.int64) >> -q_syn.weight_exp
            g["weight"] = effective.astype(np.float32)
            if syn.kind == "conv":
                g["type"] = np.array([b"conv"])
                for key, value in (("stride", syn.stride), ("padding", syn.padding), ("dilation", syn.dilation)):
                    g[key] = np.array(value, dtype=np.int64)
                g["groups"] = np.int64(syn.groups)
                g["inChannels"], g["outChannels"] = np.int64(syn.in_shape[0]), np.int64(pop.shape[0])
                g["kernelSize"] = np.array(syn.weights.shape[2:], dtype=np.int64)
            else:
                g["type"] = np.array([b"dense"])
                g["inFeatures"], g["outFeatures"] = np.int64(syn.weights.shape[1]), np.int64(syn.weights.shape[0])
            _write_neuron(g, pop, plan.fixed[pop.name])
            previous_shape = pop.shape


def _bias_per_channel(pop: NeuronLayer, q: FixedNeuron) -> np.ndarray:
    bias = np.broadcast_to(np.asarray(q.bias_mant, np.int64), pop.shape)
    if pop.model in ("lif", "li"):
        shift = q.bias_exp - NETX_BIAS_EXP
        bias = bias << shift if shift >= 0 else bias >> -shift
    return bias.reshape(pop.shape[0], -1)[:, 0] if len(pop.shape) > 1 else bias


def _write_neuron(g: h5py.Group, pop: NeuronLayer, q: FixedNeuron) -> None:
    bias = _bias_per_channel(pop, q)
    if np.any(bias != 0):
        g["bias"] = bias.astype(np.float32)
    n = g.create_group("neuron")
    if pop.model in ("lif", "li"):
        n["type"] = "CUBA"
        n["iDecay"], n["vDecay"], n["vThMant"] = np.int64(q.du + 1), np.int64(q.dv), np.int64(q.vth)
        n["refDelay"], n["wgtExp"] = np.int64(1), np.int64(0)
    else:
        n["type"], n["activation"], n["vThMant"] = "SDNN", "relu", np.int64(q.vth)
        if pop.model == "sigma":
            n["sigma_output"] = True


def _export_problems(plan: SpikingPlan) -> list[str]:
    problems = []
    if not plan.is_quantized:
        problems.append("the plan is not quantized; run neurodeploy.spiking.quantize.quantize first")
        return problems
    for pop in plan.neurons:
        syns = plan.incoming(pop.name)
        if pop.reset != "zero":
            problems.append(f"{pop.name}: a {pop.reset} reset has no netx form (netx LIF neurons reset to zero)")
        if pop.driven_by_input and pop is plan.neurons[0]:
            continue
        if len(syns) != 1 or syns[0].recurrent or syns[0].source == "bias":
            problems.append(f"{pop.name}: netx holds one feed-forward synapse per layer; found "
                            f"{[s.name for s in syns]} (bias lines and recurrence have no netx form)")
            continue
        q_syn, q = plan.fixed[syns[0].name], plan.fixed[pop.name]
        if q_syn.weight_exp < -1 or (q_syn.weight_exp == -1 and np.any(q_syn.weights % 2)):
            problems.append(f"{syns[0].name}: weight exponent {q_syn.weight_exp} leaves fractional weights")
        if pop.model in ("lif", "li"):
            bias = np.broadcast_to(np.asarray(q.bias_mant, np.int64), pop.shape)
            shift = q.bias_exp - NETX_BIAS_EXP
            if shift < 0 and np.any(bias % (1 << -shift)):
                problems.append(f"{pop.name}: bias at exponent {q.bias_exp} is not a multiple of 2**6")
            if len(pop.shape) > 1 and not np.all(bias.reshape(pop.shape[0], -1) == bias.reshape(pop.shape[0], -1)[:, :1]):
                problems.append(f"{pop.name}: netx stores one bias per channel; this population's bias varies")
    chain = [p.name for p in plan.neurons]
    for a, b in zip(chain, chain[1:]):
        if plan.incoming(b) and plan.incoming(b)[0].source != a:
            problems.append(f"{b}: fed by {plan.incoming(b)[0].source}, not the previous layer {a}; netx is a chain")
    return problems
