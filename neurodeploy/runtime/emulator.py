"""A batched emulator of exactly the Lava processes neurodeploy builds: bit-exact with Lava ``fixed_pt``.

Lava's CPU backend runs one sample at a time, about 100-1,000 steps per second. The emulator runs
the same equations, vectorised over a batch of samples with PyTorch (CPU, or CUDA when present), in
the same step order as Lava's processes, with the same integer widths:

- Dense / Conv (fixed): each step sends the buffer it computed the step before (Lava's one-step
  synaptic delay), then computes ``a = sum(w * s) << weight_exp`` (a negative exponent shifts right,
  rounding down). Dense weights are clipped and truncated as Lava does (:func:`lava_dense_weights`);
  binary inputs count as ``s != 0``; graded inputs (``num_message_bits > 0``) multiply, in int32.
  Conv has no exponent and wraps its output to 24 bits. Every message crosses a channel as int32.
- LIF (fixed, 24-bit ``u`` and ``v``, 12-bit decays)::

      u = sign(u) (|u| (4096 - du - 1) >> 12) + (a_in << 6)        wrapped once to 24 bits
      v = sign(v) (|v| (4096 - dv) >> 12) + u + (bias_mant << bias_exp)   clipped to +-(2^23 - 1)
      s = v > (vth << 6);  v <- 0 where s

- Sigma-delta (fixed; ``vth`` and ``bias`` scaled by ``2**(spike_exp + state_exp)`` as Lava's processes
  do): ``sigma += a_in``; ``act = relu(sigma + bias)``; ``delta = act - act_prev +
  residue``; ``s = delta`` where ``|delta| >= vth`` else 0; ``residue = delta - s``; out ``s >> state_exp``.
- Float models: ``u = u (1 - du) + a``; ``v = v (1 - dv) + u + bias``; ``s = v > vth``; Lava's float
  Conv computes in float32, so does the emulator's.

A plan without recurrent synapses runs in blocks of steps (:func:`block_steps`): population after population
(sources first), each synaptic layer's sums over the whole block as one matrix product (rows: step x
sample), then the population's update step by step; the same operations per element in the same order as
step after step, so the same integers (Lava's delay: the block's first step takes the buffer the last
block left, each later step the sums of the step before). Runs that write their input mid-run
(feedback) go step by step.

Integer sums are computed as floating-point matrix products, which are exact while every partial sum
fits the mantissa: float32 when ``max|w| * fan_in * max|s| < 2**24``, else float64 (2**53); a layer
that could exceed that raises :class:`EmulatorError` rather than round. On a CPU, binary spikes into a
dense layer may instead be summed event-driven, in int32 (:mod:`neurodeploy.runtime.event_kernel`: the same
integers; chosen per block by the measured time for its number of spikes), and a fixed-point LIF block runs
in one compiled loop (:mod:`neurodeploy.runtime.lif_kernel`). A fixed-point 2-D conv on a CPU runs channels
last (oneDNN's fast kernels), and so does every population it feeds (sums, ``u``, ``v`` and spikes stored
(..., H, W, C)); a population fed only by such convs, none of which wraps, whose input stays below 2**24,
takes its block's input as the convs' float32 sums themselves (exact integers; no int64 copy or addition),
and convs from one source with one geometry (the quantizer's precision-double pairs) run over a block as one
conv of their summed weights (conv(s, w1) + conv(s, w2) = conv(s, w1 + w2), exact), each one's own conv of
the block's last step filling its buffer. Each sample runs ``T + D``
steps from the zero state, D the deepest population's delay, and spikes are aligned as
:class:`neurodeploy.runtime.lava_runner.LavaRunner` aligns them.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from neurodeploy.choices import MODES
from neurodeploy.errors import EmulatorError, InputShapeError, SpikingPlanError, UsageError
from neurodeploy.runtime import lif_kernel
from neurodeploy.runtime.event_kernel import EventSums
from neurodeploy.runtime.runners import SampleSpikes, check_input_values
from neurodeploy.spiking.loihi import (LAVA, UV_LIMIT, decay, fixed_lif_constants, lava_conv_weights,
                                      lava_dense_weights, lif_fixed_step, shift, wrap_int)
from neurodeploy.spiking.plan import NEURON_STATE, NeuronLayer, SpikingPlan, SynapseLayer
from neurodeploy.spiking.float_simulation import apply_synapse
from neurodeploy.spiking.resets import after_spike, fired_before, subtract_delayed, threshold

FLOAT32_EXACT = 2 ** 24
FLOAT64_EXACT = 2 ** 53
STATE_BITS, ACT_SHIFT = LAVA.state_bits, LAVA.act_shift
GRADED_MAX = 2 ** 31  # a graded message is an int32
DEFAULT_BATCH_SIZE = 256
BLOCK_ROWS = 1024  # about this many rows (steps x samples) per block of a plan without recurrence ...
BLOCK_STEPS = (8, 64)  # ... in at least 8 and at most 64 steps (see :func:`block_steps`)


@dataclass
class _Synapse:
    """One synaptic layer, ready to run: weights on the device in the accumulation dtype."""

    layer: SynapseLayer
    weights: torch.Tensor
    graded: bool  # multiply by the source's value instead of counting it as a 0/1 spike
    weight_exp: int = 0
    bound: int = 2 ** 63  # the largest |message| before Lava's wrap (fixed mode)
    events: EventSums | None = None  # event-driven sums (fixed mode, binary spikes into a dense layer, CPU)
    channels_last: bool = False  # a fixed-point 2-D conv on a CPU: computed in channels-last memory order
    message: torch.Tensor | None = None  # an always-on bias line's message (*out_shape), once computed

    def accumulate(self, s: torch.Tensor) -> torch.Tensor:
        """s (B, *in_shape) -> the synaptic sum (B, *out_shape), in the accumulation dtype. A fixed-point 2-D
        conv on a CPU runs in channels-last memory order (oneDNN's faster kernels: 2.6-6x on the NIR paper
        CNN's layers here): integer-valued float32 sums within 2**24 are exact in any order."""
        return apply_synapse(self.layer, self.weights, self.operand(s))

    def operand(self, s: torch.Tensor) -> torch.Tensor:
        """What the product reads of ``s``: its values, or 0/1 for binary spikes, in the accumulation dtype (a
        channels-last conv's converted and reordered in one pass)."""
        if not self.graded and s.dtype != torch.bool:
            s = s != 0
        if s.dtype == torch.bool:  # the same 0/1 bytes: torch converts uint8 to float 6x faster than bool here
            s = s.view(torch.uint8)
        layout = torch.channels_last if self.channels_last else torch.preserve_format
        return s.to(self.weights.dtype, memory_format=layout)


@dataclass
class _ConvGroup:
    """Channels-last convs from one source into one population, of one geometry, where their sums add in
    float32 without a wrap (:meth:`EmulatorRunner._sums_in_float32`): over a block one conv with their summed
    weights computes what they deliver together (conv(s, w1) + conv(s, w2) = conv(s, w1 + w2), exact integers
    within 2**24), and each one's own conv of the block's last step fills its buffer (Lava's ``a_buff``). The
    quantizer's precision ``double`` makes such pairs (a layer and the one that ``refines`` it)."""

    synapses: list[_Synapse]
    weights: torch.Tensor  # summed, channels last


@dataclass
class EmulatorRun:
    """A batch: spikes (B, T, *shape) aligned to the input, as recorded (B, T + D, *shape), final state."""

    spikes: dict[str, np.ndarray]
    raw: dict[str, np.ndarray]
    state: dict[str, dict[str, np.ndarray]]  # population or synapse -> variable -> (B, *shape)
    wall_s: float
    saturation: dict[str, dict[str, int]] = field(default_factory=dict)  # fixed LIF: u wraps, v clips (events)


@dataclass
class _Populations:
    """Per-population state tensors during one batch."""

    state: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    out: dict[str, torch.Tensor] = field(default_factory=dict)  # the spikes of the current step


class EmulatorRunner:
    """``with EmulatorRunner(plan, T, mode="fixed") as run: run.run_batch(x)``; x (B, T, *input_shape).

    The same interface as :class:`neurodeploy.runtime.lava_runner.LavaRunner` (``run_sample`` with pauses),
    plus ``run_batch`` and ``run_many``. ``device``: ``"cuda"`` when a GPU is present, else ``"cpu"``.
    ``branch_free`` (default: on a GPU) takes the path that never reads a value back mid-run.
    """

    def __init__(self, plan: SpikingPlan, num_steps: int, mode: str = "fixed", device: str | None = None,
                 branch_free: bool | None = None) -> None:
        if mode not in MODES:
            raise UsageError(f"mode must be one of {list(MODES)}, got {mode!r}")
        if mode == "fixed" and not plan.is_quantized:
            from neurodeploy.spiking.quantize import quantize

            plan = quantize(plan).plan
        if mode == "float":
            bad = [f"{p.name}: {p.model}" for p in plan.neurons if p.model not in ("lif", "li")]
            if bad:
                raise SpikingPlanError(bad, "these populations run in fixed mode only")
        self.plan, self.num_steps, self.mode = plan, int(num_steps), mode
        self.delay_steps = plan.max_delay_steps
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        # on a GPU, never read a value back mid-run (saturation is counted branch-free); on a CPU, skip
        # the wrap and clip passes when a cheap min/max shows that nothing saturated
        self.branch_free = self.device.type != "cpu" if branch_free is None else branch_free
        self.synapses = [self._prepare(syn) for syn in plan.synapses]
        self.incoming = {p.name: [s.name for s in plan.incoming(p.name)] for p in plan.neurons}
        self.order = _sources_first(plan)  # None: a recurrent plan, run step by step
        self.by_target = {p.name: [s for s in self.synapses if s.layer.target == p.name] for p in plan.neurons}
        self.channels_last = {p.name: any(s.channels_last for s in self.by_target[p.name]) for p in plan.neurons}
        self.conv_groups = {p.name: _conv_groups([s for s in self.by_target[p.name] if s.channels_last])
                            for p in plan.neurons if self.order is not None and self._sums_in_float32(p)}
        self._scratch: dict[str, torch.Tensor] = {}  # population -> its block sums (:meth:`_block_sums`)
        self._closed = False

    # -- set-up -------------------------------------------------------------------------------------
    def _prepare(self, syn: SynapseLayer) -> _Synapse:
        if self.mode == "float":
            dtype = torch.float32 if syn.kind == "conv" else torch.float64  # Lava's float Conv is float32
            return _Synapse(syn, torch.as_tensor(np.ascontiguousarray(syn.weights), dtype=dtype, device=self.device),
                            syn.carries_values)
        fixed = self.plan.fixed[syn.name]
        weights = np.asarray(fixed.weights)
        if syn.kind == "dense":
            weights = lava_dense_weights(weights, fixed.num_weight_bits).astype(np.int64)
        else:  # as the runtime hands them to Lava's Conv
            weights = lava_conv_weights(weights, fixed.weight_exp)
        graded = fixed.num_message_bits > 0
        bound = int(np.abs(weights).max(initial=0)) * syn.fan_in * (GRADED_MAX if graded else 1)
        if bound >= FLOAT64_EXACT:
            raise EmulatorError(f"{syn.name}: a synaptic sum could reach {bound:.3g}, beyond exact float64 "
                                f"(2**53); the emulator would round where Loihi does not")
        dtype = torch.float32 if bound < FLOAT32_EXACT else torch.float64
        exp = fixed.weight_exp if syn.kind == "dense" else 0
        dot_bound = bound  # the sum before the shift: event-driven sums add it in int32
        if syn.kind == "dense":  # the message before the int32 channel: shifted, unbounded if the dot product wraps
            bound = 2 ** 63 if graded and bound >= GRADED_MAX else (bound << exp if exp >= 0 else -(-bound >> -exp))
        events = EventSums(weights) if syn.kind == "dense" and not graded and max(bound, dot_bound) < 2 ** 31 and \
            self.device.type == "cpu" and EventSums.available() else None
        channels_last = syn.kind == "conv" and len(syn.in_shape) == 3 and self.device.type == "cpu" and \
            dtype == torch.float32
        w = torch.as_tensor(weights, dtype=dtype, device=self.device)
        if channels_last:
            w = w.contiguous(memory_format=torch.channels_last)
        return _Synapse(syn, w, graded, exp, bound, events, channels_last)

    def _fixed_sums(self, syn: _Synapse, s: torch.Tensor) -> torch.Tensor:
        """The synapse's integer sums of ``s`` (B, *in_shape), int64: event-driven or as one matrix product,
        whichever :class:`~neurodeploy.runtime.event_kernel.EventSums` measured faster for this many spikes
        (both exact)."""
        events = syn.events.sums((s != 0).reshape(len(s), -1).numpy()) if syn.events is not None else None
        if events is not None and not syn.events.measuring:
            return torch.from_numpy(events).reshape(len(s), *syn.layer.out_shape)
        t0 = time.perf_counter()
        acc = syn.accumulate(s).to(torch.int64)  # exact: integer-valued; a conv's in its target's memory order
        if syn.events is not None and syn.events.measuring:
            syn.events.product_took(time.perf_counter() - t0, len(s))
        return acc

    def synapse_bound(self, syn: _Synapse) -> int:
        """The largest |message| the synapse can send (fixed mode), after Lava's wraps."""
        return min(syn.bound, UV_LIMIT if syn.layer.kind == "conv" else GRADED_MAX)

    def input_bound(self, p: NeuronLayer) -> int:
        """The largest |a_in| population ``p`` can receive in one step (fixed mode)."""
        total = sum(self.synapse_bound(s) for s in self.synapses if s.layer.target == p.name)
        if p.driven_by_input:
            total += GRADED_MAX if self.plan.graded_input else 1
        return total

    # -- one step of every process ------------------------------------------------------------------
    def _synapse_output(self, syn: _Synapse, s: torch.Tensor) -> torch.Tensor:
        """What the synapse will send next step (Lava's ``a_buff``)."""
        if self.mode == "float":
            return syn.accumulate(s).to(torch.float64)
        acc = self._fixed_sums(syn, s)
        if syn.layer.kind == "conv":
            return acc if syn.bound < UV_LIMIT else wrap_int(acc, STATE_BITS)  # Lava: signed_clamp(x, bits=24)
        if syn.graded:
            acc = wrap_int(acc)  # int32 dot product
        acc = shift(acc, syn.weight_exp)
        return acc if syn.bound < GRADED_MAX else wrap_int(acc)  # int32 channel

    def _init_state(self, batch: int) -> _Populations:
        pops = _Populations()
        for p in self.plan.neurons:
            pops.state[p.name] = {k: self._population_zeros(p, (batch,), self._sums_dtype)
                                  for k in NEURON_STATE[p.model]}
        return pops

    def _population_zeros(self, p: NeuronLayer, lead: tuple[int, ...], dtype: torch.dtype,
                          new=torch.zeros) -> torch.Tensor:
        """Zeros (*lead, *p.shape) in the population's memory order: channels last (logically (..., C, H, W),
        stored (..., H, W, C)) where a channels-last conv feeds it, so that its sums, state and spikes never
        change order between the conv and the LIF loop. ``new=torch.empty``: uninitialised (every element
        written before it is read)."""
        if not self.channels_last[p.name]:
            return new((*lead, *p.shape), dtype=dtype, device=self.device)
        c, h, w = p.shape
        return new((*lead, h, w, c), dtype=dtype, device=self.device).movedim(-1, -3)

    def _params(self, p: NeuronLayer) -> dict:
        """Per-population constants, on the device."""
        dev = self.device
        if self.mode == "float":
            vth = np.inf if p.model == "li" else p.vth
            return {"bias": torch.as_tensor(np.broadcast_to(p.bias, p.shape).copy(), dtype=torch.float64, device=dev),
                    "reset": p.zeroed_at_step(p.bias), "du": p.du, "dv": p.dv, "vth": vth}
        q = self.plan.fixed[p.name]
        mant = np.broadcast_to(np.asarray(q.bias_mant), p.shape)
        if p.model in ("lif", "li"):
            constants, saturated = fixed_lif_constants(p, q), torch.zeros(2, dtype=torch.int64, device=dev)
            small_input = self.input_bound(p) < 1 << (STATE_BITS - 1 - ACT_SHIFT)
            return {**constants, "bias": constants["bias"].to(dev), "reset": p.zeroed_at_step(mant),
                    "saturated": saturated, "has_bias": bool(np.any(mant != 0)) or not small_input,
                    "arithmetic": IntegerArithmetic(saturated, small_input, self.branch_free)}
        scale = 1 << (int(q.spike_exp) + int(q.state_exp))  # Lava's sdn processes scale vth and bias by it
        return {"bias": torch.as_tensor(mant.astype(np.int64) * scale, device=dev), "vth": int(q.vth) * scale,
                "spike_exp": int(q.spike_exp), "state_exp": int(q.state_exp)}

    def _neuron_step(self, p: NeuronLayer, st: dict[str, torch.Tensor], a: torch.Tensor, c: dict, step: int) -> torch.Tensor:
        """Advance one population by one step (``step`` is Lava's 1-based time step); return its output
        (an LI readout's output is its voltage)."""
        s = self._advance(p, st, a, c, step)
        return st["v"].clone() if p.sends_voltage else s

    def _advance(self, p: NeuronLayer, st: dict[str, torch.Tensor], a: torch.Tensor, c: dict, step: int) -> torch.Tensor:
        if c.get("reset") is not None and step % self.run_steps == c["reset"] % self.run_steps:
            st["u"].zero_()
            st["v"].zero_()
        if self.mode == "float":
            fired = fired_before(st["v"], c["vth"], p.reset)
            st["u"] = st["u"] * (1 - c["du"]) + a
            st["v"] = subtract_delayed(st["v"] * (1 - c["dv"]) + st["u"] + c["bias"], fired, c["vth"], p.reset)
            s = threshold(st["v"], fired, c["vth"], p.reset)
            st["v"] = after_spike(st["v"], s, c["vth"], p.reset)
            return s
        if p.model in ("lif", "li"):
            st["u"], st["v"], s = lif_fixed_step(st["u"], st["v"], a, c, p.reset, c["arithmetic"])
            return s
        return _sdn_fixed(p.model, st, wrap_int(a), c)

    # -- running --------------------------------------------------------------------------------------
    def run_batch(self, x: np.ndarray, pause_at: list[int] | None = None,
                  on_pause: Callable | None = None, reads_only: bool = False) -> EmulatorRun:
        """x (B, T, *input_shape) (or (B, T, n_in)) -> spikes of every population, aligned to x.

        With ``pause_at``, ``on_pause(steps_run, read_population, write_input)`` is called after those
        step counts (up to T + D, the last step), as in :meth:`LavaRunner.run_sample` (``read_population``
        as :meth:`_reader`; ``write_input`` rows are (n, *input_shape), the same for every sample of the batch).
        ``reads_only``: the pauses only read, so a plan without recurrence may run in blocks of steps (each
        ending at the next pause, at most :func:`block_steps` long).
        """
        if self._closed:
            raise RuntimeError("this EmulatorRunner is closed")
        x = self._check_input(x)
        batch, steps = x.shape[0], self.num_steps + self.delay_steps
        self.run_steps = steps
        xs = self._inputs_over_time(x, steps, compact=not pause_at or reads_only)
        params = {p.name: self._params(p) for p in self.plan.neurons}
        pops = self._init_state(batch)
        buffers = {s.layer.name: self._zeros(batch, s.layer.out_shape) for s in self.synapses}
        record = {p.name: self._population_zeros(p, (steps, batch), self._record_dtype(p), torch.empty)
                  for p in self.plan.neurons}  # every step written, in step order, before it is read
        pauses = sorted({s for s in (pause_at or []) if 0 < s <= steps})
        t0 = time.perf_counter()
        blocks = block_steps(batch) if self.order is not None and (not pauses or reads_only) else 1
        with torch.no_grad():
            start = 0
            while start < steps:
                end = min(steps, start + blocks, pauses[0] if pauses else steps)  # a block ends at a pause
                if blocks == 1:
                    self._step(start, xs, pops, buffers, params, record, batch)
                else:
                    self._block(start, end, xs, pops, buffers, params, record, batch)
                while pauses and pauses[0] <= end:
                    done = pauses.pop(0)
                    on_pause(done, self._reader(record, done), self._writer(xs))
                start = end
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self._scratch.clear()
        return self._batch_run(record, pops, buffers, params, time.perf_counter() - t0)

    def _inputs_over_time(self, x: np.ndarray, steps: int, compact: bool) -> torch.Tensor:
        """x (B, T, ...) -> (T + D, B, ...) on the device, zero after T; fixed mode: int64 (Lava's int32
        RingBuffer), or with ``compact`` (nothing written mid-run) bool where the input is binary (checked:
        :func:`~neurodeploy.runtime.runners.check_input_values`)."""
        dtype = torch.float64 if self.mode == "float" else torch.bool if compact and not self.plan.graded_input \
            else torch.int64  # float -> int64 truncates, as trunc does
        xs = torch.empty((steps, len(x), *self.plan.input_shape), dtype=dtype, device=self.device)
        xs[: self.num_steps] = torch.as_tensor(np.moveaxis(x, 1, 0), device=self.device).to(dtype)
        xs[self.num_steps:] = 0
        return xs

    def _batch_run(self, record: dict[str, torch.Tensor], pops: _Populations, buffers: dict[str, torch.Tensor],
                   params: dict[str, dict], wall_s: float) -> EmulatorRun:
        """The recorded outputs (aligned and as recorded), the final state and the saturation counts."""
        raw = {p.name: _compact(torch.movedim(record[p.name], 0, 1), p.output_dtype) for p in self.plan.neurons}
        spikes = {p.name: np.ascontiguousarray(raw[p.name][:, p.delay_steps: p.delay_steps + self.num_steps])
                  for p in self.plan.neurons}  # aligned: as :meth:`_aligned` reads them
        state = {name: {k: _state_array(v) for k, v in st.items()} for name, st in pops.state.items()}
        state.update({name: {"a_buff": _state_array(b)} for name, b in buffers.items()})
        saturation = {name: dict(zip(("u_wrapped", "v_clipped"), c["saturated"].tolist()))
                      for name, c in params.items() if "saturated" in c}
        return EmulatorRun(spikes, raw, state, wall_s, saturation)

    def _writer(self, xs: torch.Tensor) -> Callable:
        """``write(first, rows)``: the input of steps first .. first + len(rows) - 1 set to ``rows`` (n,
        *input_shape) for every sample; refused in a run that said its pauses only read (its input is kept
        as bool)."""
        def write(first: int, rows) -> None:
            if xs.dtype == torch.bool:
                raise UsageError("this run was started with reads_only=True, so its pauses may not write its input")
            xs[first: first + len(rows)].copy_(torch.as_tensor(rows, device=self.device)[:, None].to(xs.dtype))
        return write

    def _reader(self, record: dict[str, torch.Tensor], done: int) -> Callable:
        """``read(name, batch=False, since=0)``: a population's outputs so far as float64, aligned to the
        input, from aligned step ``since`` on: (steps, *shape) of the first sample (as
        :meth:`LavaRunner.run_sample` reads), with ``batch`` (B, steps, *shape)."""
        def read(name: str, batch: bool = False, since: int = 0) -> torch.Tensor:
            outputs = self._aligned(record, name, done)[:, since:]
            return (outputs if batch else outputs[0]).to(torch.float64)
        return read

    def _record_dtype(self, p: NeuronLayer) -> torch.dtype:
        """Spikes as bool; sigma-delta messages and LI voltages as the state's numbers."""
        if p.model == "lif" and not p.sends_v:
            return torch.bool
        return torch.float64 if self.mode == "float" else torch.int64

    def _aligned(self, record: dict[str, torch.Tensor], name: str, done: int) -> torch.Tensor:
        """(B, done - delay, *shape) on the CPU, as recorded: a population's outputs so far, aligned to the input."""
        d = self.plan.layer(name).delay_steps
        return torch.movedim(record[name][d:done], 0, 1).cpu()

    @property
    def _sums_dtype(self) -> torch.dtype:
        """Synaptic sums, buffers and states: float64 in float mode, int64 in fixed."""
        return torch.float64 if self.mode == "float" else torch.int64

    def _zeros(self, batch: int, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.zeros((batch, *shape), dtype=self._sums_dtype, device=self.device)

    def _step(self, t: int, xs, pops: _Populations, buffers, params, record, batch: int) -> None:
        """Lava time step t + 1: synapses send last step's sums, populations update, synapses accumulate."""
        for p in self.plan.neurons:
            inputs = [buffers[name] for name in self.incoming[p.name]]
            if p.driven_by_input:
                inputs.append(xs[t].reshape(batch, *p.shape).to(self._sums_dtype))
            a = sum(inputs[1:], inputs[0]) if inputs else self._zeros(batch, p.shape)
            out = self._neuron_step(p, pops.state[p.name], a, params[p.name], t + 1)
            pops.out[p.name] = out
            record[p.name][t] = out
        for syn in self.synapses:
            layer = syn.layer
            if layer.source == "bias":
                s = torch.full((batch, 1), 1 if t >= layer.start_step else 0, device=self.device)
            else:
                s = xs[t] if layer.source == "input" else pops.out[layer.source]
            buffers[layer.name] = self._synapse_output(syn, s.reshape(batch, *layer.in_shape))

    def _block(self, start: int, end: int, xs, pops: _Populations, buffers, params, record, batch: int) -> None:
        """Lava time steps start + 1 .. end, population after population (sources first)."""
        for p in self.order:
            groups = self.conv_groups.get(p.name, []) if self._compiled(p) else []
            a = self._block_sums(p, end - start, batch) if groups else \
                self._population_zeros(p, (end - start, batch), self._sums_dtype)
            for group in groups:
                self._add_convs(a, group, start, end, xs, record, buffers, batch)
            grouped = {syn.layer.name for group in groups for syn in group.synapses}
            for syn in self.by_target[p.name]:  # exact integers: the order of the sums does not matter
                if syn.layer.name not in grouped:
                    self._add_sent(a, syn, start, end, xs, record, buffers, batch)
            if p.driven_by_input:
                a += xs[start:end].reshape(end - start, batch, *p.shape)
            if self._compiled(p):
                self._lif_block(p, a, pops.state[p.name], params[p.name], start, end, record[p.name][start:end])
                pops.out[p.name] = record[p.name][end - 1]
                continue
            for i, t in enumerate(range(start, end)):
                out = self._neuron_step(p, pops.state[p.name], a[i], params[p.name], t + 1)
                pops.out[p.name] = out
                record[p.name][t] = out

    def _block_sums(self, p: NeuronLayer, n: int, batch: int) -> torch.Tensor:
        """Zeros (n, B, *shape) float32 for population ``p``'s block input: one tensor per population, kept
        between the blocks of a batch and zeroed in place (a new one of this size costs its page faults each
        time: 3-7x the zeroing here); let go at the end of the batch."""
        a = self._scratch.get(p.name)
        if a is None or a.shape[:2] != (n, batch):
            a = self._scratch[p.name] = self._population_zeros(p, (n, batch), torch.float32)
            return a
        return a.zero_()

    def _sums_in_float32(self, p: NeuronLayer) -> bool:
        """Whether population ``p``'s input over a block is summed in float32, as its channels-last convs compute
        it (no int64 copy of their sums, no int64 addition; anything else it receives, such as a bias line's
        messages, added in): where channels-last convs feed it, none of its convs wraps (each one's bound below
        2**23), everything it can receive in a step stays below 2**24 (every partial sum exact, so no dense
        message wraps either), and the compiled loop reads it."""
        syns = self.by_target[p.name]
        return any(s.channels_last for s in syns) and all(s.bound < UV_LIMIT for s in syns if s.layer.kind == "conv") \
            and self.input_bound(p) < FLOAT32_EXACT and self._compiled(p)

    def _compiled(self, p: NeuronLayer) -> bool:
        """Whether population ``p`` runs a block in the compiled loop (:mod:`neurodeploy.runtime.lif_kernel`):
        a fixed-point LIF (any reset mode), on the CPU, with numba installed."""
        return self.mode == "fixed" and p.model == "lif" and not p.sends_v and p.reset in lif_kernel.MODES \
            and self.device.type == "cpu" and lif_kernel.available()

    def _lif_block(self, p: NeuronLayer, a: torch.Tensor, st: dict[str, torch.Tensor], c: dict, start: int,
                   end: int, spikes: torch.Tensor) -> None:
        """Steps start + 1 .. end of a fixed-point LIF in one compiled loop, its spikes written into ``spikes``
        (n, B, *shape) bool, the record's rows (contiguous as stored)."""
        n, batch = end - start, a.shape[1]
        stored = self._stored(p)
        st["u"], st["v"] = (_in_order(st[k], self.channels_last[p.name]) for k in ("u", "v"))
        if "bias_flat" not in c or len(c["bias_flat"]) != batch * p.n:
            bias = torch.as_tensor(c["bias"]).cpu().broadcast_to((batch, *p.shape))
            c["bias_flat"] = stored(bias).contiguous().numpy().ravel()
        reset = c.get("reset")
        rows = np.array([reset is not None and (t + 1) % self.run_steps == reset % self.run_steps
                         for t in range(start, end)], dtype=np.bool_)
        lif_kernel.lif_block(stored(a).reshape(n, -1).contiguous().numpy(), stored(st["u"]).view(-1).numpy(),
                             stored(st["v"]).view(-1).numpy(), c["bias_flat"], c["keep_u"], c["keep_v"], c["vth"],
                             c["arithmetic"].small, c["has_bias"], p.reset, rows, c["saturated"].numpy(),
                             stored(spikes).view(n, -1).numpy())

    def _stored(self, p: NeuronLayer) -> Callable[[torch.Tensor], torch.Tensor]:
        """A population's tensors (..., *shape) as stored: (..., H, W, C) where channels-last (a view), else
        as they are."""
        return (lambda x: x.movedim(-3, -1)) if self.channels_last[p.name] else (lambda x: x)

    def _add_sent(self, a: torch.Tensor, syn: _Synapse, start: int, end: int, xs, record, buffers, batch: int) -> None:
        """Add to ``a`` (n, B, *out_shape) what ``syn`` delivers at steps start .. end - 1: the buffer left before
        the block, then the sums of the source's values one step earlier, all in one call; the block's last
        sums stay in the buffer for the next step."""
        layer, n = syn.layer, end - start
        a[0] += buffers[layer.name]
        if layer.source == "bias":
            self._add_bias_line(a, syn, start, end, buffers, batch)
            return
        s = self._sources(layer, start, end, xs, record)
        if self._added_events(a, syn, s, buffers, batch):
            return
        sums = self._synapse_output(syn, s.reshape(n * batch, *layer.in_shape)).reshape(n, batch, *layer.out_shape)
        a[1:] += sums[:-1]
        buffers[layer.name] = sums[-1]

    def _add_bias_line(self, a: torch.Tensor, syn: _Synapse, start: int, end: int, buffers, batch: int) -> None:
        """As :meth:`_add_sent` for an always-on bias line: its message, the synapse's output for a source of
        1 (computed once, by :meth:`_synapse_output` itself), added to every step after it is on (from the
        line's ``start_step``); no product over the block's rows."""
        layer, n = syn.layer, end - start
        if syn.message is None:
            syn.message = self._synapse_output(syn, torch.ones((1, 1), dtype=torch.bool, device=self.device))[0]
        first = max(layer.start_step - start, 0)  # the block's first step whose source is on
        if first < n - 1:
            a[1 + first:] += syn.message
        last = syn.message if end - 1 >= layer.start_step else torch.zeros_like(syn.message)
        buffers[layer.name] = last.expand(batch, *layer.out_shape).clone()

    def _sources(self, layer: SynapseLayer, start: int, end: int, xs, record) -> torch.Tensor:
        """The values ``layer`` (not a bias line: :meth:`_add_bias_line`) reads at steps start .. end - 1:
        (n, B, *source shape)."""
        return xs[start:end] if layer.source == "input" else record[layer.source][start:end]

    def _add_convs(self, a: torch.Tensor, group: _ConvGroup, start: int, end: int, xs, record, buffers,
                   batch: int) -> None:
        """As :meth:`_add_sent` for a group of convs (:class:`_ConvGroup`), in float32 channels last: the
        source converted once, the block's steps but the last through one conv of the summed weights."""
        layer, n = group.synapses[0].layer, end - start
        s = self._sources(layer, start, end, xs, record).reshape(n * batch, *layer.in_shape)
        x = group.synapses[0].operand(s)
        rows = (n - 1) * batch
        for syn in group.synapses:
            a[0] += buffers[syn.layer.name]
            buffers[syn.layer.name] = apply_synapse(syn.layer, syn.weights, x[rows:])
        if rows:
            a[1:] += apply_synapse(layer, group.weights, x[:rows]).reshape(n - 1, batch, *layer.out_shape)

    def _added_events(self, a: torch.Tensor, syn: _Synapse, s: torch.Tensor, buffers, batch: int) -> bool:
        """The block's event-driven sums (shifted as Lava's Dense shifts them) added straight into ``a`` (n, B,
        *out_shape) int64 at the next step, the last step's into the synapse's buffer: no sums array, shift or
        addition pass. Only where the sums run event-driven anyway (timed, chosen for this many spikes) and the
        message needs no int32 wrap; False where the caller takes the usual path."""
        if syn.events is None or syn.events.measuring or syn.bound >= GRADED_MAX or a.dtype != torch.int64 or \
                not a.is_contiguous():  # written through a flat view of ``a``
            return False
        n = a.shape[0]
        spikes = (s != 0).reshape(n * batch, -1).numpy()
        if not syn.events.chooses_events(spikes):
            return False
        rows = (n - 1) * batch
        if rows:
            syn.events.add_into(spikes[:rows], a[1:].reshape(rows, -1).numpy(), syn.weight_exp)
        last = torch.zeros((batch, *syn.layer.out_shape), dtype=torch.int64)
        syn.events.add_into(spikes[rows:], last.view(batch, -1).numpy(), syn.weight_exp)
        buffers[syn.layer.name] = last
        return True

    def _check_input(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        shape = self.plan.input_shape
        if x.ndim >= 2 and x.shape[1:] in ((self.num_steps, *shape), (self.num_steps, self.plan.n_in)):
            x = x.reshape(x.shape[0], self.num_steps, *shape)
        else:
            raise InputShapeError(f"expected input of shape (B, T={self.num_steps}, {', '.join(map(str, shape))}), "
                             f"got {x.shape}")
        check_input_values(self.plan, self.mode, x)
        return x

    def run_many(self, x: np.ndarray, batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = False,
                 description: str = "emulating") -> tuple[dict[str, np.ndarray], float]:
        """Any number of samples (B, T, *input_shape), ``batch_size`` at a time, with a progress bar
        -> (spikes of every population (B, T, *shape), aligned to x; seconds spent running)."""
        from neurodeploy.tables import stderr_console
        from rich.progress import track

        x = np.asarray(x)
        chunks = [x[i: i + batch_size] for i in range(0, len(x), batch_size)]
        runs = [self.run_batch(chunk) for chunk in track(chunks, description=description, disable=not progress,
                                                         console=stderr_console())]
        spikes = {p.name: np.concatenate([r.spikes[p.name] for r in runs]) for p in self.plan.neurons}
        return spikes, sum(r.wall_s for r in runs)

    def run_sample(self, x: np.ndarray, pause_at: list[int] | None = None, on_pause=None) -> SampleSpikes:
        """One sample (T, *input_shape), as :meth:`LavaRunner.run_sample`."""
        run = self.run_batch(np.asarray(x)[None], pause_at, on_pause)
        return SampleSpikes({k: v[0] for k, v in run.spikes.items()}, run.wall_s, {"run_s": run.wall_s},
                            {k: v[0] for k, v in run.raw.items()})

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> "EmulatorRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def block_steps(batch: int) -> int:
    """Steps per block for ``batch`` samples: about :data:`BLOCK_ROWS` rows, within :data:`BLOCK_STEPS`.

    Measured (`benchmarks/emulator_roofline.py`'s nets, 64 steps, one thread; GSOP/s at 4, 8, 16, 32 and 64
    steps per block): the 1024-1024-1024 LIF net at batch 1 24 / 31 / 40 / 43 / 45, at 16 82 / 82 / 90 / 88
    / 86, at 64 90 / 90 / 82 / 85 / 63, at 256 85 / 90 / 73 / 58 / 58; the NIR paper CNN at batch 1 5.5 /
    9.0 / 13 / 18 / 20, at 16 24 / 28 / 30 / 30 / 31, at 64 23 / 30 / 31 / 28 / 19, at 256 23 / 26 / 22 /
    18 / 15: the calls around each block's products dominate small blocks, and blocks much over a thousand
    rows leave the caches."""
    low, high = BLOCK_STEPS
    return max(low, min(high, BLOCK_ROWS // max(batch, 1)))


def _conv_groups(synapses: list[_Synapse]) -> list[_ConvGroup]:
    """Synapses into one population grouped by source and geometry (:class:`_ConvGroup`), in order."""
    groups: dict[tuple, list[_Synapse]] = {}
    for syn in synapses:
        layer = syn.layer
        key = (layer.source, layer.in_shape, layer.out_shape, layer.stride, layer.padding, layer.dilation,
               layer.groups, tuple(syn.weights.shape))
        groups.setdefault(key, []).append(syn)
    return [_ConvGroup(members, sum(m.weights for m in members).contiguous(memory_format=torch.channels_last))
            for members in groups.values()]


def _sources_first(plan: SpikingPlan) -> list[NeuronLayer] | None:
    """The populations, each after every population that feeds it; None where a synapse is recurrent."""
    if any(s.recurrent for s in plan.synapses):
        return None
    order, done, left = [], set(), list(plan.neurons)
    while left:
        ready = [p for p in left
                 if all(s.source in ("input", "bias") or s.source in done for s in plan.incoming(p.name))]
        if not ready:
            return None
        order += ready
        done |= {p.name for p in ready}
        left = [p for p in left if p.name not in done]
    return order


def _compact(x: torch.Tensor, dtype: type) -> np.ndarray:
    """A recorded output on the CPU in C order in the population's storage dtype (uint8 spikes, float64 values)."""
    if dtype == np.uint8 and x.dtype == torch.bool:  # reinterpreted, then one copy into C order
        return x.cpu().view(torch.uint8).contiguous().numpy()
    to = torch.uint8 if dtype == np.uint8 else torch.float64
    return x.cpu().to(to, memory_format=torch.contiguous_format).numpy()


def _in_order(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """A state (B, *shape) stored as the compiled loop reads it (itself where it is; the torch path's
    arithmetic may leave a new tensor in another order)."""
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()


def _state_array(x: torch.Tensor) -> np.ndarray:
    """A state variable on the CPU in C order, in its own dtype (a channels-last block's float32 sums, exact
    integers, as int64: the fixed-point buffer's)."""
    to = torch.int64 if x.dtype == torch.float32 else x.dtype
    return x.cpu().to(to, memory_format=torch.contiguous_format).numpy()


class IntegerArithmetic:
    """:func:`~neurodeploy.spiking.loihi.lif_fixed_step` exactly, on int64 tensors, as Lava's int32
    arithmetic computes it; ``saturated`` counts the wraps of u and the clips of v (each a departure from
    the float model).

    With ``small_input`` (|a_in| < 2**17, known from the weights) no int32 sum can overflow and ``|u| < 2**24``
    before the wrap, which is then the 24-bit wrap onto (-2**23, 2**23], done in place; otherwise every sum
    wraps to int32 and u is wrapped from any int32. On a CPU a cheap min/max skips the wrap and clip passes
    where nothing saturated; on a GPU (``branch_free``) nothing is read back mid-run.
    """

    def __init__(self, saturated: torch.Tensor, small_input: bool, branch_free: bool) -> None:
        self.saturated, self.small, self.branch_free = saturated, small_input, branch_free

    def decay(self, x: torch.Tensor, keep: int) -> torch.Tensor:
        return decay(x, keep)

    def current(self, a: torch.Tensor) -> torch.Tensor:
        return a << ACT_SHIFT if self.small else wrap_int(wrap_int(a) << ACT_SHIFT)

    def add(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x.add_(y) if self.small else wrap_int(x + y)  # x is a fresh tensor of the step's (the decay's)

    def wrap_u(self, u: torch.Tensor) -> torch.Tensor:
        if not self.small:
            high, low = u > UV_LIMIT, u <= -UV_LIMIT
            self.saturated[0] += torch.count_nonzero(high | low)
            return wrap_int(torch.where(high, u - 2 * UV_LIMIT, torch.where(low, u + 2 * UV_LIMIT, u)))
        if self._in_range(u, 1 - UV_LIMIT, UV_LIMIT):
            return u
        t = u.add_(UV_LIMIT - 1)  # in [0, 2**24) exactly where u needs no wrap
        self.saturated[0] += torch.count_nonzero(t >> STATE_BITS)
        return t.bitwise_and_(2 * UV_LIMIT - 1).sub_(UV_LIMIT - 1)

    def clip_v(self, v: torch.Tensor) -> torch.Tensor:
        if self._in_range(v, 1 - UV_LIMIT, UV_LIMIT - 1):
            return v
        self.saturated[1] += torch.count_nonzero(v > UV_LIMIT - 1) + torch.count_nonzero(v < 1 - UV_LIMIT)
        return v.clamp_(1 - UV_LIMIT, UV_LIMIT - 1)

    def output(self, v: torch.Tensor, fired: torch.Tensor, vth: int) -> torch.Tensor:
        return fired

    def reset(self, v: torch.Tensor, fired: torch.Tensor, vth: int, mode: str) -> torch.Tensor:
        return v.masked_fill_(fired, 0) if mode == "zero" else after_spike(v, fired, vth, mode)  # in place

    def _in_range(self, x: torch.Tensor, low: int, high: int) -> bool:
        """Whether every element lies in [low, high]; on a GPU always False, so that the caller takes the
        branch-free path and nothing waits for the device."""
        if self.branch_free:
            return False
        lo, hi = torch.aminmax(x)
        return bool(lo >= low and hi <= high)


def _sdn_fixed(model: str, st: dict[str, torch.Tensor], a: torch.Tensor, c: dict) -> torch.Tensor:
    """Lava's fixed Sigma, Delta and SigmaDelta (ReLU activation, no cumulative error)."""
    if model == "sigma":
        st["sigma"] = wrap_int(st["sigma"] + a)
        return st["sigma"]
    if model == "sigma_delta":
        st["sigma"] = wrap_int(st["sigma"] + a)
        act = torch.relu(wrap_int(st["sigma"] + c["bias"]))
    else:
        act = wrap_int(a << (c["spike_exp"] + c["state_exp"]))
    delta = wrap_int(act - st["act"] + st["residue"])
    s = torch.where(delta.abs() >= c["vth"], delta, 0)
    st["residue"], st["act"] = delta - s, act
    return s >> c["state_exp"]
