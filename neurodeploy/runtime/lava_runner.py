"""Running a SpikingPlan in Lava's CPU simulation, one sample at a time, always cleaning up.

One Lava runtime is compiled per (plan, T) and reused for every sample: between samples all neuron
and synapse state is set back to zero (the same reset as the PyTorch model). Each sample runs
``T + D`` steps, D being the deepest population's synaptic delay, and each population's spikes are
shifted back by its own delay, so the returned spikes are aligned to the input. A runner holds
:mod:`neurodeploy.runtime.worker_guard` while it lives: Lava's workers ignore Ctrl-C (the runner stops
them) and exit by themselves if the process that started them dies.
"""
from __future__ import annotations

import multiprocessing
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import numpy as np

from neurodeploy.errors import InputShapeError, LavaRunError, LavaStartError, UsageError
from neurodeploy.runtime import worker_guard
from neurodeploy.runtime.lava_compat import import_lava_core
from neurodeploy.runtime.runners import SampleSpikes, check_input_values
from neurodeploy.spiking.plan import SpikingPlan

MODES = {"float": "floating_pt", "fixed": "fixed_pt"}
DEFAULT_TIME_LIMIT_S = 600.0  # per Lava run call (one sample, or one chunk between feedback pauses)
START_LIMIT_S = 120.0  # compiling a network and starting its workers (Runtime.initialize)
START_TRIES = 2  # fresh networks tried before LavaStartError


