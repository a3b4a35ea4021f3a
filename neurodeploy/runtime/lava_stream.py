"""A batch of samples through Lava in one run, streamed: no ``Var.get``/``Var.set`` between samples.

Lava 0.10 moves a ``Var`` between the runtime and a process one element per message, so resetting the
state and reading back the recorded spikes after every sample costs far more than the simulation
itself (on the NIR paper's CNN, 2.9 s of read-back and 1.3 s of reset against 0.18 s of 17 steps).
Here the samples follow each other in one run, one every ``P = T + D + G`` steps:

- input: every sample's T steps, then D steps of zeros (the per-sample run's padding), then a gap of
  ``G = D + 1`` zero steps, all in the source's data at build (no ``Var.set``); bias lines are on
  over each sample's ``T + D`` steps only;
- reset: every population is a ``ResetLIF`` that zeroes its own u and v once per period, at gap step
  ``d + 1`` (d its delay): by then everything upstream of it is silent (zero input, bias off, already
  zeroed), so its synapses carry nothing into the next sample and it starts it exactly from rest;
- output: each population's spikes (or voltage) leave through an ``Extractor`` channel of
  :data:`~neurodeploy.runtime.lava_net.EXTRACTOR_STEPS` steps, received here step by step while Lava runs; ``on_window`` hands each
  finished window of the cut to the caller as it arrives, so the dense part runs window l while Lava's
  processes compute l + 1. A caller slower than Lava fills the channel, and Lava waits (back-pressure).

Per sample this equals :class:`neurodeploy.runtime.lava_runner.LavaRunner` spike for spike (the
tests compare them). Plans it cannot stream, and why, come from :func:`why_not_streamable`:
recurrent synapses (a population's own spikes reach it at its reset step), populations with a bias
of their own (netx), and sigma-delta neurons.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np

from neurodeploy.errors import InputShapeError, LavaRunError
from neurodeploy.runtime import worker_guard
from neurodeploy.runtime.lava_compat import import_lava_core
from neurodeploy.runtime.lava_runner import MODES, guarded, started_network
from neurodeploy.spiking.plan import SpikingPlan

WindowFn = Callable[[int, int, np.ndarray, float], None]  # (sample, window, cut spikes (K, *shape), t_s)
SampleFn = Callable[[int, float], None]  # (sample, t_s): its first step was received


def why_not_streamable(plan: SpikingPlan, mode: str) -> str | None:
    """None if the plan can stream, else the reason (the runner then runs sample by sample)."""
    if any(s.recurrent for s in plan.synapses):
        return "recurrent synapses"
    for layer in plan.neurons:
        if layer.model not in ("lif", "li"):
            return f"{layer.name} is a {layer.model} population"
        bias = plan.fixed[layer.name].bias_mant if mode == "fixed" else layer.bias
        if np.any(np.asarray(bias) != 0):
            return f"{layer.name} has a bias of its own"
    return None


@dataclass
class StreamTimes:
    """Wall-clock marks of a stream (seconds from its start)."""

    build_s: float  # compiling the Lava network
    window_ready_s: list[tuple[int, int, float, int, int]]
    """(sample, window, when its last cut step was received, steps Lava had computed beyond it then, and
    when ``on_window`` returned): Lava running ahead while the caller worked on the window."""
    run_s: float  # from the start of the run to the last step received


def stream_batch(plan: SpikingPlan, x: np.ndarray, mode: str, cut: str | None = None, window: int = 0,
                 on_window: WindowFn | None = None, time_limit_s: float = 600.0, on_sample: SampleFn | None = None,
                 t0: float | None = None) -> tuple[dict[str, np.ndarray], StreamTimes]:
    """Run x (B, T, *input_shape) through Lava as one stream; spikes per population (B, T, *shape), aligned
    to the input as :class:`~neurodeploy.runtime.lava_runner.LavaRunner` aligns them, and the stream's times.
    With ``cut`` and ``window`` K, ``on_window(b, l, spikes, t_s)`` is called as each window of the cut completes;
    times are seconds from ``t0`` (a ``time.perf_counter()`` value; default: this call's start)."""
    import_lava_core()
    from lava.magma.core.run_conditions import RunSteps

    from neurodeploy.runtime.lava_net import build_network

    batch, steps = x.shape[:2]
    layout, lava_data = stream_layout(plan, x)
    period = layout.period
    worker_guard.hold()
    t_build = time.perf_counter()
    t0 = t_build if t0 is None else t0
    try:
        with ExitStack() as running:
            net = started_network(lambda: build_network(plan, batch * period, lava_data, mode, stream=layout),
                                  run_config(mode), running)
            net.source.run(condition=RunSteps(num_steps=batch * period, blocking=False))
            t_run = time.perf_counter()
            recorded, ready = guarded(lambda: _receive(plan, net, batch, steps, period, cut, window,
                                                       (on_window, on_sample), t0), "stream the batch", time_limit_s)
            t_end = time.perf_counter()
            guarded(net.source.wait, "finish the stream", time_limit_s)
    except LavaRunError:
        raise
    except Exception as exc:
        raise LavaRunError(f"Lava stream failed: {type(exc).__name__}: {exc}") from exc
    finally:
        worker_guard.release()
    return recorded, StreamTimes(build_s=t_run - t_build, window_ready_s=ready, run_s=t_end - t_run)


def run_config(mode: str):
    """Lava's run configuration for a stream in ``mode``: its Extractors' process model has no tag, so it
    is named explicitly."""
    import_lava_core()
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel

    return Loihi2SimCfg(select_tag=MODES[mode], exception_proc_model_map={Extractor: PyLoihiExtractorModel})


def stream_layout(plan: SpikingPlan, x: np.ndarray):
    """The stream's :class:`~neurodeploy.runtime.lava_net.StreamLayout` for x (B, T, ...) and the source's data:
    each sample's T steps, then D + (D + 1) zero steps, in Lava's layout (*shape, B * period)."""
    from neurodeploy.runtime.lava_net import StreamLayout, stream_gap, to_lava

    batch, steps = x.shape[:2]
    if x.shape[2:] not in (tuple(plan.input_shape), (plan.n_in,)):
        raise InputShapeError(f"expected input (B, T, {', '.join(map(str, plan.input_shape))}), got {x.shape}")
    d = plan.max_delay_steps
    period = steps + d + stream_gap(plan)
    layout = StreamLayout(period, {n.name: (steps + d + n.delay_steps + 1) % period for n in plan.neurons})
    data = np.zeros((batch, period, *plan.input_shape))
    data[:, :steps] = x.reshape(batch, steps, *plan.input_shape)
    return layout, to_lava(np.moveaxis(data.reshape(batch * period, *plan.input_shape), 0, -1), plan.input_shape)


def _backlog(extractor) -> int:
    """Steps waiting in an Extractor's channel: how far Lava has run ahead of the receiver."""
    return int(extractor.out_port.external_pipe_csp_recv_port._queue.qsize())


def _receive(plan: SpikingPlan, net, batch: int, steps: int, period: int, cut: str | None, window: int,
             callbacks: tuple[WindowFn | None, SampleFn | None], t0: float):
    """Receive every population's output step by step (aligned per population by its delay) and call
    ``on_window`` for each completed window of the cut."""
    from neurodeploy.runtime.lava_net import from_lava

    out = {n.name: np.zeros((batch, steps, *n.shape), dtype=n.output_dtype) for n in plan.neurons}
    delays = {n.name: n.delay_steps for n in plan.neurons}
    shapes = {n.name: n.shape for n in plan.neurons}
    ready: list[tuple[int, int, float, int, int]] = []
    on_window, on_sample = callbacks
    for t in range(batch * period):
        b, j = divmod(t, period)
        if j == 0 and on_sample is not None:
            on_sample(b, time.perf_counter() - t0)
        for name, extractor in net.sinks.items():
            value = extractor.receive()
            k = j - delays[name]
            if 0 <= k < steps:
                out[name][b, k] = from_lava(value[..., None], shapes[name])[..., 0]
        if cut is not None and window and 0 <= j - delays[cut] < steps and (j - delays[cut] + 1) % window == 0:
            w = (j - delays[cut]) // window
            now, before = time.perf_counter() - t0, _backlog(net.sinks[cut])
            if on_window is not None:
                on_window(b, w, plan.cut_values(cut, out[cut][b, w * window: (w + 1) * window]), now)
            ready.append((b, w, now, before, _backlog(net.sinks[cut])))
    return out, ready