class LavaRunner:
    """``with LavaRunner(plan, T) as run: run.run_sample(x)``; processes are stopped on exit.

    Args:
        plan: the network.
        num_steps: T, the number of input steps per sample.
        time_limit_s: watchdog limit for each Lava run call; past it the run ends with LavaRunError.
        mode: ``"float"`` (Lava ``floating_pt``) or ``"fixed"`` (``fixed_pt``, bit-accurate Loihi); a plan
            without fixed-point parameters is quantized with :func:`neurodeploy.spiking.quantize.quantize`.
    """

    def __init__(self, plan: SpikingPlan, num_steps: int, mode: str = "float",
                 time_limit_s: float = DEFAULT_TIME_LIMIT_S) -> None:
        if mode not in MODES:
            raise UsageError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
        import_lava_core()
        from neurodeploy.runtime.lava_net import build_network

        if mode == "fixed" and not plan.is_quantized:
            from neurodeploy.spiking.quantize import quantize

            plan = quantize(plan).plan

        self.plan, self.num_steps, self.mode = plan, int(num_steps), mode
        self.time_limit_s = float(time_limit_s)
        self.delay_steps = plan.max_delay_steps
        self._cleanup = ExitStack()
        worker_guard.hold()
        self._cleanup.callback(worker_guard.release)
        self._build = build_network
        self.net = None  # built with the first sample's data (Lava cannot set a Var before it runs)
        self._closed = False

    def __enter__(self) -> "LavaRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _run_steps(self, steps: int) -> None:
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg

        self._guarded(lambda: self.net.source.run(condition=RunSteps(num_steps=steps),
                                                  run_cfg=Loihi2SimCfg(select_tag=MODES[self.mode])),
                      f"run {steps} steps")

    def _guarded(self, action, what: str):
        return guarded(action, what, self.time_limit_s)

    def run_sample(self, x: np.ndarray, pause_at: list[int] | None = None, on_pause=None) -> SampleSpikes:
        """x (T, *input_shape) (or (T, n_in)) -> spikes of every population, (T, *shape), aligned to x.

        With ``pause_at`` (Lava step counts), the run stops at each of them and calls
        ``on_pause(steps_run, read_population, write_input)``: ``read_population(name)`` gives that
        population's recorded spikes so far (aligned, (steps, *shape)); ``write_input(from_step, rows)``
        replaces the input rows (n, *input_shape) from that step on.
        This is how a feedback channel feeds the dense side's output back at the next window.
        """
        from lava.magma.core.run_configs import Loihi2SimCfg

        from neurodeploy.runtime.lava_net import reset_state

        if self._closed:
            raise LavaRunError("this LavaRunner is closed")
        padded = self._padded(x)
        t0 = time.perf_counter()
        try:
            if self.net is None:
                self.net = started_network(
                    lambda: self._build(self.plan, self.num_steps + self.delay_steps, padded, self.mode),
                    Loihi2SimCfg(select_tag=MODES[self.mode]), self._cleanup)
            else:
                self._guarded(lambda: (reset_state(self.net), self.net.source.data.set(padded)), "reset and load")
            t1 = time.perf_counter()
            self._run_with_pauses(padded, sorted(pause_at or []), on_pause)
            t2 = time.perf_counter()
            raw = self._guarded(lambda: {name: sink.data.get() for name, sink in self.net.sinks.items()}, "read back")
        except LavaRunError:
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise LavaRunError(f"Lava run failed: {type(exc).__name__}: {exc}") from exc
        t3 = time.perf_counter()
        spikes, unaligned = self._read_out(raw)
        return SampleSpikes(spikes, wall_s=t3 - t0,
                            timings={"reset_and_load_s": t1 - t0, "run_s": t2 - t1, "readout_s": t3 - t2}, raw=unaligned)

    def _padded(self, x: np.ndarray) -> np.ndarray:
        """One sample (T, *input_shape), checked, as the source process's data: T + D steps, Lava's layout."""
        from neurodeploy.runtime.lava_net import to_lava

        x = np.asarray(x, dtype=np.float64)
        shape = self.plan.input_shape
        if x.shape not in ((self.num_steps, *shape), (self.num_steps, self.plan.n_in)):
            raise InputShapeError(f"expected input of shape (T={self.num_steps}, {', '.join(map(str, shape))}), got {x.shape}")
        check_input_values(self.plan, self.mode, x)
        padded = np.zeros((*shape, self.num_steps + self.delay_steps))
        padded[..., : self.num_steps] = np.moveaxis(x.reshape(self.num_steps, *shape), 0, -1)
        return to_lava(padded, shape)

    def _read_out(self, raw: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """What the sinks recorded -> (spikes aligned to the input (T, *shape), as recorded (T + D, *shape));
        binary spikes as uint8, values as float64 (NeuronLayer.output_dtype)."""
        from neurodeploy.runtime.lava_net import from_lava

        spikes, unaligned = {}, {}
        for layer in self.plan.neurons:
            unaligned[layer.name] = np.moveaxis(from_lava(raw[layer.name], layer.shape), -1, 0).astype(layer.output_dtype)
            d = layer.delay_steps
            aligned = from_lava(raw[layer.name][..., d: d + self.num_steps], layer.shape)
            spikes[layer.name] = np.moveaxis(aligned, -1, 0).astype(layer.output_dtype)
        return spikes, unaligned

    def _run_with_pauses(self, padded: np.ndarray, pauses: list[int], on_pause) -> None:
        from neurodeploy.runtime.lava_net import from_lava, to_lava

        total, done, shape = self.num_steps + self.delay_steps, 0, self.plan.input_shape
        for stop in [p for p in pauses if 0 < p < total] + [total]:
            self._run_steps(stop - done)
            done = stop
            if stop == total or on_pause is None:
                continue

            def read(name: str, steps: int = done) -> np.ndarray:
                layer = self.plan.layer(name)
                raw = self._guarded(self.net.sinks[name].data.get, "read back")[..., layer.delay_steps: steps]
                return np.moveaxis(from_lava(raw, layer.shape), -1, 0)

            def write(from_step: int, rows: np.ndarray) -> None:
                nir_layout = np.moveaxis(from_lava(padded, shape), -1, 0).copy()  # (steps, *shape)
                nir_layout[from_step: from_step + len(rows)] = rows
                padded[...] = to_lava(np.moveaxis(nir_layout, 0, -1), shape)
                self._guarded(lambda: self.net.source.data.set(padded), "load input")

            on_pause(done, read, write)

    def final_state(self) -> dict[str, dict[str, np.ndarray]]:
        """The state after the last sample: neuron variables and synapse buffers, in the plan's layout
        (:func:`neurodeploy.runtime.lava_net.read_state`)."""
        from neurodeploy.runtime.lava_net import read_state

        if self.net is None or self._closed:
            raise LavaRunError("no sample has run on this LavaRunner (or it is closed)")
        return self._guarded(lambda: read_state(self.net, self.plan), "read the state")

    def close(self) -> None:
        """Stop Lava's runtime and make sure no worker process it started is left running."""
        if not self._closed:
            self._closed = True
            self._cleanup.close()


STOP_TIMEOUT_S = 10.0


def started_network(build, run_cfg, cleanup: ExitStack, time_limit_s: float | None = None):
    """``build()`` a network (anything with a ``source`` process), compile it and start its workers under the
    watchdog; its stop is registered on ``cleanup``. Lava forks one worker per process model and then waits
    for each to report (``Runtime.initialize``); a worker that never does (seen once in three suite runs in a
    test runner's worker process, whose other threads were running when Lava forked) would make it wait
    forever. Past ``time_limit_s`` (default :data:`START_LIMIT_S`) that network's workers are terminated and
    a fresh one is built and started, up to :data:`START_TRIES` networks; then :class:`LavaStartError`."""
    limit = START_LIMIT_S if time_limit_s is None else time_limit_s
    for attempt in range(1, START_TRIES + 1):
        net = build()
        stack = ExitStack()
        stack.enter_context(stopped_on_exit(net.source))
        try:
            guarded(lambda: net.source.create_runtime(run_cfg=run_cfg), "start its workers", limit,
                    LavaStartError, "a network that takes longer to compile needs a larger "
                    "neurodeploy.runtime.lava_runner.START_LIMIT_S")
        except LavaStartError as exc:
            stack.close()
            if attempt == START_TRIES:
                raise LavaStartError(f"{exc} ({START_TRIES} fresh networks tried)") from exc
            warnings.warn(f"{exc}; starting a fresh network (try {attempt + 1} of {START_TRIES})",
                          RuntimeWarning, stacklevel=2)
            continue
        except BaseException:
            stack.close()
            raise
        cleanup.enter_context(stack)
        return net
    raise AssertionError("unreachable")


def guarded(action, what: str, time_limit_s: float, error: type[LavaRunError] = LavaRunError,
            hint: str = "raise time_limit_s for longer runs"):
    """Do ``action`` (anything that talks to Lava's runtime) under a watchdog: a worker that stalls or dies
    ends it after ``time_limit_s`` with ``error`` (:class:`LavaRunError`); Lava itself would wait for that
    worker forever. The caller's thread only waits, so Ctrl-C reaches it."""
    result: list = []
    errors: list[BaseException] = []
    finished = threading.Event()

    def work() -> None:
        try:
            result.append(action())
        except BaseException as exc:  # handed to the caller below
            errors.append(exc)
        finally:
            finished.set()

    threading.Thread(target=work, name="lava-call", daemon=True).start()
    if not finished.wait(time_limit_s):
        raise error(f"Lava did not {what} within the time limit of {time_limit_s:g} s: a worker "
                    f"stalled or died; its processes are being terminated ({hint})")
    if errors:
        raise errors[0]
    return result[0]


@contextmanager
def stopped_on_exit(process, stop_timeout_s: float = STOP_TIMEOUT_S) -> Iterator[None]:
    """Stop the Lava runtime of ``process`` on leaving the block, however it is left, and terminate
    any worker process started inside the block that is still alive after the stop.

    After a worker has failed, Lava's ``stop()`` waits forever for that worker's acknowledgement
    (lava issues 178, 231, 336), so it runs in a thread and is given up after ``stop_timeout_s``.
    A block left by Ctrl-C or SIGTERM (a KeyboardInterrupt, usually in the middle of a run call) is not
    stopped through Lava: its workers are terminated at once (a stop would tear their channels down under
    them, and each would print a traceback), then Lava's shared memory is released (:func:`_abandon`).
    """
    before = set(multiprocessing.active_children())
    try:
        yield
    finally:
        stop_error = None
        try:
            if getattr(process, "runtime", None) is not None:
                if isinstance(sys.exc_info()[1], KeyboardInterrupt):
                    _abandon(process.runtime)
                else:
                    stop_error = _stop_within(process, stop_timeout_s)
        finally:
            _terminate_new_children(before)
        if stop_error is not None and sys.exc_info()[0] is None:
            raise LavaRunError(f"stopping Lava failed: {stop_error}")


def _abandon(runtime) -> None:
    """Terminate a runtime's workers, then shut its shared-memory manager down (so no segment leaks)."""
    infrastructure = getattr(runtime, "_messaging_infrastructure", None)
    _terminate([a for a in getattr(infrastructure, "_actors", []) if _alive(a)])
    manager = getattr(infrastructure, "_smm", None)
    if manager is not None:
        worker = threading.Thread(target=manager.shutdown, name="lava-shm-shutdown", daemon=True)
        worker.start()
        worker.join(2.0)


def _alive(proc) -> bool:
    try:
        return proc.is_alive()
    except ValueError:  # closed by Lava already
        return False


def _stop_within(process, timeout_s: float) -> str | None:
    """Call ``process.stop()`` for at most ``timeout_s``; return what went wrong, if anything."""
    errors: list[BaseException] = []

    def stop() -> None:
        try:
            process.stop()
        except BaseException as exc:  # handed to the caller below
            errors.append(exc)

    worker = threading.Thread(target=stop, name="lava-stop", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        return f"Lava's runtime did not stop within {timeout_s:g} s; its workers were terminated"
    return f"{type(errors[0]).__name__}: {errors[0]}" if errors else None


def _terminate_new_children(before: set, timeout_s: float = 5.0) -> None:
    _terminate([p for p in multiprocessing.active_children() if p not in before], timeout_s)


def _terminate(procs: list, timeout_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL whatever is alive after ``timeout_s`` (in all)."""
    for proc in procs:
        proc.terminate()
    deadline = time.monotonic() + timeout_s
    for proc in procs:  # Lava's SystemProcess overrides join() without a timeout: use the base class's
        try:
            multiprocessing.Process.join(proc, max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                multiprocessing.Process.join(proc, 1.0)
        except ValueError:  # closed by Lava meanwhile
            continue
